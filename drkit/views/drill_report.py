"""The drill report for people: the summary, checks, steps, history and trend as Markdown (the
artifact, ``standby drill show``), and the history's table rows. The same content as HTML is
:mod:`drkit.views.drill_html`, the timeline chart :mod:`drkit.views.drill_chart`; where they are
stored is :mod:`drkit.jobs.drill_report`. Every value is escaped where it lands; the report names
Secrets, never their values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drkit.domain.drill import DrillReport, DrillStep
from drkit.views.markdown import md_inline

HISTORY_ROWS = 24
"""Earlier drills shown in the History table (newest first); older ones are counted, not listed."""
MINUS = "\u2212"
_FLOW_URL = re.compile(r"^https?://[^\s()<>|\"'`]+$")
_MODES = {
    "promote": "promote (the secondary's images promoted and the app started there, then demoted and resynced)",
    "isolated": "isolated (a scratch copy of the secondary's images started; mirroring untouched)",
}
_CANARY_KEYS = ("verdict", "path", "sha256", "written_at")
_SMOKE_KEYS = ("status", "writable", "login", "round_trip", "started")
TIMELINE_CHART = "timeline"
"""Name of the timeline chart (:mod:`drkit.views.drill_chart`): ``charts/timeline.png`` next to the report."""


# ------------------------------------------------------------------------------------ formatting


def verdict(report: DrillReport) -> str:
    """``PASSED``, ``FAILED`` or ``REFUSED``."""
    if report.refused:
        return "REFUSED"
    return "PASSED" if report.passed else "FAILED"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} s"


def when(t: datetime | None) -> str:
    if t is None:
        return "-"
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return f"{t:%Y-%m-%d %H:%M:%S}Z"


def _clock(t: datetime | None) -> str:
    if t is None:
        return "-"
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return f"{t:%H:%M:%S}Z"


def _delta(now: float, before: float) -> str:
    d = round(now - before, 1)
    if d == 0:
        return "\u00b10.0 s"
    return f"+{d:.1f} s" if d > 0 else f"{MINUS}{-d:.1f} s"


def _text(value: object) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def _pairs(values: dict[str, Any], keys: Iterable[str]) -> str:
    """``key: value`` pairs of the known ``keys`` only (never a dict dumped whole)."""
    out = [f"{k}: {_text(values[k])}" for k in keys if k in values and values[k] not in (None, "")]
    return "; ".join(out) or "-"


def _flow_url(report: DrillReport) -> str:
    """The flow run's link when it is a plain http(s) URL, else ``""``."""
    return report.flow_run_url if _FLOW_URL.match(report.flow_run_url) else ""


@dataclass(frozen=True)
class Row:
    """One summary line: label and value; ``link`` is an http(s) URL to render as a link."""

    label: str
    value: str
    link: str = ""
    badge: bool = False


def summary(report: DrillReport) -> list[Row]:
    a = report.availability
    ratio = "-" if a.ratio is None else f"{100 * a.ratio:.1f} %"
    rows = [
        Row("App", report.app),
        Row("Drill id", report.drill_id),
        Row("Mode", _MODES.get(report.mode, report.mode)),
        Row("Verdict", verdict(report), badge=True),
        Row("Primary (kept serving)", report.primary),
        Row("Secondary (proved)", report.secondary),
        Row("Start", when(report.started_at)),
        Row("End (cleanup included)", when(report.ended_at)),
        Row("RTO, promotion \u2192 writable", secs(report.rto_promotion_to_writable_s)),
        Row("RTO, drill start \u2192 canary verified", secs(report.rto_start_to_canary_s)),
        Row("Achieved RPO", secs(report.rpo_achieved_s)),
        Row("Recovery point (time on the primary of the data recovered)", when(report.recovery_point)),
        Row("Canary", _pairs(report.canary, _CANARY_KEYS)),
        Row("Smoke test", _pairs(report.smoke, _SMOKE_KEYS)),
        Row(
            "Primary availability",
            f"{a.probes} probes, {ratio} writable, longest unwritable run {a.longest_unwritable_s:.1f} s",
        ),
        Row("Cleanup duration", secs(report.cleanup_s)),
        Row("Protection gap (no consistent copy on the secondary)", secs(report.protection_gap_s)),
        Row(
            "Final mirror state", ", ".join(f"{k}: {v}" for k, v in report.final_mirror_state.items()) or "-"
        ),
        Row("Failed step", report.failed_step or "-"),
        Row("Refusal reason", report.refused or "-"),
        Row("Versions", ", ".join(f"{k} {v}" for k, v in report.versions.items()) or "-"),
    ]
    if report.flow_run_url:
        url = _flow_url(report)
        rows.append(Row("Flow run", report.flow_run_url, link=url))
    return rows


def check_rows(report: DrillReport) -> list[list[str]]:
    return [[c.name, "pass" if c.ok else "FAIL", c.value or "-", c.target or "-"] for c in report.checks]


def step_row(s: DrillStep) -> list[str]:
    return [
        s.phase,
        s.name,
        s.site,
        s.outcome,
        _clock(s.started_at),
        _clock(s.ended_at),
        _num(s.seconds),
        s.error or "",
    ]


STEP_COLUMNS = ("phase", "step", "site", "outcome", "start", "end", "seconds", "error")
CHECK_COLUMNS = ("check", "result", "measured", "target")
HISTORY_COLUMNS = (
    "date",
    "drill",
    "mode",
    "verdict",
    "RTO promotion\u2192writable s",
    "achieved RPO s",
    "cleanup s",
)


def earlier(report: DrillReport, history: Sequence[DrillReport]) -> list[DrillReport]:
    """The drills of ``history`` started before ``report`` (itself excluded), newest first."""
    out = [h for h in history if h.drill_id != report.drill_id and h.started_at < report.started_at]
    return sorted(out, key=lambda h: (h.started_at, h.drill_id), reverse=True)


def _trend(name: str, now: float | None, before: Sequence[DrillReport], attr: str) -> str:
    if now is None:
        return f"{name} - (not measured)"
    prev = next((h for h in before if getattr(h, attr) is not None), None)
    if prev is None:
        return f"{name} {now:.1f} s (no earlier measurement)"
    return f"{name} {now:.1f} s ({_delta(now, getattr(prev, attr))} vs previous, {prev.drill_id})"


def trend(report: DrillReport, history: Sequence[DrillReport]) -> list[str]:
    """RTO and RPO of ``report`` against the newest earlier drill that measured each."""
    before = earlier(report, history)
    return [
        _trend("RTO", report.rto_promotion_to_writable_s, before, "rto_promotion_to_writable_s"),
        _trend("RPO", report.rpo_achieved_s, before, "rpo_achieved_s"),
    ]


def history_row(h: DrillReport) -> list[str]:
    rto, rpo = _num(h.rto_promotion_to_writable_s), _num(h.rpo_achieved_s)
    return [when(h.started_at)[:10], h.drill_id, h.mode, verdict(h), rto, rpo, _num(h.cleanup_s)]


def title(report: DrillReport) -> str:
    return f"{report.app} drill ({report.mode}): {verdict(report)}, {report.drill_id}"


# ---------------------------------------------------------------------------------------- markdown


def _md(text: str) -> str:
    """Inert one-line Markdown (a table cell): no link, image, raw HTML, emphasis or ``|``; see
    :func:`~drkit.views.markdown.md_inline`."""
    return md_inline(text)


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(_md(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_md(v) if v else " " for v in row) + " |" for row in rows]
    return out


def report_markdown(report: DrillReport, history: Sequence[DrillReport]) -> str:
    """The report for people, in Markdown: title, summary, checks, steps, history and trend."""
    rows: list[list[str]] = []
    for row in summary(report):
        value = _md(row.value)
        if row.link:
            value = f"[{_md(row.link)}]({row.link})"
        rows.append([_md(row.label), value])
    lines = [f"# {_md(title(report))}", ""]
    lines += ["| | |", "|---|---|"] + [f"| {label} | {value} |" for label, value in rows]
    lines += ["", f"Timeline chart: `charts/{TIMELINE_CHART}.png`, next to this report.", ""]
    lines += ["## Checks", "", *_md_table(CHECK_COLUMNS, check_rows(report)), ""]
    lines += ["## Steps", "", *_md_table(STEP_COLUMNS, [step_row(s) for s in report.steps]), ""]
    lines += [
        "## History",
        "",
        "Trend versus the previous drill: " + "; ".join(_md(t) for t in trend(report, history)) + ".",
        "",
    ]
    before = earlier(report, history)
    if before:
        lines += _md_table(HISTORY_COLUMNS, [history_row(h) for h in before[:HISTORY_ROWS]])
        if len(before) > HISTORY_ROWS:
            lines += ["", f"{len(before) - HISTORY_ROWS} older drills not listed."]
    else:
        lines.append("No earlier drill of this app.")
    lines += ["", f"Report schema version {report.schema_version}; durations in seconds, times in UTC.", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ tables


def history_rows(reports: Sequence[DrillReport]) -> list[dict[str, Any]]:
    """One row per drill for a Prefect table artifact, in the order given; JSON values only."""

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return [
        {
            "started_at": when(h.started_at),
            "drill_id": h.drill_id,
            "app": h.app,
            "mode": h.mode,
            "verdict": verdict(h),
            "rto_promotion_to_writable_s": r(h.rto_promotion_to_writable_s),
            "rto_start_to_canary_s": r(h.rto_start_to_canary_s),
            "rpo_achieved_s": r(h.rpo_achieved_s),
            "cleanup_s": r(h.cleanup_s),
            "protection_gap_s": r(h.protection_gap_s),
            "checks_failed": ", ".join(c.name for c in h.checks if not c.ok),
            "failed_step": h.failed_step,
            "refused": h.refused,
        }
        for h in reports
    ]
