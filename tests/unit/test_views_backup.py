"""The verify and restore reports' Markdown: a title and one inert bullet per line."""

from __future__ import annotations

from drkit.views.backup import report_lines_markdown


def test_each_line_is_a_bullet_and_text_from_the_bucket_stays_inert() -> None:
    text = report_lines_markdown(
        "Verify backup of nexus",
        ["v1/ConfigMap/nexus-dr/app.yaml: ok", "bad object [click](http://evil.example) <img src=x>"],
    )
    lines = text.splitlines()
    assert lines[0] == "# Verify backup of nexus" and lines[1] == ""
    assert lines[2] == "- v1/ConfigMap/nexus-dr/app.yaml: ok"
    assert lines[3] == "- bad object \\[click\\](http://evil.example) &lt;img src=x>"  # no link, no HTML
