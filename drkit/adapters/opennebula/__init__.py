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

The modules: :mod:`.errors` (codes, errors and their builders), :mod:`.records` (the results),
:mod:`.protocol` (:class:`OneFrontend`), :mod:`.parsing` (records from pyone's bindings) and
:mod:`.pyone_frontend` (:class:`PyoneFrontend`). Import from this package.
"""

from drkit.adapters.opennebula.errors import (
    ACTION,
    ALLOCATE,
    AUTHENTICATION,
    AUTHORIZATION,
    INTERNAL,
    LOCKED,
    NO_EXISTS,
    XML_RPC_API,
    OneAccessDenied,
    OneConflict,
    OneNotFound,
    OneParseError,
    OneUnreachable,
    frontend_at,
    one_error,
    one_unparsable,
    one_unreachable,
    redact_endpoint,
)
from drkit.adapters.opennebula.parsing import (
    datastore_from_pyone,
    image_from_pyone,
    template_map,
    vectors,
    vm_from_pyone,
    vnet_from_pyone,
)
from drkit.adapters.opennebula.protocol import OneFrontend
from drkit.adapters.opennebula.pyone_frontend import PyoneFrontend
from drkit.adapters.opennebula.records import (
    VM_ACTIONS,
    OneDatastore,
    OneDisk,
    OneImage,
    OneNic,
    OneVm,
    OneVmTemplate,
    OneVnet,
    TemplateMap,
    TemplateValue,
    VmAction,
)

__all__ = [
    "ACTION",
    "ALLOCATE",
    "AUTHENTICATION",
    "AUTHORIZATION",
    "INTERNAL",
    "LOCKED",
    "NO_EXISTS",
    "VM_ACTIONS",
    "XML_RPC_API",
    "OneAccessDenied",
    "OneConflict",
    "OneDatastore",
    "OneDisk",
    "OneFrontend",
    "OneImage",
    "OneNic",
    "OneNotFound",
    "OneParseError",
    "OneUnreachable",
    "OneVm",
    "OneVmTemplate",
    "OneVnet",
    "PyoneFrontend",
    "TemplateMap",
    "TemplateValue",
    "VmAction",
    "datastore_from_pyone",
    "frontend_at",
    "image_from_pyone",
    "one_error",
    "one_unparsable",
    "one_unreachable",
    "redact_endpoint",
    "template_map",
    "vectors",
    "vm_from_pyone",
    "vnet_from_pyone",
]
