"""Every key Standby writes to the object store, owned by one class (:class:`StoreLayout`).

The layout and why backups are content-addressed blobs plus a per-run index are in
docs/architecture.md, "The backup store".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from drkit.domain.errors import ConfigError

_RUN_ID = re.compile(r"^(\d{8}T\d{6}Z)-([0-9a-f]{6})$")
_DRILL_ID = re.compile(r"^drill-\d{8}T\d{6}Z-[0-9a-f]{6}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NAME_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")  # RBAC names may hold ':'

CLUSTER_SCOPE = "_cluster"
"""Folder standing for "no namespace" in a logical path."""
CORE_GROUP = "core"
"""Folder standing for the core API group (whose group name is empty) in a logical path."""
REPORT_FORMATS = ("md", "json", "html")
INDEX_NAME = "index.json.gz"
"""File name of a run's index (full or pointer) inside its run folder."""


@dataclass(frozen=True, order=True)
class RunId:
    """A backup (or drill) run id: its UTC start second plus a random suffix. Orders by time."""

    started: datetime
    suffix: str

    def __post_init__(self) -> None:
        if self.started.tzinfo is None:
            raise ValueError("a run id needs a timezone-aware time")
        if not re.fullmatch(r"[0-9a-f]{6}", self.suffix):
            raise ValueError(f"run id suffix must be 6 lowercase hex digits, got {self.suffix!r}")

    def __str__(self) -> str:
        return f"{self.started.astimezone(UTC):%Y%m%dT%H%M%SZ}-{self.suffix}"


def new_run_id(now: datetime, entropy: bytes) -> RunId:
    """A run id for a run started at ``now`` (aware); ``entropy`` (3+ random bytes) gives the suffix."""
    if len(entropy) < 3:
        raise ValueError("a run id needs at least 3 bytes of entropy")
    return RunId(now.astimezone(UTC).replace(microsecond=0), entropy[:3].hex())


def parse_run_id(text: str) -> RunId:
    """Parse a run id as ``str(RunId)`` writes it; :class:`ConfigError` says what was expected."""
    match = _RUN_ID.match(text)
    if not match:
        raise ConfigError(
            f"{text!r} is not a run id",
            hint="run ids look like 20261121T220501Z-a1b2c3; list them with the backups listing",
        )
    started = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return RunId(started, match.group(2))


def split_api_version(api_version: str) -> tuple[str, str]:
    """``"apps/v1"`` → ``("apps", "v1")``; ``"v1"`` → ``("", "v1")``."""
    group, _, version = api_version.rpartition("/")
    return group, version


def logical_path(api_version: str, kind: str, namespace: str | None, name: str) -> str:
    """The object's path inside a backup: ``<group>/<version>/<kind>/<namespace|_cluster>/<name>``.

    The core group is written ``core``; cluster-scoped objects use ``_cluster`` as namespace.
    """
    group, version = split_api_version(api_version)
    for part in (group or CORE_GROUP, version, kind, namespace or "ns", name):
        if not _NAME_SEGMENT.match(part):
            raise ValueError(f"cannot build a key from {part!r} ({api_version} {kind} {namespace}/{name})")
    return "/".join((group or CORE_GROUP, version, kind, namespace or CLUSTER_SCOPE, name))


def _segment(value: str, what: str) -> str:
    if not _SEGMENT.match(value) or value in (".", ".."):
        raise ConfigError(
            f"{what} {value!r} cannot be used in an object-store key",
            hint=f"use letters, digits, '.', '-' or '_' in the {what}",
        )
    return value


@dataclass(frozen=True)
class StoreLayout:
    """Builds and parses every object-store key under one ``prefix`` (a site's ``s3.prefix``)."""

    prefix: str = "standby"

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", self.prefix.strip("/"))

    def _join(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    # ------------------------------------------------------------------------------------ backups
    def app_root(self, site: str, app: str) -> str:
        """``<prefix>/backups/<site>/<app>``: everything of one app's backups from one site."""
        return self._join("backups", _segment(site, "site name"), _segment(app, "app name"))

    def blobs_prefix(self, site: str, app: str) -> str:
        """Prefix of every blob of the app (list it to find all blobs, e.g. for retention)."""
        return f"{self.app_root(site, app)}/blobs/sha256/"

    def blob_key(self, site: str, app: str, address: str, *, encrypted: bool) -> str:
        """Key of the blob with content address ``address`` (64 hex digits)."""
        if not _HEX.match(address):
            raise ValueError(f"a content address is 64 lowercase hex digits, got {address!r}")
        suffix = ".yaml.enc" if encrypted else ".yaml"
        return f"{self.blobs_prefix(site, app)}{address[:2]}/{address}{suffix}"

    def run_root(self, site: str, app: str, run_id: RunId | str) -> str:
        """``.../<run-id>``: the folder of one run."""
        text = str(run_id)
        parse_run_id(text)
        return f"{self.app_root(site, app)}/{text}"

    def index_key(self, site: str, app: str, run_id: RunId | str) -> str:
        """``.../<run-id>/index.json.gz``: written last, it marks the run as finished."""
        return f"{self.run_root(site, app, run_id)}/{INDEX_NAME}"

    def latest_key(self, site: str, app: str) -> str:
        """``.../latest``: holds the run id of the newest complete run, written after its index."""
        return f"{self.app_root(site, app)}/latest"

    def run_id_of_index_key(self, site: str, app: str, key: str) -> RunId | None:
        """The run id if ``key`` is an index key of this app, else ``None`` (blobs, latest...)."""
        root = self.app_root(site, app) + "/"
        if not key.startswith(root) or not key.endswith(f"/{INDEX_NAME}"):
            return None
        middle = key[len(root) : -len(f"/{INDEX_NAME}")]
        return parse_run_id(middle) if _RUN_ID.match(middle) else None

    def is_blob_key(self, site: str, app: str, key: str) -> bool:
        """Whether ``key`` is a blob of this app."""
        return key.startswith(self.blobs_prefix(site, app)) and key.endswith((".yaml", ".yaml.enc"))

    # ---------------------------------------------------------------------------------------- rpo
    def rpo_day_prefix(self, site: str, day: date) -> str:
        """``<prefix>/rpo/<site>/<yyyy-mm-dd>/``: the samples of one site and UTC day."""
        return self._join("rpo", _segment(site, "site name"), day.isoformat()) + "/"

    def rpo_samples_key(self, site: str, day: date, part: str) -> str:
        """``.../samples-<part>.parquet``; ``part`` is e.g. the sampler run's id or start time."""
        return f"{self.rpo_day_prefix(site, day)}samples-{_segment(part, 'part name')}.parquet"

    def rpo_state_key(self, app: str) -> str:
        """``<prefix>/rpo-state/<app>.json``: the breach detector's memory (hysteresis) of one app."""
        return self._join("rpo-state", f"{_segment(app, 'app name')}.json")

    def rpo_report_key(self, app: str, stamp: str, name: str) -> str:
        """``<prefix>/rpo-reports/<app>/<stamp>/<name>``: a report file (chart PNG, markdown, JSON)."""
        return self._join(
            "rpo-reports", _segment(app, "app name"), _segment(stamp, "report stamp"), _segment(name, "file")
        )

    # ------------------------------------------------------------------------------------- drills
    def drills_prefix(self, app: str) -> str:
        """``<prefix>/drills/<app>/``: every drill report of the app."""
        return self._join("drills", _segment(app, "app name")) + "/"

    def drill_root(self, app: str, run_id: RunId | str) -> str:
        """``<prefix>/drills/<app>/<drill-id>``; the id is a drill's operation id or a run id.

        Drill ids are operation ids (``drill-20261130T081500Z-a1b2c3``,
        :func:`drkit.domain.operations.new_op_id`); run ids (``20261130T081500Z-a1b2c3``) are
        accepted too. Anything else is a :class:`ConfigError`.
        """
        text = str(run_id)
        if not _DRILL_ID.match(text):
            try:
                parse_run_id(text)
            except ConfigError:
                raise ConfigError(
                    f"{text!r} is not a drill id",
                    hint="drill ids look like drill-20261130T081500Z-a1b2c3 (or a run id 20261130T081500Z-a1b2c3)",
                ) from None
        return f"{self.drills_prefix(app)}{text}"

    def drill_report_key(self, app: str, run_id: RunId | str, fmt: str) -> str:
        """``.../report.<fmt>`` with ``fmt`` one of md, json, html."""
        if fmt not in REPORT_FORMATS:
            raise ValueError(f"report format must be one of {', '.join(REPORT_FORMATS)}, got {fmt!r}")
        return f"{self.drill_root(app, run_id)}/report.{fmt}"

    def drill_chart_key(self, app: str, run_id: RunId | str, name: str) -> str:
        """``.../charts/<name>.png``."""
        return f"{self.drill_root(app, run_id)}/charts/{_segment(name, 'chart name')}.png"

    def drill_id_of_report_key(self, app: str, key: str) -> str | None:
        """The drill id if ``key`` is a ``report.json`` of this app's drills, else ``None``."""
        root, tail = self.drills_prefix(app), "/report.json"
        if not key.startswith(root) or not key.endswith(tail):
            return None
        middle = key[len(root) : -len(tail)]
        return middle if _DRILL_ID.match(middle) or _RUN_ID.match(middle) else None

    # --------------------------------------------------------------------------------- operations
    def placement_key(self, app: str) -> str:
        """``<prefix>/placement/<app>.json``: where the app runs now (compare-and-swap only)."""
        return self._join("placement", f"{_segment(app, 'app name')}.json")

    def doctor_probe_key(self, site: str, token: str) -> str:
        """``<prefix>/doctor/<site>/<token>.probe``: ``standby doctor``'s trial of conditional writes
        (written, overwritten by compare-and-swap, deleted)."""
        return self._join("doctor", _segment(site, "site name"), f"{_segment(token, 'probe token')}.probe")

    def operations_prefix(self, app: str) -> str:
        """``<prefix>/operations/<app>/``: the journals of the app's operations."""
        return self._join("operations", _segment(app, "app name")) + "/"

    def journal_key(self, app: str, op_id: str) -> str:
        """``<prefix>/operations/<app>/<op-id>.json``: one operation's journal, rewritten after each step."""
        return f"{self.operations_prefix(app)}{_segment(op_id, 'operation id')}.json"
