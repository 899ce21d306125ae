"""An OpenNebula front-end (oned's XML-RPC API), as Standby's VM app uses it.

``OneFrontend`` is the protocol; ``PyoneFrontend`` speaks it with ``pyone`` (OpenNebula's own
bindings, whose generated parsers read every reply). Results are small frozen dataclasses of our
own (:class:`OneVm`, :class:`OneImage`, ...), never pyone objects; states are the names of pyone's
enums (``VM_STATE``, ``LCM_STATE``, ``IMAGE_STATES``...).

Every failure becomes an :class:`~drkit.domain.errors.OpenNebulaError` that is also the matching
kind of Standby error, with a one-line message naming the object and the site, and a hint:

========================================  =============================================
unreachable, timeout, HTTP 5xx            :class:`OneUnreachable` (``TransientError``)
AUTHENTICATION, AUTHORIZATION             :class:`OneAccessDenied` (``PreconditionFailed``)
NO_EXISTS                                 :class:`OneNotFound` (``NotFound``)
ACTION, ALLOCATE (name taken), LOCKED     :class:`OneConflict` (``Conflict``; ``code`` says which)
a reply pyone cannot parse                :class:`OneParseError` (``ParseError``)
INTERNAL (a malformed template), others   :class:`~drkit.domain.errors.OpenNebulaError`
========================================  =============================================

pyone raises a plain ``OneException`` for ALLOCATE and LOCKED (it keeps only the message), so
those two are recognised by oned's own wording (``Error allocating a new``, ``is locked``).
The session (``user:password``) never appears in a message, a context or a repr.
"""

from __future__ import annotations

import re
import xmlrpc.client
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, get_args

from drkit.domain.errors import (
    Conflict,
    NotFound,
    OpenNebulaError,
    ParseError,
    PreconditionFailed,
    TransientError,
)

# oned's error codes (XML-RPC API reference).
AUTHENTICATION = 0x0100
AUTHORIZATION = 0x0200
NO_EXISTS = 0x0400
ACTION = 0x0800
XML_RPC_API = 0x1000
INTERNAL = 0x2000
ALLOCATE = 0x4000
LOCKED = 0x8000

VmAction = Literal[
    "terminate",
    "terminate-hard",
    "undeploy",
    "undeploy-hard",
    "poweroff",
    "poweroff-hard",
    "reboot",
    "reboot-hard",
    "hold",
    "release",
    "stop",
    "suspend",
    "resume",
    "resched",
    "unresched",
]
VM_ACTIONS: tuple[str, ...] = get_args(VmAction)

#: A template as a mapping: a single attribute is a string; a vector attribute (``DISK``, ``NIC``,
#: ``CONTEXT``...) is always a tuple of mappings, even when there is only one.
TemplateValue = str | tuple[Mapping[str, str], ...]
TemplateMap = Mapping[str, TemplateValue]


# ------------------------------------------------------------------------------------------ errors


class OneUnreachable(OpenNebulaError, TransientError):
    """The front-end did not answer (refused, timed out, HTTP 5xx). Retried."""


class OneAccessDenied(OpenNebulaError, PreconditionFailed):
    """The front-end refused the session (AUTHENTICATION) or the action (AUTHORIZATION)."""


class OneNotFound(OpenNebulaError, NotFound):
    """The object does not exist on that front-end (NO_EXISTS)."""


class OneConflict(OpenNebulaError, Conflict):
    """The object is in a state that refuses the call: ACTION, ALLOCATE (a name taken) or LOCKED."""

    @property
    def locked(self) -> bool:
        return self.code == LOCKED


class OneParseError(OpenNebulaError, ParseError):
    """The front-end answered something pyone's bindings (or this adapter) cannot read."""


def frontend_at(site: str, endpoint: str) -> str:
    """How errors name a front-end: ``OpenNebula on SITE (ENDPOINT)``, credentials removed."""
    return f"OpenNebula on {site} ({redact_endpoint(endpoint)})"


def redact_endpoint(endpoint: str) -> str:
    """``endpoint`` without any ``user:password@`` in it."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)?[^/@]*@", r"\1", endpoint)


def one_error(site: str, endpoint: str, what: str, code: int, detail: str) -> OpenNebulaError:
    """The Standby error for oned's ``code`` (0: unknown) answered to ``what`` (``"VM 3"``,
    ``"allocating image 'x' in datastore 100"``), with oned's message ``detail``."""
    where = frontend_at(site, endpoint)
    ctx: dict[str, object] = {
        "site": site,
        "endpoint": redact_endpoint(endpoint),
        "object": what,
        "code": code,
    }
    detail = " ".join(detail.split())[:300]
    if code in (AUTHENTICATION, AUTHORIZATION):
        kind = "refused the credentials" if code == AUTHENTICATION else "refused the action"
        return OneAccessDenied(
            f"{where} {kind} for {what}: {detail}",
            code=code,
            hint=f"check the user and password of {site}'s front-end (file, env or Secret block) and its ACLs",
            context=ctx,
        )
    if code == NO_EXISTS:
        return OneNotFound(
            f"{where}: {what} does not exist: {detail}",
            code=code,
            hint=f"check the ID against `onevm list`/`oneimage list` on {site}, or the app's configuration",
            context=ctx,
        )
    if code == LOCKED:
        return OneConflict(
            f"{where} refused {what}, the object is locked: {detail}",
            code=code,
            hint=f"unlock it on {site} (`onevm unlock`/`oneimage unlock`) once whoever locked it is done, then resume",
            context=ctx,
        )
    if code in (ACTION, ALLOCATE):
        return OneConflict(
            f"{where} refused {what}: {detail}",
            code=code,
            hint=f"look at the object's state on {site}; resume once it allows the call, or abort",
            context=ctx,
        )
    return OpenNebulaError(
        f"{where} failed {what}: {detail}",
        code=code,
        hint=f"read oned's log on {site}; a template error names the attribute to fix",
        context=ctx,
    )


def one_unreachable(site: str, endpoint: str, what: str, cause: str) -> OneUnreachable:
    """The front-end did not answer ``what`` (``cause``: why, e.g. the exception's name)."""
    return OneUnreachable(
        f"{frontend_at(site, endpoint)} did not answer {what} ({cause})",
        hint=f"check that oned runs on {site} and the endpoint is right; the call is retried",
        context={"site": site, "endpoint": redact_endpoint(endpoint), "object": what},
    )


def one_unparsable(site: str, endpoint: str, what: str, cause: str) -> OneParseError:
    """The reply to ``what`` could not be read (``cause``: the parser's complaint, shortened)."""
    return OneParseError(
        f"{frontend_at(site, endpoint)} answered {what} with a body that cannot be parsed: {cause[:200]}",
        hint=f"check that the endpoint is oned's XML-RPC (…/RPC2) and its version on {site} matches pyone",
        context={"site": site, "endpoint": redact_endpoint(endpoint), "object": what},
    )


# ------------------------------------------------------------------------------------------ models


@dataclass(frozen=True)
class OneDisk:
    """One ``DISK`` of a VM's template."""

    disk_id: int
    image_id: int | None
    image: str
    source: str
    datastore_id: int | None
    type: str
    persistent: bool
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OneNic:
    """One ``NIC`` of a VM's template."""

    nic_id: int
    network: str
    network_id: int | None
    ip: str
    mac: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OneVm:
    """A VM as ``one.vm.info`` describes it."""

    id: int
    name: str
    state: str
    lcm_state: str
    template: TemplateMap
    user_template: TemplateMap
    disks: tuple[OneDisk, ...]
    nics: tuple[OneNic, ...]
    locked: bool

    @property
    def running(self) -> bool:
        return self.state == "ACTIVE" and self.lcm_state == "RUNNING"


@dataclass(frozen=True)
class OneImage:
    """An image as ``one.image.info`` describes it (``size_mb`` in MiB, as oned counts)."""

    id: int
    name: str
    state: str
    type: str
    persistent: bool
    source: str
    size_mb: int
    format: str
    datastore_id: int
    datastore: str
    vms: tuple[int, ...]
    template: TemplateMap
    locked: bool


@dataclass(frozen=True)
class OneVnet:
    """A virtual network."""

    id: int
    name: str
    bridge: str
    template: TemplateMap


@dataclass(frozen=True)
class OneDatastore:
    """A datastore; ``pool_name`` is its Ceph pool (empty when not a Ceph datastore)."""

    id: int
    name: str
    type: str
    ds_mad: str
    tm_mad: str
    pool_name: str
    image_ids: tuple[int, ...]
    template: TemplateMap


@dataclass(frozen=True)
class OneVmTemplate:
    """A registered VM template (``one.template.info``)."""

    id: int
    name: str
    template: TemplateMap


# ---------------------------------------------------------------------------------------- protocol


class OneFrontend(Protocol):
    """What Standby asks of one site's OpenNebula front-end."""

    site: str

    def version(self) -> str:
        """``one.system.version``."""
        ...

    def vm(self, vm_id: int) -> OneVm:
        """``one.vm.info``; :class:`OneNotFound` when absent."""
        ...

    def vms_labelled(self, key: str, value: str) -> list[OneVm]:
        """Every VM not ``DONE`` whose ``USER_TEMPLATE`` has ``key`` equal to ``value``, by ID.
        (Listed whole and filtered here: oned's JSON search needs a MySQL back-end.)"""
        ...

    def allocate_vm(self, template: str, *, hold: bool = False) -> int:
        """``one.vm.allocate`` of a template in OpenNebula syntax; the new VM's ID."""
        ...

    def deploy_vm(self, vm_id: int, host_id: int, *, datastore_id: int = -1) -> None:
        """``one.vm.deploy`` on ``host_id`` (and a system datastore, -1: oned's choice)."""
        ...

    def vm_action(self, vm_id: int, action: VmAction) -> None:
        """``one.vm.action``; :class:`OneConflict` when the VM's state does not allow it."""
        ...

    def allocate_image(self, template: str, datastore_id: int) -> int:
        """``one.image.allocate`` in ``datastore_id``; a taken name is :class:`OneConflict` (ALLOCATE)."""
        ...

    def image(self, image_id: int) -> OneImage:
        """``one.image.info``."""
        ...

    def images(self, *, name: str | None = None, source: str | None = None) -> list[OneImage]:
        """Every image (``one.imagepool.info``), only those with this ``name`` and/or ``SOURCE``."""
        ...

    def make_persistent(self, image_id: int, persistent: bool = True) -> None:
        """``one.image.persistent``."""
        ...

    def delete_image(self, image_id: int) -> None:
        """``one.image.delete`` (on a Ceph datastore oned also removes the RBD image!)."""
        ...

    def vm_template(self, template_id: int) -> OneVmTemplate:
        """``one.template.info``."""
        ...

    def vnets(self) -> list[OneVnet]:
        """Every virtual network (``one.vnpool.info``)."""
        ...

    def datastore(self, datastore_id: int) -> OneDatastore:
        """``one.datastore.info``."""
        ...


# ------------------------------------------------------------------------------ pyone's edge (Any)


def template_map(raw: Any) -> dict[str, TemplateValue]:
    """A pyone ``TEMPLATE``/``USER_TEMPLATE`` (nested dicts from xmltodict) as a :data:`TemplateMap`."""
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, Mapping):
        raise TypeError(f"a template is a mapping, not {type(raw).__name__}")
    out: dict[str, TemplateValue] = {}
    for key, value in raw.items():
        if isinstance(value, Mapping):
            out[str(key)] = (_vector(value),)
        elif isinstance(value, list):
            if all(isinstance(v, Mapping) for v in value):
                out[str(key)] = tuple(_vector(v) for v in value)
            else:  # a repeated single attribute: oned keeps the last one
                out[str(key)] = str(value[-1])
        else:
            out[str(key)] = "" if value is None else str(value)
    return out


def _vector(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def vectors(template: TemplateMap, key: str) -> tuple[Mapping[str, str], ...]:
    """The vectors named ``key`` (none: an empty tuple; a single value counts as none)."""
    value = template.get(key)
    return value if isinstance(value, tuple) else ()


def _opt_int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _enum_name(enum: Any, value: Any) -> str:
    return str(enum(int(value)).name)


def vm_from_pyone(raw: Any) -> OneVm:
    """Our :class:`OneVm` from pyone's ``VM`` binding."""
    import pyone

    template = template_map(raw.TEMPLATE)
    disks = tuple(
        OneDisk(
            disk_id=int(d.get("DISK_ID", i)),
            image_id=_opt_int(d.get("IMAGE_ID")),
            image=d.get("IMAGE", ""),
            source=d.get("SOURCE", ""),
            datastore_id=_opt_int(d.get("DATASTORE_ID")),
            type=d.get("TYPE", ""),
            persistent=d.get("PERSISTENT", "").upper() == "YES",
            attributes=dict(d),
        )
        for i, d in enumerate(vectors(template, "DISK"))
    )
    nics = tuple(
        OneNic(
            nic_id=int(n.get("NIC_ID", i)),
            network=n.get("NETWORK", ""),
            network_id=_opt_int(n.get("NETWORK_ID")),
            ip=n.get("IP", ""),
            mac=n.get("MAC", ""),
            attributes=dict(n),
        )
        for i, n in enumerate(vectors(template, "NIC"))
    )
    return OneVm(
        id=int(raw.ID),
        name=str(raw.NAME),
        state=_enum_name(pyone.VM_STATE, raw.STATE),
        lcm_state=_enum_name(pyone.LCM_STATE, raw.LCM_STATE),
        template=template,
        user_template=template_map(raw.USER_TEMPLATE),
        disks=disks,
        nics=nics,
        locked=_locked(raw),
    )


def _locked(raw: Any) -> bool:
    lock = getattr(raw, "LOCK", None)
    return lock is not None and int(lock.LOCKED or 0) > 0


def _ids(raw: Any) -> tuple[int, ...]:
    return tuple(int(i) for i in (raw.ID if raw is not None else []))


def image_from_pyone(raw: Any) -> OneImage:
    """Our :class:`OneImage` from pyone's ``IMAGE`` binding."""
    import pyone

    return OneImage(
        id=int(raw.ID),
        name=str(raw.NAME),
        state=_enum_name(pyone.IMAGE_STATES, raw.STATE),
        type=_enum_name(pyone.IMAGE_TYPES, raw.TYPE),
        persistent=bool(int(raw.PERSISTENT or 0)),
        source=str(raw.SOURCE or ""),
        size_mb=int(raw.SIZE or 0),
        format=str(raw.FORMAT or ""),
        datastore_id=int(raw.DATASTORE_ID),
        datastore=str(raw.DATASTORE or ""),
        vms=_ids(raw.VMS),
        template=template_map(raw.TEMPLATE),
        locked=_locked(raw),
    )


def vnet_from_pyone(raw: Any) -> OneVnet:
    """Our :class:`OneVnet` from pyone's ``VNET`` binding."""
    return OneVnet(
        id=int(raw.ID), name=str(raw.NAME), bridge=str(raw.BRIDGE or ""), template=template_map(raw.TEMPLATE)
    )


def datastore_from_pyone(raw: Any) -> OneDatastore:
    """Our :class:`OneDatastore` from pyone's ``DATASTORE`` binding."""
    import pyone

    template = template_map(raw.TEMPLATE)
    pool = template.get("POOL_NAME", "")
    return OneDatastore(
        id=int(raw.ID),
        name=str(raw.NAME),
        type=_enum_name(pyone.DATASTORE_TYPES, raw.TYPE),
        ds_mad=str(raw.DS_MAD or ""),
        tm_mad=str(raw.TM_MAD or ""),
        pool_name=pool if isinstance(pool, str) and raw.TM_MAD == "ceph" else "",
        image_ids=_ids(raw.IMAGES),
        template=template,
    )


T = TypeVar("T")


class PyoneFrontend:
    """:class:`OneFrontend` over XML-RPC with pyone 7.2.

    ``timeout`` bounds every HTTP request. pyone's own ``timeout`` sets the process-wide socket
    default, so this adapter gives pyone's transport a per-request timeout instead.
    """

    def __init__(self, site_name: str, endpoint: str, session: str, timeout: float = 30.0) -> None:
        import pyone

        self.site = site_name
        self.endpoint = endpoint
        self.timeout = timeout
        if not endpoint.startswith(("http://", "https://")):  # pyone would take anything else for gRPC
            raise OpenNebulaError(
                f"OpenNebula on {site_name}: the endpoint {redact_endpoint(endpoint)!r} is not an XML-RPC URL",
                hint=f"set {site_name}'s front-end endpoint to oned's XML-RPC URL, e.g. http://HOST:2633/RPC2",
                context={"site": site_name, "endpoint": redact_endpoint(endpoint)},
            )
        self._server: Any = pyone.OneServer(endpoint, session=session, protocol="xmlrpc")
        self._server._ServerProxy__transport = _timed_transport(endpoint, timeout)

    def __repr__(self) -> str:
        return f"PyoneFrontend(site={self.site!r}, endpoint={redact_endpoint(self.endpoint)!r})"

    # ----------------------------------------------------------------------------------- plumbing
    def _call(self, what: str, call: Callable[[Any], Any], convert: Callable[[Any], T]) -> T:
        """Run ``call(server)`` and ``convert`` its result; map every failure to a Standby error."""
        import pyone
        import requests

        try:
            raw = call(self._server)
        except pyone.OneException as exc:
            raise self._one_exception(what, exc) from None
        except requests.Timeout:
            raise one_unreachable(
                self.site, self.endpoint, what, f"no answer within {self.timeout:g}s"
            ) from None
        except requests.RequestException as exc:
            raise one_unreachable(self.site, self.endpoint, what, type(exc).__name__) from None
        except xmlrpc.client.ProtocolError as exc:
            if exc.errcode >= 500:
                raise one_unreachable(self.site, self.endpoint, what, f"HTTP {exc.errcode}") from None
            raise one_error(
                self.site, self.endpoint, what, 0, f"HTTP {exc.errcode} (is the path oned's /RPC2?)"
            ) from None
        except Exception as exc:  # pyone's parsers (lxml, generateDS) and xmlrpc's: an unreadable reply
            raise one_unparsable(self.site, self.endpoint, what, f"{type(exc).__name__}: {exc}") from None
        try:
            return convert(raw)
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            raise one_unparsable(self.site, self.endpoint, what, f"{type(exc).__name__}: {exc}") from None

    def _one_exception(self, what: str, exc: Exception) -> OpenNebulaError:
        import pyone

        message = str(exc)
        codes: list[tuple[type[Exception], int]] = [
            (pyone.OneAuthenticationException, AUTHENTICATION),
            (pyone.OneAuthorizationException, AUTHORIZATION),
            (pyone.OneNoExistsException, NO_EXISTS),
            (pyone.OneActionException, ACTION),
            (pyone.OneApiException, XML_RPC_API),
            (pyone.OneInternalException, INTERNAL),
        ]
        code = next((c for kind, c in codes if isinstance(exc, kind)), 0)
        if code == 0 and " is locked." in message:
            code = LOCKED
        elif code == 0 and "Error allocating a new" in message:
            code = ALLOCATE
        return one_error(self.site, self.endpoint, what, code, message)

    @staticmethod
    def _is(kind: str) -> Callable[[Any], Any]:
        def check(raw: Any) -> Any:
            if type(raw).__name__ not in (kind, f"{kind}Sub"):
                raise TypeError(f"expected a {kind} document, got {type(raw).__name__}")
            return raw

        return check

    @staticmethod
    def _int(raw: Any) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise TypeError(f"expected an ID, got {type(raw).__name__}")
        return raw

    # ----------------------------------------------------------------------------------- protocol
    def version(self) -> str:
        """See :class:`OneFrontend`."""

        def text(raw: Any) -> str:
            if not isinstance(raw, str) or not raw:
                raise TypeError("expected a version string")
            return raw

        return self._call("the version", lambda s: s.system.version(), text)

    def vm(self, vm_id: int) -> OneVm:
        """See :class:`OneFrontend`."""
        return self._call(
            f"VM {vm_id}", lambda s: s.vm.info(vm_id), lambda r: vm_from_pyone(self._is("VM")(r))
        )

    def vms_labelled(self, key: str, value: str) -> list[OneVm]:
        """See :class:`OneFrontend`."""

        def convert(raw: Any) -> list[OneVm]:
            vms = [vm_from_pyone(v) for v in self._is("VM_POOL")(raw).VM]
            return sorted((v for v in vms if v.user_template.get(key) == value), key=lambda v: v.id)

        return self._call(
            f"the VMs labelled {key}={value}", lambda s: s.vmpool.infoextended(-2, -1, -1, -1), convert
        )

    def allocate_vm(self, template: str, *, hold: bool = False) -> int:
        """See :class:`OneFrontend`."""
        return self._call("allocating a VM", lambda s: s.vm.allocate(template, hold), self._int)

    def deploy_vm(self, vm_id: int, host_id: int, *, datastore_id: int = -1) -> None:
        """See :class:`OneFrontend`."""
        self._call(
            f"deploying VM {vm_id} on host {host_id}",
            lambda s: s.vm.deploy(vm_id, host_id, False, datastore_id),
            self._int,
        )

    def vm_action(self, vm_id: int, action: VmAction) -> None:
        """See :class:`OneFrontend`."""
        if action not in VM_ACTIONS:
            raise ValueError(f"unknown VM action {action!r}")
        self._call(f"{action} of VM {vm_id}", lambda s: s.vm.action(action, vm_id), self._int)

    def allocate_image(self, template: str, datastore_id: int) -> int:
        """See :class:`OneFrontend`."""
        return self._call(
            f"allocating an image in datastore {datastore_id}",
            lambda s: s.image.allocate(template, datastore_id, False),
            self._int,
        )

    def image(self, image_id: int) -> OneImage:
        """See :class:`OneFrontend`."""
        return self._call(
            f"image {image_id}",
            lambda s: s.image.info(image_id),
            lambda r: image_from_pyone(self._is("IMAGE")(r)),
        )

    def images(self, *, name: str | None = None, source: str | None = None) -> list[OneImage]:
        """See :class:`OneFrontend`."""

        def convert(raw: Any) -> list[OneImage]:
            found = [image_from_pyone(i) for i in self._is("IMAGE_POOL")(raw).IMAGE]
            return [
                i
                for i in sorted(found, key=lambda i: i.id)
                if (name is None or i.name == name) and (source is None or i.source == source)
            ]

        return self._call("the images", lambda s: s.imagepool.info(-2, -1, -1), convert)

    def make_persistent(self, image_id: int, persistent: bool = True) -> None:
        """See :class:`OneFrontend`."""
        what = f"making image {image_id} {'persistent' if persistent else 'non-persistent'}"
        self._call(what, lambda s: s.image.persistent(image_id, persistent), self._int)

    def delete_image(self, image_id: int) -> None:
        """See :class:`OneFrontend`."""
        self._call(f"deleting image {image_id}", lambda s: s.image.delete(image_id, False), self._int)

    def vm_template(self, template_id: int) -> OneVmTemplate:
        """See :class:`OneFrontend`."""

        def convert(raw: Any) -> OneVmTemplate:
            raw = self._is("VMTEMPLATE")(raw)
            return OneVmTemplate(id=int(raw.ID), name=str(raw.NAME), template=template_map(raw.TEMPLATE))

        return self._call(f"VM template {template_id}", lambda s: s.template.info(template_id), convert)

    def vnets(self) -> list[OneVnet]:
        """See :class:`OneFrontend`."""

        def convert(raw: Any) -> list[OneVnet]:
            return sorted((vnet_from_pyone(v) for v in self._is("VNET_POOL")(raw).VNET), key=lambda v: v.id)

        return self._call("the virtual networks", lambda s: s.vnpool.info(-2, -1, -1), convert)

    def datastore(self, datastore_id: int) -> OneDatastore:
        """See :class:`OneFrontend`."""
        return self._call(
            f"datastore {datastore_id}",
            lambda s: s.datastore.info(datastore_id),
            lambda r: datastore_from_pyone(self._is("DATASTORE")(r)),
        )


def _timed_transport(endpoint: str, timeout: float) -> Any:
    """pyone's requests-based transport, with a timeout on each request."""
    import requests
    from pyone.server_xrpc import RequestsTransport

    class TimedTransport(RequestsTransport):  # type: ignore[misc]
        def request(self, host: str, handler: str, request_body: bytes, verbose: bool = False) -> Any:
            url = self._build_url(host, handler)
            resp = requests.post(
                url, data=request_body, headers=self.headers, verify=self.https_verify, timeout=timeout
            )
            if resp.status_code >= 400:
                raise xmlrpc.client.ProtocolError(redact_endpoint(url), resp.status_code, resp.reason, {})
            return self.parse_response(resp)

    transport = TimedTransport()
    transport.set_https(endpoint.startswith("https"))
    transport.set_https_verify(True)
    return transport


def _conforms(adapter: PyoneFrontend) -> OneFrontend:
    """mypy checks here that the adapter implements the whole protocol."""
    return adapter
