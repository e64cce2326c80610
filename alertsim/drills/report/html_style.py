"""The HTML report's stylesheet: the screen layout and the print layout.

Print (A4, 12 mm margins, so 186 mm of printable width): nothing is wider than the page.
Every SVG scales down to the width it is given (viewBox kept, `height: auto`), tables take
the page's width and break long identifiers and topics anywhere, the banner loses its
bleed, small multiples go three to a row, and a figure, a message or a table row never
splits across pages. Colours print as shown (`print-color-adjust: exact`): the map's states
are the point.
"""

from __future__ import annotations

from alertsim.web.map import MAP_CSS
from alertsim.web.map_zoom import ZOOM_CSS

__all__ = ["REPORT_CSS"]

_SCREEN = """
body{font:14px/1.45 system-ui,"Noto Sans CJK JP","Hiragino Sans",sans-serif;margin:0 auto;
max-width:1100px;padding:0 16px 40px;color:#222}
h1{font-size:22px;margin:12px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid
#ccc}h3{font-size:15px;margin:14px 0 4px}
#status-banner{background:#b00020;color:#fff;font-weight:bold;padding:6px 12px;
letter-spacing:.05em;margin:0 -16px}.verdict{font-size:16px;font-weight:bold}
.PASSED{color:#1a7f37}.FAILED{color:#b00020}.facts{columns:2;font-size:13px}
table{border-collapse:collapse;font-size:13px;max-width:100%}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
.fail{color:#b00020;font-weight:bold}.pass{color:#1a7f37}td.pass,td.fail{min-width:3.5em}.key{margin-right:14px;
white-space:nowrap}.key i{display:inline-block;width:12px;height:12px;margin-right:4px;
vertical-align:-1px;border:1px solid #888}
svg{max-width:100%;height:auto}
#end-state svg,#zoom svg{width:100%;max-width:900px;height:auto}
.steps{display:flex;flex-wrap:wrap;gap:8px}.steps figure{margin:0;width:260px;font-size:12px}
.steps svg{width:100%;height:auto}
.chart text{font-size:11px;fill:#333}.chart .grid{stroke:#e4e4e4}.chart .lane{stroke:#bbb}
.chart .over{fill:#ffe08a}.chart .receipt{stroke:#1a7f37}.chart .bar{fill:#4575b4}
.chart .axis{stroke:#666}
.message{margin:10px 0 16px}.message table{width:100%;table-layout:fixed}
.message th{width:7em}.message .lang{width:auto}.sources li,.failures li{overflow-wrap:anywhere}
.notes{white-space:pre-wrap}.as-recorded{font-size:12px;color:#555}
"""

_PRINT = """
@page{size:A4;margin:12mm}
@media print{
html,body{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{max-width:none;margin:0;padding:0;font-size:11px}
#status-banner{margin:0}
h2{break-after:avoid;margin-top:18px}
table{width:100%}thead{display:table-header-group}tr,figure,.message,svg{break-inside:avoid}
.steps figure{width:32%}
.facts{columns:2}
}
"""

REPORT_CSS = _SCREEN + _PRINT + MAP_CSS + ZOOM_CSS
