"""OpenNebula 6.10's XML schemas (``xsd/``), loaded so lxml can check the front-end's documents.

Two changes are made at load time (see ``xsd/README.md``): the target namespace is dropped (oned's
replies have none) and a sequence holding an ``xs:any`` becomes "any elements" (libxml2 refuses
those content models as not deterministic). Needs lxml (pyone's dependency), so only tests use it.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import Any

XSD_DIR = Path(__file__).resolve().parent / "xsd"
XS = "{http://www.w3.org/2001/XMLSchema}"
NAMESPACE = "http://opennebula.org/XMLSchema"
ROOTS = {
    "VM": "vm",
    "IMAGE": "image",
    "IMAGE_POOL": "image_pool",
    "VNET": "vnet",
    "VNET_POOL": "vnet_pool",
    "DATASTORE": "datastore",
    "VMTEMPLATE": "vmtemplate",
}


def _loosened(path: Path) -> bytes:
    from lxml import etree

    text = path.read_text(encoding="utf-8").lstrip()
    text = text.replace(f' targetNamespace="{NAMESPACE}"', "").replace(f' xmlns="{NAMESPACE}"', "")
    doc = etree.fromstring(text.encode("utf-8"), etree.XMLParser(remove_blank_text=True))
    for group in list(doc.iter(XS + "sequence", XS + "choice", XS + "all")):
        if group.find(XS + "any") is not None:
            for child in list(group):
                group.remove(child)
            group.tag = XS + "sequence"
            etree.SubElement(group, XS + "any", minOccurs="0", maxOccurs="unbounded", processContents="skip")
    return bytes(etree.tostring(doc))


@cache
def _folder() -> Path:
    out = Path(tempfile.mkdtemp(prefix="one-xsd-"))
    for path in XSD_DIR.glob("*.xsd"):
        (out / path.name).write_bytes(_loosened(path))
    return out


@cache
def schema(root: str) -> Any:
    """The ``lxml.etree.XMLSchema`` of the document whose root element is ``root`` (``VM``...)."""
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(_folder() / f"{ROOTS[root]}.xsd")))


def problems(body: str) -> list[str]:
    """What the schema of ``body``'s root finds wrong in it (empty: valid). A ``VM_POOL`` from
    ``one.vmpool.infoextended`` holds full ``VM`` documents: each is checked against ``vm.xsd``."""
    from lxml import etree

    doc = etree.fromstring(body.encode("utf-8"))
    documents = list(doc) if doc.tag == "VM_POOL" else [doc]
    found: list[str] = []
    for item in documents:
        checker = schema(item.tag)
        if not checker.validate(item):
            found += [f"{item.tag}: {error.message}" for error in checker.error_log]
    return found
