"""The drill report as one self-contained HTML page (inline CSS, the timeline chart as a data URL):
the Markdown's content (:mod:`drkit.views.drill_report`), every value escaped where it lands."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from drkit.domain.drill import DrillReport
from drkit.views.drill_report import (
    CHECK_COLUMNS,
    HISTORY_COLUMNS,
    HISTORY_ROWS,
    STEP_COLUMNS,
    check_rows,
    earlier,
    history_row,
    step_row,
    summary,
    title,
    trend,
    verdict,
    when,
)

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
    rows = []
    for row in summary(report):
        value = _e(row.value)
        if row.link:
            value = f'<a href="{_e(row.link)}" rel="noopener noreferrer">{_e(row.link)}</a>'
        elif row.badge:
            value = f'<span class="badge {_e(v)}">{_e(v)}</span>'
        rows.append(f'<tr><th scope="row">{_e(row.label)}</th><td class="wrap">{value}</td></tr>')
    checks = _html_table(
        CHECK_COLUMNS,
        [
            ("" if c.ok else "fail", _cells(("wrap", "pass" if c.ok else "FAIL", "wrap", "wrap"), r))
            for c, r in zip(report.checks, check_rows(report), strict=True)
        ],
    )
    steps = _html_table(
        STEP_COLUMNS,
        [
            ("fail" if s.outcome == "failed" else s.outcome, _cells(_STEP_CLASSES, step_row(s)))
            for s in report.steps
        ],
    )
    before = earlier(report, history)
    if before:
        past = _html_table(
            HISTORY_COLUMNS,
            [
                (
                    "" if h.passed else "fail",
                    _cells(("time", "", "", _VERDICT_CLASS[verdict(h)], *_NUMS), history_row(h)),
                )
                for h in before[:HISTORY_ROWS]
            ],
        )
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
<title>{_e(title(report))}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1><span>{_e(report.app)} drill ({_e(report.mode)})</span> <span class="badge {_e(v)}">{_e(v)}</span></h1>
<p class="sub">Drill <code>{_e(report.drill_id)}</code>: {_e(report.secondary)} proved while {_e(report.primary)} \
kept serving, {_e(when(report.started_at))} to {_e(when(report.ended_at))}.</p>
<h2>Summary</h2>
<table class="summary"><tbody>{"".join(rows)}</tbody></table>
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
