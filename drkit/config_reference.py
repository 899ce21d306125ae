"""The configuration reference, ``docs/config-reference.md``, generated from the models' descriptions.

    python -m drkit.config_reference --output docs/config-reference.md

Part one walks :class:`~drkit.domain.models.StandbyConfig` (the YAML file) model by model; part two
lists the request models of :mod:`drkit.jobs.requests` (each flow's run form and CLI defaults).
A unit test regenerates the file and fails when the committed copy differs, or when a field has no
description.
"""

from __future__ import annotations

import argparse
import json
import types
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from drkit.domain.model_base import Duration
from drkit.domain.models import KindSpec, StandbyConfig
from drkit.jobs import requests

HEADER = """# Configuration reference

Generated from the models' field descriptions by `python -m drkit.config_reference --output
docs/config-reference.md`; do not edit by hand (a unit test fails when this file is out of date).

Part one is the configuration file (`standby.yaml`, see `standby.example.yaml`): every key, its type,
its default and what it means. Unknown keys are refused. Durations are written `90s`, `5m`, `12h`,
`1d` or as a number of seconds. Relative paths are resolved against the file's folder.

Part two is the parameters of each use case: the run form of its Prefect deployment and the
defaults of the matching `standby` command come from these models.
"""

USE_CASES: tuple[tuple[str, type[requests.Request]], ...] = (
    (
        "backup (flow `backup`, every configured app when `app` is empty; `standby backup run`, one app)",
        requests.BackupAppsRequest,
    ),
    ("verify (flow `verify-backup`, `standby backup verify`)", requests.VerifyRequest),
    ("restore (flow `restore`, `standby backup restore`)", requests.RestoreRequest),
    ("RPO sample (flow `rpo-sample`, `standby rpo sample`)", requests.RpoSampleRequest),
    ("RPO watch (flow `rpo-watch`, `standby rpo watch`)", requests.RpoWatchRequest),
    ("RPO report (flow `rpo-report`, `standby rpo report`)", requests.RpoReportRequest),
    ("relocate (flow `relocate`, `standby relocate`)", requests.RelocateRequest),
    ("failover (flow `failover`, `standby failover`)", requests.FailoverRequest),
    ("failback (flow `failback`, `standby failback`)", requests.FailbackRequest),
    ("abort (flow `abort-operation`, `standby operation abort`)", requests.AbortRequest),
    ("drill (flow `drill`, `standby drill run`)", requests.DrillRequest),
    (
        "drill (flow `drill`, every configured app when `app` is empty; `standby drill run`, one app)",
        requests.DrillAppsRequest,
    ),
    ("drill cleanup (flow `drill-cleanup`, `standby drill cleanup`)", requests.DrillCleanupRequest),
    ("status (flow `status`, `standby status`)", requests.StatusRequest),
)


def _model_in(tp: Any) -> type[BaseModel] | None:
    """The model a field holds (directly, in a tuple, or optional), if any."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in get_args(tp):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def type_name(tp: Any) -> str:
    """A reader's name for a field's type."""
    if tp is Duration:
        return "duration"
    if tp is KindSpec:
        return "kind (`group/version/Kind` or `v1/Kind`)"
    origin = get_origin(tp)
    if origin is Annotated:
        return type_name(get_args(tp)[0])
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(tp))
    if origin in (Union, types.UnionType):
        names = [type_name(a) for a in get_args(tp) if a is not type(None)]
        return " \\| ".join(names) + (" (optional)" if type(None) in get_args(tp) else "")
    if origin in (tuple, list):
        return f"list of {type_name(get_args(tp)[0])}"
    if origin is dict:
        return "mapping"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"mapping ({tp.__name__})"
    plain: dict[Any, str] = {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        Path: "path",
        timedelta: "duration",
    }
    return plain.get(tp) or str(getattr(tp, "__name__", tp))


def _value(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        for unit, size in (("h", 3600), ("m", 60)):
            if seconds >= size and seconds % size == 0:
                return f"`{int(seconds // size)}{unit}`"
        return f"`{seconds:g}s`"
    if isinstance(value, BaseModel):
        return f"`{json.dumps(value.model_dump(mode='json'))}`" if value.model_dump() else "(defaults below)"
    if isinstance(value, tuple | list):
        return f"`{json.dumps([_item(v) for v in value])}`" if value else "`[]`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return "empty"
    return f"`{value}`"


def _item(value: Any) -> Any:
    """One item of a list default: nested lists as lists, models as their set fields, else their text."""
    if isinstance(value, tuple | list):
        return [_item(v) for v in value]
    if isinstance(value, BaseModel) and type(value).__str__ is BaseModel.__str__:
        return value.model_dump(mode="json", exclude_defaults=True)
    return str(value)


def default_text(info: FieldInfo) -> str:
    """The default of a field as the reader writes it; ``required`` when there is none."""
    if info.is_required():
        return "**required**"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel) and _model_in(info.annotation) is type(value):
        return "(defaults below)"
    return _value(value)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(model: type[BaseModel], prefix: str = "") -> list[str]:
    """A markdown table of ``model``'s fields: key, type, default, description."""
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        lines.append(
            f"| `{prefix}{name}` | {type_name(info.annotation)} | {default_text(info)}"
            f" | {_escape(info.description or '')} |"
        )
    return lines


def walk(model: type[BaseModel], path: str) -> Iterator[tuple[str, type[BaseModel]]]:
    """``(yaml path, model)`` for ``model`` and every model under it, depth first, each once."""
    seen: set[type[BaseModel]] = set()

    def visit(m: type[BaseModel], where: str) -> Iterator[tuple[str, type[BaseModel]]]:
        if m in seen:
            return
        seen.add(m)
        yield where, m
        for name, info in m.model_fields.items():
            sub = _model_in(info.annotation)
            if sub is not None:
                many = get_origin(info.annotation) in (tuple, list)
                yield from visit(sub, f"{where}.{name}{'[]' if many else ''}".lstrip("."))

    yield from visit(model, path)


def undocumented() -> list[str]:
    """Fields without a description, as ``Model.field`` (the reference would show a blank)."""
    models = [m for _, m in walk(StandbyConfig, "")] + [m for _, u in USE_CASES for _, m in walk(u, "")]
    return [
        f"{m.__name__}.{n}"
        for m in models
        for n, i in m.model_fields.items()
        if not (i.description or "").strip()
    ]


def reference() -> str:
    """The whole of ``docs/config-reference.md``."""
    out = [HEADER, "## Part one: the configuration file", ""]
    for where, model in walk(StandbyConfig, ""):
        title = f"`{where}`" if where else "top level"
        doc = (model.__doc__ or "").strip().splitlines()[0].replace("``", "`")
        out += [f"### {title}: {model.__name__}", "", doc, "", *table(model), ""]
    out += ["## Part two: the parameters of each use case", ""]
    out += [
        "Every flow also takes `config`: " + requests.CONFIG_DESCRIPTION + ".",
        "",
    ]
    for title, model in USE_CASES:
        for where, sub in walk(model, ""):
            doc = (sub.__doc__ or "").strip().splitlines()[0].replace("``", "`")
            heading = f"### {title}" if sub is model else f"#### `{where}`: {sub.__name__}"
            out += [heading, "", doc, "", *table(sub), ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the reference, or write it to ``--output``."""
    parser = argparse.ArgumentParser(prog="python -m drkit.config_reference", description=__doc__)
    parser.add_argument("--output", type=Path, help="write the reference here instead of stdout")
    args = parser.parse_args(argv)
    text = reference()
    if args.output is None:
        print(text, end="")
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
