"""Loading the YAML configuration into :class:`drkit.domain.models.StandbyConfig`.

Every failure becomes a :class:`ConfigError` whose message names the file, the field path and what
was expected, on one line, e.g.::

    standby.yaml: apps[0].rpo_target: expected a duration like '5m', '300s' or '1h', got 'soon'

The YAML is read within bounds (:mod:`drkit.domain.bounded_yaml`: size, values, alias uses, nesting,
and the size once aliases are expanded), so an alias bomb is refused in milliseconds, before
anything walks it.

Relative paths in the file (ceph.conf, keyrings, kubeconfig) are resolved against the file's folder.
The flows can also take the configuration from Prefect blocks (``config="block:<name>"``, see
``blocks/config.py``); the loaders then receive the loaded :class:`StandbyConfig` itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from drkit.domain.bounded_yaml import YamlTooLarge, load_bounded
from drkit.domain.errors import ConfigError
from drkit.domain.models import StandbyConfig

ENV_VAR = "STANDBY_CONFIG"
DEFAULT_FILE = Path("standby.yaml")


def default_config_path(explicit: Path | None = None) -> Path:
    """The config file to use: ``explicit``, else ``$STANDBY_CONFIG``, else ``./standby.yaml``."""
    if explicit is not None:
        return explicit
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_FILE


def _loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "function_")) or "[" in part:
            continue  # pydantic's validator-step names are noise for a user
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _expected(error: Any) -> str:
    kind = error.get("type", "")
    msg = str(error.get("msg", ""))
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see the README for the fields)"
    if kind == "missing":
        return "required field is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if "input" in error and kind not in ("missing",) and not isinstance(error["input"], dict | list):
        got = repr(error["input"])
        if got not in msg:
            msg = f"{msg}, got {got}"
    return msg


def _owner(loc: Sequence[int | str], data: Any) -> str:
    """``app NAME: `` when ``loc`` lies inside an app of ``data`` that has a name, else nothing."""
    if len(loc) >= 2 and loc[0] == "apps" and isinstance(loc[1], int) and isinstance(data, dict):
        apps = data.get("apps")
        if isinstance(apps, list) and 0 <= loc[1] < len(apps) and isinstance(apps[loc[1]], dict):
            name = apps[loc[1]].get("name")
            if isinstance(name, str) and name:
                return f"app {name}: "
    return ""


def format_validation_error(path: Path | str, error: ValidationError, data: Any = None) -> str:
    """One line naming the file (or block), each failing field path (and its app, from ``data``) and what was expected."""
    errors = error.errors()
    # A failing item also makes its list "too short"; report the cause, not that echo.
    nested = [tuple(e["loc"]) for e in errors]
    errors = [
        e
        for e in errors
        if not (
            e["type"] == "too_short"
            and any(n[: len(e["loc"])] == tuple(e["loc"]) and n != tuple(e["loc"]) for n in nested)
        )
    ]
    parts = [f"{_owner(e['loc'], data)}{_loc(e['loc'])}: {_expected(e)}" for e in errors]
    return f"{path}: " + "; ".join(parts)


def _resolve_paths(node: Any, base: Path) -> Any:
    """Make the known path fields absolute, relative to the config file's folder."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ("conf", "keyring", "kubeconfig", "credentials_file") and isinstance(value, str):
                p = Path(os.path.expanduser(value))
                out[key] = str(p if p.is_absolute() else base / p)
            else:
                out[key] = _resolve_paths(value, base)
        return out
    if isinstance(node, list):
        return [_resolve_paths(v, base) for v in node]
    return node


def parse_config(text: str, *, source: Path, base: Path | None = None) -> StandbyConfig:
    """Parse configuration text; ``source`` is only used in messages."""
    try:
        return _parse(text, source=source, base=base)
    except RecursionError:  # YAML nested thousands deep: the parser or the validation gives up
        raise ConfigError(
            f"{source}: nested too deeply to be a configuration",
            hint="see standby.example.yaml for the shape",
            context={"file": str(source)},
        ) from None


def _parse(text: str, *, source: Path, base: Path | None) -> StandbyConfig:
    try:
        data = load_bounded(text)
    except YamlTooLarge as exc:  # e.g. an alias bomb: refused before anything walks the tree
        raise ConfigError(
            f"{source}: not read as a configuration: {exc}",
            hint="check that it is the configuration file (see standby.example.yaml);"
            " repeat a part by writing it out, not by nesting aliases",
            context={"file": str(source)},
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{source}: not valid YAML{where}: {problem}",
            hint="fix the YAML syntax",
            context={"file": str(source)},
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: (top level): expected a mapping with 'sites' and 'apps', got {type(data).__name__}",
            hint="see standby.example.yaml",
            context={"file": str(source)},
        )
    data = _resolve_paths(data, base or source.parent)
    try:
        return StandbyConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(source, exc, data),
            hint="fix the field named",
            context={"file": str(source)},
        ) from None


MAX_BYTES = 1024 * 1024
"""A configuration is a few kilobytes; a bigger file is a wrong file, refused before it is parsed."""


def load_config(path: Path | StandbyConfig | None = None) -> StandbyConfig:
    """Load and validate the configuration file (see :func:`default_config_path`).

    A configuration already loaded (for example from Prefect blocks) is returned as it is.
    """
    if isinstance(path, StandbyConfig):
        return path
    path = default_config_path(path)
    if str(path).startswith("block:"):
        raise ConfigError(
            f"{path}: names a Prefect block; only the flows read the configuration from blocks",
            hint="give the CLI the YAML file (--config FILE), or run the flow with this config",
            context={"file": str(path)},
        )
    ctx = {"file": str(path)}
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise ConfigError(
                f"{path}: is a directory, not a file", hint="pass the YAML file itself", context=ctx
            )
        if size > MAX_BYTES:
            raise ConfigError(
                f"{path}: too large ({size} bytes; a configuration is a few KB, at most {MAX_BYTES})",
                hint="check that --config names the YAML file",
                context=ctx,
            )
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: configuration file not found", hint=f"pass --config FILE or set ${ENV_VAR}", context=ctx
        ) from None
    except PermissionError:
        raise ConfigError(
            f"{path}: cannot read: permission denied",
            hint="make the file readable by this user (chmod or the pod's securityContext)",
            context=ctx,
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a text file (byte {exc.start} is not UTF-8)",
            hint="check that --config names the YAML file",
            context=ctx,
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read: {exc.strerror}", hint="check the path given to --config", context=ctx
        ) from None
    return parse_config(text, source=path, base=path.resolve().parent)
