"""The in-memory front-end's records, its set-up knobs and the plumbing every call goes through
(faults, sessions, lookups); the calls themselves are in :mod:`.vms` and :mod:`.frontend`."""

from __future__ import annotations

from dataclasses import dataclass, field

from drkit.adapters.opennebula import (
    AUTHENTICATION,
    INTERNAL,
    NO_EXISTS,
    OneVmTemplate,
    TemplateValue,
    one_error,
    one_unparsable,
    one_unreachable,
)
from drkit.testing.opennebula.template import Attrs, TemplateSyntaxError, parse_template


@dataclass
class ImageRecord:
    """An image as the fake keeps it (its state is derived from ``vms``)."""

    id: int
    name: str
    type: str
    persistent: bool
    source: str
    size_mb: int
    format: str
    datastore_id: int
    attrs: Attrs
    vms: list[int] = field(default_factory=list)
    locked: bool = False


@dataclass
class VmRecord:
    """A VM as the fake keeps it (states by name, as pyone's enums spell them)."""

    id: int
    name: str
    state: str
    lcm_state: str
    attrs: Attrs
    user: Attrs
    locked: bool = False


@dataclass
class VnetRecord:
    """A virtual network: one address range from ``first_ip`` and its leases (IP to VM ID)."""

    id: int
    name: str
    bridge: str
    first_ip: str
    size: int
    attrs: Attrs
    leases: dict[str, int] = field(default_factory=dict)


@dataclass
class DatastoreRecord:
    """A datastore (``type``: ``IMAGE``, ``SYSTEM`` or ``FILE``)."""

    id: int
    name: str
    type: str
    ds_mad: str
    tm_mad: str
    attrs: Attrs


class FakeState:
    """One site's objects in memory, the fault knobs and the plumbing of :class:`FakeOneFrontend`."""

    def __init__(self, site: str, *, session: str = "oneadmin:fake", endpoint: str = "") -> None:
        self.site = site
        self.endpoint = endpoint or f"fake://{site}/RPC2"
        self.session = session
        self.given_session = session
        self.running = True
        self.broken: set[str] = set()
        self.calls: list[str] = []
        self.hosts: dict[int, str] = {}
        self.datastores: dict[int, DatastoreRecord] = {}
        self.vnets_: dict[int, VnetRecord] = {}
        self.images_: dict[int, ImageRecord] = {}
        self.vms_: dict[int, VmRecord] = {}
        self.templates: dict[int, OneVmTemplate] = {}
        self.next_vm = 0
        self.next_image = 0

    def __repr__(self) -> str:
        return f"FakeOneFrontend(site={self.site!r})"

    # ------------------------------------------------------------------------------ set-up knobs
    def add_host(self, host_id: int, name: str) -> None:
        self.hosts[host_id] = name

    def add_datastore(
        self, ds_id: int, name: str, *, kind: str, ds_mad: str, tm_mad: str, attrs: Attrs
    ) -> None:
        self.datastores[ds_id] = DatastoreRecord(
            ds_id, name, kind, ds_mad, tm_mad, [("DS_MAD", ds_mad), ("TM_MAD", tm_mad), *attrs]
        )

    def add_vnet(self, vnet_id: int, name: str, bridge: str, first_ip: str, size: int, attrs: Attrs) -> None:
        self.vnets_[vnet_id] = VnetRecord(
            vnet_id, name, bridge, first_ip, size, [("BRIDGE", bridge), ("VN_MAD", "bridge"), *attrs]
        )

    def lock(self, kind: str, oid: int, locked: bool = True) -> None:
        """Lock (or unlock) a ``"vm"`` or an ``"image"``, as ``onevm lock`` does."""
        if kind == "vm":
            self.vms_[oid].locked = locked
        else:
            self.images_[oid].locked = locked

    # -------------------------------------------------------------------------------- plumbing
    def _enter(self, call: str, what: str) -> None:
        self.calls.append(call)
        if not self.running:
            raise one_unreachable(self.site, self.endpoint, what, "ConnectionError")
        if self.given_session != self.session:
            raise one_error(
                self.site,
                self.endpoint,
                what,
                AUTHENTICATION,
                "User couldn't be authenticated, aborting call.",
            )

    def _reply(self, call: str, what: str) -> None:
        if call in self.broken:
            raise one_unparsable(self.site, self.endpoint, what, "XMLSyntaxError: Premature end of data")

    def _fail(self, what: str, code: int, detail: str) -> Exception:
        return one_error(self.site, self.endpoint, what, code, detail)

    def _vm(self, vm_id: int, what: str) -> VmRecord:
        vm = self.vms_.get(vm_id)
        if vm is None:
            raise self._fail(what, NO_EXISTS, f"Error getting virtual machine [{vm_id}].")
        return vm

    def _image(self, image_id: int, what: str) -> ImageRecord:
        image = self.images_.get(image_id)
        if image is None:
            raise self._fail(what, NO_EXISTS, f"Error getting image [{image_id}].")
        return image

    def _parse(self, text: str, what: str) -> Attrs:
        try:
            return parse_template(text)
        except TemplateSyntaxError as exc:
            raise self._fail(what, INTERNAL, f"Parse error: {exc}") from None


def vector_maps(template: dict[str, TemplateValue], key: str) -> tuple[dict[str, str], ...]:
    value = template.get(key)
    return tuple(dict(v) for v in value) if isinstance(value, tuple) else ()


def state_str(vm: VmRecord) -> str:
    return "RUNNING" if vm.state == "ACTIVE" and vm.lcm_state == "RUNNING" else vm.state
