"""The scenario builder's pure side: launch sites, the draft a page edits, its preview
(corridor, warned prefectures and their windows, each prefecture's messages) and the
scenario file it becomes. The page itself is `alertsim.web.builder_app`; the CLI wires
the two together (`alertsim builder`)."""
