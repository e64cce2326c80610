"""The drill report: what was sent, who acknowledged it, how fast, and whether the
scenario's expectations held, rebuilt from a drill's SQLite record alone.

    model     the report models (JSON) and DrillSettings (what a drill records)
    recorded  a drill row with its settings, parsed: RecordedDrill
    build     the store reads: build_report
    assemble  summaries and judging over rows already read (pure): assemble
    annexes   the texts sent (ja and en), the audit log, the refusal counters
    matching  receipts matched to alerts: deliveries and duplicates
    against_record  the drill held against the scenario's record of what J-Alert did
    refusals  the drill's refusal notes (`rejected` rows), judged against expect.refused
    render    Markdown and the report files: render_markdown, write_report (no line over
              160 characters, times in JST)
    html      the self-contained HTML page, the document handed over, in Japanese (the
              default) or English (build_html, write_html); html_document, html_sections
              and html_style are its parts, charts draws its SVG charts, labels its words
              (alertsim/i18n/report.json)

Definitions used throughout:

- A drill's alerts are the outbox rows of kind `alert` created from its `started_at` up
  to the next drill's `started_at` (or the end of the record).
- A delivery is the first receipt of a (client_id, message_id) pair; every further
  receipt of the pair is a duplicate. Acknowledged stages are the stages of a client's
  deliveries in receipt order.
- Latency = receipt `received_at` - outbox `created_at`, in milliseconds, over deliveries
  (duplicates are counted, not timed, so a re-publish after a restart does not show up
  as a slow delivery). p50 and p99 are nearest-rank percentiles: the ceil(p/100 * n)-th
  smallest value, always one of the measured values (numpy's `inverted_cdf` method).
- A missed delivery: an alert for place P in the outbox, a receiver subscribed to P,
  and no receipt from that receiver for that alert's identifier.
- Expectations: an expected prefecture passes when every receiver subscribed to it
  acknowledged exactly the expected stages in order (with no receiver: when exactly those
  stages were sent); silent prefectures pass when nothing was sent to them; national
  passes when (a national alert was sent) == `expect.national`. Expectations always
  cover the whole drill, even when the report is restricted to one event.
- A drill's refusal notes are the `rejected` rows (inputs refused, messages withheld)
  received from its `started_at` up to the next drill's `started_at`; the drill fails when
  their number differs from `expect.refused`.
- With a `record` in the scenario, each (prefecture, stage) of the record and of the
  drill's alerts is compared: the record's time against the `sent` of the drill's first
  alert of that stage to that prefecture; within `record.tolerance` or not, missing in the
  drill, or not in the record; and the record's areas against the prefectures the drill
  sent shelter to. The drill fails when it does not match (`record_matched` False).
- A drill's operator actions are the audit log's rows received from its `started_at` up to
  the next drill's `started_at`; its refusal counters those counting in that window. Both
  are shown, not judged.
- `passed` is True when the expectations, the refusal count and the record (if any) all
  hold; `failures` lists every reason it is not.
"""

from alertsim.drills.report.assemble import assemble, latency_of
from alertsim.drills.report.build import build_report
from alertsim.drills.report.model import (
    NATIONAL,
    AlertWording,
    AuditEntry,
    Check,
    DrillReport,
    DrillSettings,
    ExpectationResults,
    Latency,
    MessageText,
    PlaceSummary,
    ReceiverSummary,
    RecordAreas,
    RecordComparison,
    RecordRow,
    Refusal,
    RefusalCount,
    RefusalResults,
    ScenarioInfo,
    TimelineRow,
)
from alertsim.drills.report.recorded import RecordedDrill
from alertsim.drills.report.render import render_markdown, write_report

__all__ = [
    "NATIONAL",
    "AlertWording",
    "AuditEntry",
    "Check",
    "DrillReport",
    "DrillSettings",
    "ExpectationResults",
    "Latency",
    "MessageText",
    "PlaceSummary",
    "ReceiverSummary",
    "RecordAreas",
    "RecordComparison",
    "RecordRow",
    "RecordedDrill",
    "Refusal",
    "RefusalCount",
    "RefusalResults",
    "ScenarioInfo",
    "TimelineRow",
    "assemble",
    "build_report",
    "latency_of",
    "render_markdown",
    "write_report",
]
