"""The drill report in every format an auditor reads (JSON, Markdown, self-contained HTML, a PNG
timeline, table rows), and where it is kept (``<prefix>/drills/<app>/<drill-id>/``, ``report.json``
written last). Every value is escaped where it lands; the report names Secrets, never their values.

With a key, ``report.json`` carries a MAC (``mac``, ``mac_key_id``: see
:mod:`drkit.domain.signed_state`) bound to its app and drill id, and a report read back (the
History of the next drill, ``standby drill report``) is used only when it passes.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from drkit.adapters.objectstore import ObjectStore
from drkit.charts import render_png
from drkit.domain import crypto
from drkit.domain.drill import DrillReport, DrillStep
from drkit.domain.errors import IntegrityError, StandbyError
from drkit.domain.layout import StoreLayout
from drkit.domain.markdown import md_inline
from drkit.domain.signed_state import report_context, seal, unseal

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TIMELINE_CHART = "timeline"
"""Name of the timeline chart: ``charts/timeline.png`` next to the report."""
HISTORY_ROWS = 24
"""Earlier drills shown in the History table (newest first); older ones are counted, not listed."""
MINUS = "\u2212"
_FLOW_URL = re.compile(r"^https?://[^\s()<>|\"'`]+$")
_MODES = {
    "promote": "promote (the secondary's images promoted and the app started there, then demoted and resynced)",
    "isolated": "isolated (a scratch copy of the secondary's images started; mirroring untouched)",
}
_CANARY_KEYS = ("verdict", "path", "sha256", "written_at")
_SMOKE_KEYS = ("status", "writable", "login", "round_trip")
INTEGRITY = "integrity check failed"
"""How the line of a report refused by its integrity check starts (after its key)."""


# ------------------------------------------------------------------------------------ formatting


def verdict(report: DrillReport) -> str:
    """``PASSED``, ``FAILED`` or ``REFUSED``."""
    if report.refused:
        return "REFUSED"
    return "PASSED" if report.passed else "FAILED"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} s"


def _when(t: datetime | None) -> str:
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
class _Row:
    """One summary line: label and value; ``link`` is an http(s) URL to render as a link."""

    label: str
    value: str
    link: str = ""
    badge: bool = False


def _summary(report: DrillReport) -> list[_Row]:
    a = report.availability
    ratio = "-" if a.ratio is None else f"{100 * a.ratio:.1f} %"
    rows = [
        _Row("App", report.app),
        _Row("Drill id", report.drill_id),
        _Row("Mode", _MODES.get(report.mode, report.mode)),
        _Row("Verdict", verdict(report), badge=True),
        _Row("Primary (kept serving)", report.primary),
        _Row("Secondary (proved)", report.secondary),
        _Row("Start", _when(report.started_at)),
        _Row("End (cleanup included)", _when(report.ended_at)),
        _Row("RTO, promotion \u2192 writable", _secs(report.rto_promotion_to_writable_s)),
        _Row("RTO, drill start \u2192 canary verified", _secs(report.rto_start_to_canary_s)),
        _Row("Achieved RPO", _secs(report.rpo_achieved_s)),
        _Row("Recovery point (time on the primary of the data recovered)", _when(report.recovery_point)),
        _Row("Canary", _pairs(report.canary, _CANARY_KEYS)),
        _Row("Smoke test", _pairs(report.smoke, _SMOKE_KEYS)),
        _Row(
            "Primary availability",
            f"{a.probes} probes, {ratio} writable, longest unwritable run {a.longest_unwritable_s:.1f} s",
        ),
        _Row("Cleanup duration", _secs(report.cleanup_s)),
        _Row("Protection gap (no consistent copy on the secondary)", _secs(report.protection_gap_s)),
        _Row(
            "Final mirror state", ", ".join(f"{k}: {v}" for k, v in report.final_mirror_state.items()) or "-"
        ),
        _Row("Failed step", report.failed_step or "-"),
        _Row("Refusal reason", report.refused or "-"),
        _Row("Versions", ", ".join(f"{k} {v}" for k, v in report.versions.items()) or "-"),
    ]
    if report.flow_run_url:
        url = _flow_url(report)
        rows.append(_Row("Flow run", report.flow_run_url, link=url))
    return rows


def _check_rows(report: DrillReport) -> list[list[str]]:
    return [[c.name, "pass" if c.ok else "FAIL", c.value or "-", c.target or "-"] for c in report.checks]


def _step_row(s: DrillStep) -> list[str]:
    return [s.phase, s.name, s.site, s.outcome, _clock(s.started_at), _clock(s.ended_at), _num(s.seconds),
            s.error or ""]  # fmt: skip


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


def _history_row(h: DrillReport) -> list[str]:
    rto, rpo = _num(h.rto_promotion_to_writable_s), _num(h.rpo_achieved_s)
    return [_when(h.started_at)[:10], h.drill_id, h.mode, verdict(h), rto, rpo, _num(h.cleanup_s)]


def _title(report: DrillReport) -> str:
    return f"{report.app} drill ({report.mode}): {verdict(report)}, {report.drill_id}"


# -------------------------------------------------------------------------------------------- json


def report_json(report: DrillReport, key: crypto.MasterKey | None = None) -> bytes:
    """The report as JSON (indent 2), ``schema_version`` its first field; with ``key``, its ``mac``
    and ``mac_key_id`` last."""
    if key is None:
        return report.model_dump_json(indent=2).encode("utf-8")
    sealed = seal(report.model_dump(mode="json"), key, what="drill-report",
                  context=report_context(report.app, report.drill_id))  # fmt: skip
    return json.dumps(sealed, indent=2, ensure_ascii=False).encode("utf-8")


# ---------------------------------------------------------------------------------------- markdown


def _md(text: str) -> str:
    """Inert one-line Markdown (a table cell): no link, image, raw HTML, emphasis or ``|``; see
    :func:`~drkit.domain.markdown.md_inline`."""
    return md_inline(text)


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(_md(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_md(v) if v else " " for v in row) + " |" for row in rows]
    return out


def report_markdown(report: DrillReport, history: Sequence[DrillReport]) -> str:
    """The report for people, in Markdown: title, summary, checks, steps, history and trend."""
    summary: list[list[str]] = []
    for row in _summary(report):
        value = _md(row.value)
        if row.link:
            value = f"[{_md(row.link)}]({row.link})"
        summary.append([_md(row.label), value])
    lines = [f"# {_md(_title(report))}", ""]
    lines += ["| | |", "|---|---|"] + [f"| {label} | {value} |" for label, value in summary]
    lines += ["", f"Timeline chart: `charts/{TIMELINE_CHART}.png`, next to this report.", ""]
    lines += ["## Checks", "", *_md_table(CHECK_COLUMNS, _check_rows(report)), ""]
    lines += ["## Steps", "", *_md_table(STEP_COLUMNS, [_step_row(s) for s in report.steps]), ""]
    lines += [
        "## History",
        "",
        "Trend versus the previous drill: " + "; ".join(_md(t) for t in trend(report, history)) + ".",
        "",
    ]
    before = earlier(report, history)
    if before:
        lines += _md_table(HISTORY_COLUMNS, [_history_row(h) for h in before[:HISTORY_ROWS]])
        if len(before) > HISTORY_ROWS:
            lines += ["", f"{len(before) - HISTORY_ROWS} older drills not listed."]
    else:
        lines.append("No earlier drill of this app.")
    lines += ["", f"Report schema version {report.schema_version}; durations in seconds, times in UTC.", ""]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- html

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1f2328; background: #f6f8fa; margin: 0; }
main { max-width: 1120px; margin: 24px auto; padding: 24px 32px; background: #fff;
       border: 1px solid #d0d7de; border-radius: 8px; }
h1 { font-size: 22px; margin: 0 0 4px; display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
.sub { color: #57606a; margin: 0 0 16px; }
.badge { font-size: 13px; font-weight: 700; letter-spacing: .04em; padding: 3px 10px; border-radius: 999px;
         color: #fff; }
.badge.PASSED { background: #1a7f37; } .badge.FAILED { background: #cf222e; }
.badge.REFUSED { background: #9a6700; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
th, td { border: 1px solid #d0d7de; padding: 5px 8px; text-align: left; vertical-align: top; }
thead th { background: #f6f8fa; font-weight: 600; white-space: nowrap; }
table.summary th { width: 34%; background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.err, td.wrap { overflow-wrap: anywhere; }
td.err { color: #cf222e; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
tr.fail td { background: #ffebe9; }
tr.skipped td, tr.pending td { color: #57606a; }
.pass { color: #1a7f37; font-weight: 600; } .FAIL { color: #cf222e; font-weight: 700; }
.refused { color: #9a6700; font-weight: 700; }
.chart { margin: 12px 0; text-align: center; }
.chart img { max-width: 100%; height: auto; border: 1px solid #d0d7de; border-radius: 6px; }
.trend { margin: 4px 0 10px; }
.trend li { margin: 2px 0; }
footer { color: #57606a; font-size: 12px; margin-top: 24px; }
a { color: #0969da; }
"""


_VERDICT_CLASS = {"PASSED": "pass", "FAILED": "FAIL", "REFUSED": "refused"}
_STEP_CLASSES = ("", "", "", "", "time", "time", "num", "err")
_NUMS = ("num", "num", "num")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


Cells = Sequence[tuple[str, str]]
"""Cells of an HTML row: (class, text) each."""


def _cells(classes: Sequence[str], values: Sequence[str]) -> list[tuple[str, str]]:
    return list(zip(classes, values, strict=True))


def _html_table(columns: Sequence[str], rows: Sequence[tuple[str, Cells]]) -> str:
    """A table; each row is (row class, cells), every text escaped."""
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for row_class, cells in rows:
        tds = "".join(f'<td class="{_e(k)}">{_e(v)}</td>' if k else f"<td>{_e(v)}</td>" for k, v in cells)
        body.append(f'<tr class="{_e(row_class)}">{tds}</tr>' if row_class else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def report_html(report: DrillReport, history: Sequence[DrillReport], chart_png: bytes) -> str:
    """A self-contained HTML page (inline CSS, the chart as a data URL), the Markdown's content."""
    v = verdict(report)
    summary = []
    for row in _summary(report):
        value = _e(row.value)
        if row.link:
            value = f'<a href="{_e(row.link)}" rel="noopener noreferrer">{_e(row.link)}</a>'
        elif row.badge:
            value = f'<span class="badge {_e(v)}">{_e(v)}</span>'
        summary.append(f'<tr><th scope="row">{_e(row.label)}</th><td class="wrap">{value}</td></tr>')
    checks = _html_table(
        CHECK_COLUMNS,
        [("" if c.ok else "fail", _cells(("wrap", "pass" if c.ok else "FAIL", "wrap", "wrap"), r))
         for c, r in zip(report.checks, _check_rows(report), strict=True)],
    )  # fmt: skip
    steps = _html_table(
        STEP_COLUMNS,
        [("fail" if s.outcome == "failed" else s.outcome, _cells(_STEP_CLASSES, _step_row(s))) for s in report.steps],
    )  # fmt: skip
    before = earlier(report, history)
    if before:
        past = _html_table(
            HISTORY_COLUMNS,
            [("" if h.passed else "fail", _cells(("time", "", "", _VERDICT_CLASS[verdict(h)], *_NUMS), _history_row(h)))
             for h in before[:HISTORY_ROWS]],
        )  # fmt: skip
        if len(before) > HISTORY_ROWS:
            past += f"<p>{len(before) - HISTORY_ROWS} older drills not listed.</p>"
    else:
        past = "<p>No earlier drill of this app.</p>"
    trend_items = "".join(f"<li>{_e(t)}</li>" for t in trend(report, history))
    chart = ""
    if chart_png:
        data = base64.b64encode(chart_png).decode("ascii")
        alt = f"Timeline of the steps of drill {report.drill_id}"
        chart = f'<div class="chart"><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></div>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(_title(report))}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1><span>{_e(report.app)} drill ({_e(report.mode)})</span> <span class="badge {_e(v)}">{_e(v)}</span></h1>
<p class="sub">Drill <code>{_e(report.drill_id)}</code>: {_e(report.secondary)} proved while {_e(report.primary)} \
kept serving, {_e(_when(report.started_at))} to {_e(_when(report.ended_at))}.</p>
<h2>Summary</h2>
<table class="summary"><tbody>{"".join(summary)}</tbody></table>
<h2>Timeline</h2>
{chart or "<p>No chart.</p>"}
<h2>Checks</h2>
{checks}
<h2>Steps</h2>
{steps}
<h2>History</h2>
<p class="trend">Trend versus the previous drill:</p>
<ul class="trend">{trend_items}</ul>
{past}
<footer>Report schema version {_e(report.schema_version)}; durations in seconds, times in UTC.</footer>
</main>
</body>
</html>
"""


# ------------------------------------------------------------------------------------------- chart


def timeline_png(report: DrillReport) -> bytes:
    """A Gantt chart of the steps (seconds since the drill start), by phase, failed steps in red."""
    from matplotlib.patches import Patch

    colors = {"drill": "#4c72b0", "cleanup": "#8c8c8c", "failed": "#d62728"}
    steps = list(report.steps)
    t0 = report.started_at
    ends = [(s.ended_at - t0).total_seconds() for s in steps if s.ended_at is not None]
    span = max([*ends, 1.0])

    def draw(fig: Figure, ax: Axes) -> None:
        for y, s in enumerate(steps):
            color = colors["failed"] if s.outcome == "failed" else colors[s.phase]
            if s.started_at is None:
                ax.text(0, y, f"  {s.outcome}", va="center", fontsize=8, color="#57606a")
                continue
            start = (s.started_at - t0).total_seconds()
            end = (s.ended_at - t0).total_seconds() if s.ended_at is not None else span
            width = max(end - start, span / 400)  # an instant step stays visible
            ax.barh(y, width, left=start, height=0.6, color=color, edgecolor="none")
            label = _secs(s.seconds) if s.seconds is not None else s.outcome
            if s.outcome not in ("done", "failed"):
                label += f" ({s.outcome})"
            ax.text(start + width + span / 200, y, label, va="center", fontsize=8)
        ax.set_yticks(range(len(steps)), [s.name for s in steps], fontsize=9)
        ax.set_ylim(len(steps) - 0.5, -0.5)  # first step on top
        ax.set_xlim(0, span * 1.15)
        ax.set_xlabel(f"seconds since the drill start ({_when(t0)})")
        ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.set_title(f"{report.app} drill ({report.mode}): {verdict(report)}\n{report.drill_id}", fontsize=11)
        handles = [Patch(color=colors["drill"], label="drill phase"), Patch(color=colors["cleanup"], label="cleanup phase"),
                   Patch(color=colors["failed"], label="failed step")]  # fmt: skip
        # below the axis, where no bar can hide behind it
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12),
            ncol=3,
            fontsize=8,
            frameon=False,
        )
        fig.tight_layout()

    return render_png((10, max(3.0, 0.42 * len(steps) + 1.6)), draw)


# ------------------------------------------------------------------------------------------ tables


def history_rows(reports: Sequence[DrillReport]) -> list[dict[str, Any]]:
    """One row per drill for a Prefect table artifact, in the order given; JSON values only."""

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return [
        {
            "started_at": _when(h.started_at),
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


# ------------------------------------------------------------------------------------------- store


def store_report(
    store: ObjectStore, layout: StoreLayout, report: DrillReport, history: Sequence[DrillReport],
    *, key: crypto.MasterKey | None = None,
) -> dict[str, str]:  # fmt: skip
    """Write the chart, Markdown, HTML and, last, JSON of ``report``; format (md, html, png, json) -> key.

    ``report.json`` is written last: its presence marks the report complete (:func:`load_reports`);
    with ``key`` it is signed.
    """
    png = timeline_png(report)
    keys = {
        "png": layout.drill_chart_key(report.app, report.drill_id, TIMELINE_CHART),
        "md": layout.drill_report_key(report.app, report.drill_id, "md"),
        "html": layout.drill_report_key(report.app, report.drill_id, "html"),
        "json": layout.drill_report_key(report.app, report.drill_id, "json"),
    }
    store.put(keys["png"], png, content_type="image/png")
    store.put(
        keys["md"],
        report_markdown(report, history).encode("utf-8"),
        content_type="text/markdown; charset=utf-8",
    )
    store.put(
        keys["html"],
        report_html(report, history, png).encode("utf-8"),
        content_type="text/html; charset=utf-8",
    )
    store.put(keys["json"], report_json(report, key), content_type="application/json")
    return keys


def load_reports(
    store: ObjectStore, layout: StoreLayout, app: str, *, skipped: list[str] | None = None,
    key: crypto.MasterKey | None = None, store_name: str = "",
) -> list[DrillReport]:  # fmt: skip
    """Every complete report (``report.json``) of ``app``, oldest first.

    A report that cannot be read or parsed, that names another app or drill than its folder, or
    (with ``key``) whose MAC does not pass for its folder's app and drill, is skipped; ``skipped``
    (when given) receives one line per skipped key saying why (``<key>: integrity check failed:
    drill report <id> of app <app> in the store of <store_name> ...`` for the last). Listing the
    store itself may still fail (the store's error says how).
    """
    found: list[DrillReport] = []
    for info in store.list(layout.drills_prefix(app)):
        drill_id = layout.drill_id_of_report_key(app, info.key)
        if drill_id is None:
            continue
        why = ""
        where = f" in the store of {store_name}" if store_name else ""
        try:
            body = unseal(json.loads(store.get(info.key)), key, what="drill-report",
                          context=report_context(app, drill_id), name=f"drill report {drill_id} of app {app}{where}")  # fmt: skip
            report = DrillReport.model_validate(body)
        except IntegrityError as error:
            why = error.message
        except StandbyError as error:
            why = error.message
        except (ValidationError, ValueError) as error:
            why = f"not a drill report: {str(error).splitlines()[0]}"
        else:
            if report.app != app or report.drill_id != drill_id:
                why = f"names app {report.app!r} and drill {report.drill_id!r}, not its folder's"
            else:
                found.append(report)
        if why and skipped is not None:
            skipped.append(f"{info.key}: {why}")
    return sorted(found, key=lambda r: (r.started_at, r.drill_id))
