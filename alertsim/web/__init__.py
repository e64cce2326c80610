"""The web adapter: the shared prefecture map (SVG) and the live drill dashboard."""
