"""rbd prints something unexpected (truncated or non-JSON output, wrong types, unknown states, timestamps in the future, a failure, a hang).

The real ``RbdCli`` runs a stand-in ``rbd`` executable (a real process through the real runner)
that prints recorded output, altered. A sampler that reads nothing usable raises one line naming
the site, the command and the next step; a status it can read but not trust (an unknown state, a
snapshot time in the future) gives an explicit *unknown* with a reason, never a number.
"""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drkit.adapters.rbd import RbdCli
from drkit.adapters.runner import LocalRunner
from drkit.domain.errors import StandbyError, TransientError
from drkit.domain.rpo import image_lag
from drkit.jobs.rpo import sample_sites
from drkit.testing.clock import FakeClock
from drkit.testing.dr import fake_config
from tests.reliability.helpers import assert_one_line

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "rbd" / "pool-status-verbose-b.json"
NOW = datetime(2026, 11, 21, 22, 21, 45, tzinfo=UTC)  # five seconds after the recording


def _rbd(tmp: Path, output: str, *, code: int = 0, stderr: str = "", sleep: float = 0) -> RbdCli:
    out = tmp / "out.txt"
    out.write_text(output)
    script = tmp / "rbd"
    script.write_text(f"#!/bin/sh\nsleep {sleep}\ncat '{out}'\necho '{stderr}' >&2\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return RbdCli(
        runner=LocalRunner(context={"site": "site-b"}), site="site-b", base_argv=(str(script),), timeout=1.0
    )


def _golden() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(GOLDEN.read_text())
    return doc


def _edit(change: Any) -> str:
    doc = _golden()
    change(doc)
    return json.dumps(doc)


def _image(doc: dict[str, Any]) -> dict[str, Any]:
    image: dict[str, Any] = doc["images"][0]
    return image


UNREADABLE: dict[str, tuple[str, dict[str, Any], type[StandbyError], str]] = {
    "truncated JSON": (GOLDEN.read_text()[:300], {}, StandbyError, "not JSON"),
    "empty output": ("", {}, StandbyError, "not JSON"),
    "a warning before the JSON": (
        "2026-11-21T22:21:39 warning: clock skew\n" + GOLDEN.read_text(),
        {},
        StandbyError,
        "not JSON",
    ),
    "a JSON list": ("[]", {}, StandbyError, "expected a JSON object"),
    "images is a string": (_edit(lambda d: d.update(images="golden-snap")), {}, StandbyError, "'images'"),
    "image without a name": (_edit(lambda d: _image(d).pop("name")), {}, StandbyError, "'name'"),
    "last_update is a number": (
        _edit(lambda d: _image(d).update(last_update=1795299699)),
        {},
        StandbyError,
        "last_update",
    ),
    "peer_sites is an object": (
        _edit(lambda d: _image(d).update(peer_sites={"a": 1})),
        {},
        StandbyError,
        "peer_sites",
    ),
    "rbd fails (pool missing)": (
        "",
        {"code": 2, "stderr": "rbd: error opening pool 'replicapool': (2) No such file"},
        StandbyError,
        "exited with 2",
    ),
    "rbd hangs": (GOLDEN.read_text(), {"sleep": 5}, TransientError, "site-b"),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_rbd_output_is_one_line_naming_site_and_command(case: str, tmp_path: Path) -> None:
    output, knobs, error, expected = UNREADABLE[case]
    rbd = _rbd(tmp_path, output, **knobs)
    with pytest.raises(error) as info:
        sample_sites({"site-b": rbd}, fake_config(), clock=FakeClock(NOW))
    assert_one_line(str(info.value), "site-b", "mirror pool status", expected)


UNTRUSTED: dict[str, tuple[Any, str]] = {
    "unknown state": (lambda d: _image(d).update(state="up+exploding"), "exploding"),
    "snapshot time an hour ahead": (
        lambda d: _image(d).update(description=_image(d)["description"].replace("1795299679", "1795303279")),
        "future",
    ),
    "last_update a day ahead": (lambda d: _image(d).update(last_update="2026-11-22 22:21:39"), "future"),
    "description not JSON": (lambda d: _image(d).update(description="replaying, {not json"), "description"),
}


@pytest.mark.parametrize("case", list(UNTRUSTED))
def test_untrusted_status_is_an_explicit_unknown_with_a_reason(case: str, tmp_path: Path) -> None:
    change, expected = UNTRUSTED[case]
    rbd = _rbd(tmp_path, _edit(change))
    (sampling,) = sample_sites({"site-b": rbd}, fake_config(), clock=FakeClock(NOW))
    assert sampling.valid, sampling.error
    (sample,) = sampling.samples
    lag = image_lag(sample, NOW)
    assert lag.lag_seconds is None, lag  # unknown, never a number
    assert "\n" not in lag.reason and expected in lag.reason.lower(), lag.reason
