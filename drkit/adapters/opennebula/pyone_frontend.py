"""The :class:`~drkit.adapters.opennebula.protocol.OneFrontend` adapter over XML-RPC with pyone 7.2,
and its mapping of every failure to a Standby error."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Callable
from typing import Any, TypeVar

from drkit.adapters.opennebula.errors import (
    ACTION,
    ALLOCATE,
    AUTHENTICATION,
    AUTHORIZATION,
    INTERNAL,
    LOCKED,
    NO_EXISTS,
    XML_RPC_API,
    one_error,
    one_unparsable,
    one_unreachable,
    redact_endpoint,
)
from drkit.adapters.opennebula.parsing import (
    datastore_from_pyone,
    image_from_pyone,
    template_map,
    vm_from_pyone,
    vnet_from_pyone,
)
from drkit.adapters.opennebula.protocol import OneFrontend
from drkit.adapters.opennebula.records import (
    VM_ACTIONS,
    OneDatastore,
    OneImage,
    OneVm,
    OneVmTemplate,
    OneVnet,
    VmAction,
)
from drkit.domain.errors import OpenNebulaError

T = TypeVar("T")


class PyoneFrontend:
    """:class:`OneFrontend` over XML-RPC with pyone 7.2.

    ``timeout`` bounds every HTTP request. pyone's own ``timeout`` sets the process-wide socket
    default, so this adapter gives pyone's transport a per-request timeout instead.
    """

    def __init__(
        self, site_name: str, endpoint: str, session: str, timeout: float = 30.0, verify_tls: bool = True
    ) -> None:
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
        self._server._ServerProxy__transport = _timed_transport(endpoint, timeout, verify_tls)

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


def _timed_transport(endpoint: str, timeout: float, verify_tls: bool = True) -> Any:
    """pyone's requests-based transport, with a timeout on each request (``verify_tls``: check an
    https endpoint's certificate, as the site's ``opennebula.verify_tls`` says)."""
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
    transport.set_https_verify(verify_tls)
    return transport


def _conforms(adapter: PyoneFrontend) -> OneFrontend:
    """mypy checks here that the adapter implements the whole protocol."""
    return adapter
