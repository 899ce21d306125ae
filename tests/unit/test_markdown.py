"""What came from outside is inert in the plan and drill report Markdown: no link, image, HTML or
table row can be forged into the form an operator approves."""

from __future__ import annotations

import re

import pytest

from drkit.domain import crypto
from drkit.jobs.backup import run_backup
from drkit.jobs.operations import prepare
from drkit.jobs.world import read_placement
from drkit.testing.dr import fake_dr
from drkit.views.drill_report import report_markdown
from drkit.views.markdown import md_inline
from drkit.views.operations import plan_markdown
from tests.unit.test_drill_report import _journal, _report

KEY = crypto.MasterKey(bytes(range(32)))
FORGED = "![x](http://evil/x.png)<script>alert(1)</script>"
BREAKER = "ok | injected | cell\n| # | forged step | site-z |\n<img src=x>[click](http://evil)"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (FORGED, r"!\[x\](http://evil/x.png)&lt;script>alert(1)&lt;/script>"),
        ("a | b\n\n# c", r"a \| b # c"),
        ("`code` **bold** <http://auto>", r"\`code\` \*\*bold\*\* &lt;http://auto>"),
        ("lag <= 60s, a_b \\ end", r"lag <= 60s, a_b \\ end"),
    ],
)
def test_md_inline_makes_text_inert_and_one_line(text: str, shown: str) -> None:
    assert md_inline(text) == shown


def _inert(md: str) -> None:
    assert "<script" not in md and "<img" not in md and "![" not in md
    assert not re.search(r"(?<!\\)\]\(http://evil", md)  # no link: its bracket is escaped


def _table_rows(md: str, header: str) -> list[str]:
    lines = md.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def _cells(row: str) -> int:
    """Columns of a table row: ``|`` not escaped by a backslash."""
    return sum(1 for i, ch in enumerate(row) if ch == "|" and (i == 0 or row[i - 1] != "\\")) - 1


def test_a_forged_operation_kind_in_the_placement_record_reaches_the_plan_inert() -> None:
    dr = fake_dr()
    app = dr.world.config.app("nexus")
    b = dr.world.bundle("site-a")
    run_backup(app, b.site, b.cluster, b.store, key=KEY, clock=dr.clock)
    record = read_placement(dr.world, app).record.model_copy(
        update={
            "epoch": 7,
            "operation": "relocate-20261130T000000Z-abcdef",
            "operation_kind": FORGED + "\n| x | y |",
        }
    )  # what a writer of the bucket can put there
    for ref in dr.world.stores():
        ref.store.put(ref.layout.placement_key("nexus"), record.model_dump_json().encode())
    # without a key the record is not checked (with one it is refused: tests/unit/test_signed_state.py)
    plan = prepare(dr.world, "nexus", "relocate", "site-b", key=None).plan
    held = [c for c in plan.checks if c.name == "no other operation"]
    assert held and FORGED in held[0].detail  # the check quotes it...
    md = plan_markdown(plan)
    _inert(md)  # ...and the Markdown shows it as text
    assert r"!\[x\](http://evil/x.png)&lt;script>" in md
    rows = _table_rows(md, "| precondition | result | seen |")
    assert len(rows) == len(plan.checks) and all(_cells(r) == 3 for r in rows)


def test_a_check_detail_with_pipes_and_newlines_keeps_the_plan_table_intact() -> None:
    dr = fake_dr()
    plan = prepare(dr.world, "nexus", "relocate", "site-b", key=KEY).plan
    checks = tuple(c.model_copy(update={"detail": BREAKER}) for c in plan.checks)
    forged = plan.model_copy(update={"checks": checks, "refusals": checks[:1], "forced": (BREAKER,)})
    md = plan_markdown(forged, op_id=FORGED)
    _inert(md)
    rows = _table_rows(md, "| precondition | result | seen |")
    assert len(rows) == len(checks) and all(_cells(r) == 3 for r in rows)
    steps = _table_rows(md, "| # | step | site |")
    assert len(steps) == len(plan.steps) and "forged step" not in "".join(steps)


def test_the_drill_report_markdown_shows_a_forged_step_error_inert() -> None:
    report = _report(_journal(fail="drill-smoke", error=BREAKER + FORGED))
    md = report_markdown(report, [])
    _inert(md)
    rows = _table_rows(md, "| phase | step | site | outcome | start | end | seconds | error |")
    assert len(rows) == len(report.steps) and all(_cells(r) == 8 for r in rows)
