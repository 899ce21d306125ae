"""``docs/config-reference.md`` is generated from the models' descriptions, and the committed copy is current."""

from __future__ import annotations

from pathlib import Path

from drkit.config_reference import main, reference, undocumented

DOC = Path(__file__).resolve().parents[2] / "docs" / "config-reference.md"


def test_every_field_of_the_configuration_and_of_each_request_has_a_description() -> None:
    assert undocumented() == []


def test_the_committed_reference_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == reference(), (
        "docs/config-reference.md is out of date: run"
        " `python -m drkit.config_reference --output docs/config-reference.md`"
    )


def test_the_reference_names_every_section_and_key_of_the_example(tmp_path: Path) -> None:
    out = tmp_path / "ref.md"
    assert main(["--output", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    for heading in (
        "### top level: StandbyConfig",
        "### `sites[].s3`: S3Location",
        "### `apps[].checks`: Checks",
        "### restore (flow `restore`",
        "#### `retention`: RetentionPolicy",
    ):
        assert heading in text, heading
    assert "| `rpo_target` | duration | **required** |" in text
    assert (
        "| `bound_timeout` | number | `120.0` | seconds to wait for the restored PVCs to be Bound |" in text
    )
