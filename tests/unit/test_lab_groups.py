"""The xdist work units of ``make test`` (tests/conftest.py): every lab test in a lab group, the audit last."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import AUDIT_GROUP, AUDIT_MODULE, LAB_DIR_GROUPS, SLOW_MODULES, _unit_rank, lab_group

ROOT = Path(__file__).resolve().parents[2]


def test_every_tests_lab_module_but_the_ceph_one_is_in_one_of_the_tests_lab_groups() -> None:
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "tests" / "lab").glob("test_*.py"))
    groups = {m: lab_group(f"{m}::test_x") for m in modules}
    assert groups.pop("tests/lab/test_ceph_lab.py") is None  # its own Ceph, on mon ports of its own
    assert groups.pop(AUDIT_MODULE) == AUDIT_GROUP
    assert set(groups.values()) == set(LAB_DIR_GROUPS), groups


def test_lab_groups_go_first_slow_modules_next_and_the_audit_last() -> None:
    units = [
        "tests/unit/test_config.py",
        AUDIT_GROUP,
        SLOW_MODULES[1],
        "lab-2",
        SLOW_MODULES[0],
        *LAB_DIR_GROUPS,
    ]
    ranked = sorted(units, key=_unit_rank)
    labs = 1 + len(LAB_DIR_GROUPS)
    assert set(ranked[:labs]) == {"lab-2", *LAB_DIR_GROUPS}
    assert ranked[labs : labs + 2] == [SLOW_MODULES[0], SLOW_MODULES[1]]
    assert ranked[-2:] == ["tests/unit/test_config.py", AUDIT_GROUP]


def test_every_slow_module_exists() -> None:
    assert [m for m in SLOW_MODULES if not (ROOT / m).exists()] == []
