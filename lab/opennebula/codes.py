"""oned's numbers as its XML-RPC API speaks them: error codes, VM/LCM/image/datastore states and
types, the attributes kept in a VM's TEMPLATE, the VM actions; and the error reply (:class:`OneError`)."""

from __future__ import annotations

# Error codes of OpenNebula's XML-RPC API.
AUTHENTICATION = 0x0100
AUTHORIZATION = 0x0200
NO_EXISTS = 0x0400
ACTION = 0x0800
XML_RPC_API = 0x1000
INTERNAL = 0x2000
ALLOCATE = 0x4000
LOCKED = 0x8000

# VM_STATE and LCM_STATE numbers (pyone.VM_STATE / pyone.LCM_STATE).
INIT, PENDING, HOLD, ACTIVE, STOPPED, SUSPENDED, DONE, FAILED, POWEROFF, UNDEPLOYED = range(10)
VM_STATE_NAMES = (
    "INIT",
    "PENDING",
    "HOLD",
    "ACTIVE",
    "STOPPED",
    "SUSPENDED",
    "DONE",
    "FAILED",
    "POWEROFF",
    "UNDEPLOYED",
)
LCM_INIT, LCM_RUNNING, LCM_UNKNOWN = 0, 3, 16
# IMAGE_STATES numbers.
IMG_READY, IMG_USED, IMG_USED_PERS = 1, 2, 8
# Image TYPE and DISK_TYPE numbers.
IMAGE_TYPES = {"OS": 0, "CDROM": 1, "DATABLOCK": 2}
DISK_TYPE_FILE, DISK_TYPE_RBD = 0, 3
# Datastore TYPE numbers.
DS_IMAGE, DS_SYSTEM, DS_FILE = 0, 1, 2

# Attributes oned keeps in a VM's TEMPLATE; the others stay in its USER_TEMPLATE.
SYSTEM_ATTRS = frozenset(
    [
        "CPU",
        "VCPU",
        "VCPU_MAX",
        "MEMORY",
        "MEMORY_MAX",
        "DISK",
        "NIC",
        "NIC_ALIAS",
        "NIC_DEFAULT",
        "CONTEXT",
        "OS",
        "GRAPHICS",
        "INPUT",
        "FEATURES",
        "RAW",
        "PCI",
        "NUMA_NODE",
        "TOPOLOGY",
        "EMULATOR",
        "CPU_MODEL",
        "VIDEO",
        "SECURITY_GROUP_RULE",
        "TEMPLATE_ID",
        "VMID",
        "AUTOMATIC_REQUIREMENTS",
        "AUTOMATIC_DS_REQUIREMENTS",
        "AUTOMATIC_NIC_REQUIREMENTS",
    ]
)
VM_ACTIONS = (
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
)


class OneError(Exception):
    """An error reply: ``[False, message, code, resp_id]``."""

    def __init__(self, code: int, message: str, resp_id: int = -1) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.resp_id = resp_id


def no_exists(method: str, what: str, oid: int) -> OneError:
    return OneError(NO_EXISTS, f"[{method}] Error getting {what} [{oid}].", oid)


def locked_error(method: str, what: str, oid: int) -> OneError:
    return OneError(LOCKED, f"[{method}] The resource {what} is locked. [{oid}].", oid)
