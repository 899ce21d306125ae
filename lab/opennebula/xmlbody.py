"""The XML documents oned answers, rendered from the front-end's records.

Element names and order follow OpenNebula 6.10's schemas (``share/doc/xsd``: ``vm.xsd``,
``image.xsd``, ``vnet.xsd``, ``datastore.xsd``, ``vmtemplate.xsd`` and their pools); values of a
``TEMPLATE`` are in CDATA as oned writes them. pyone's generated bindings parse these documents,
and the contract tests check that they do.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from xml.sax.saxutils import escape

from lab.opennebula.template import Template, from_json

PERMISSIONS = (
    "<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A>"
    "<GROUP_U>0</GROUP_U><GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A>"
    "<OTHER_U>0</OTHER_U><OTHER_M>0</OTHER_M><OTHER_A>0</OTHER_A></PERMISSIONS>"
)
OWNER = "<UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME>"


def cdata(value: str) -> str:
    """``value`` as CDATA (a ``]]>`` inside is split across two sections, as XML requires)."""
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def el(name: str, value: object) -> str:
    """``<name>value</name>`` with the text escaped."""
    return f"<{name}>{escape(str(value))}</{name}>"


def template_xml(name: str, template: Template) -> str:
    """A ``TEMPLATE`` (or ``USER_TEMPLATE``) element; vectors become nested elements.

    Attributes come out sorted by name (a name's repeats in order), and so do a vector's: oned
    keeps a template in a multimap and a vector in a map, and writes them in that order.
    """
    parts = []
    for key, value in sorted(template, key=lambda attr: attr[0]):
        if isinstance(value, str):
            parts.append(f"<{key}>{cdata(value)}</{key}>")
        else:
            inner = "".join(f"<{k}>{cdata(v)}</{k}>" for k, v in sorted(value))
            parts.append(f"<{key}>{inner}</{key}>")
    return f"<{name}>{''.join(parts)}</{name}>"


def ids(name: str, values: Iterable[int]) -> str:
    return f"<{name}>{''.join(el('ID', v) for v in values)}</{name}>"


def lock_xml(lock: Mapping[str, Any] | None) -> str:
    if not lock:
        return ""
    return (
        f"<LOCK>{el('LOCKED', lock['level'])}<OWNER>0</OWNER>{el('TIME', lock['time'])}"
        f"<REQ_ID>-1</REQ_ID></LOCK>"
    )


def vm_xml(vm: Mapping[str, Any]) -> str:
    history = ""
    if vm.get("history"):
        h = vm["history"]
        history = (
            "<HISTORY_RECORDS><HISTORY>"
            f"<OID>{vm['id']}</OID><SEQ>0</SEQ>{el('HOSTNAME', h['hostname'])}{el('HID', h['hid'])}"
            f"<CID>0</CID>{el('STIME', h['stime'])}{el('ETIME', h.get('etime', 0))}"
            f"<VM_MAD>{cdata('kvm')}</VM_MAD><TM_MAD>{cdata('ceph')}</TM_MAD>{el('DS_ID', h['ds_id'])}"
            f"{el('PSTIME', h['stime'])}<PETIME>{h['stime']}</PETIME>{el('RSTIME', h['stime'])}"
            f"<RETIME>0</RETIME><ESTIME>0</ESTIME><EETIME>0</EETIME>"
            f"<ACTION>0</ACTION><UID>-1</UID><GID>-1</GID><REQUEST_ID>-1</REQUEST_ID>"
            "</HISTORY></HISTORY_RECORDS>"
        )
    else:
        history = "<HISTORY_RECORDS/>"
    return (
        "<VM>"
        f"{el('ID', vm['id'])}{OWNER}{el('NAME', vm['name'])}{PERMISSIONS}"
        f"<LAST_POLL>0</LAST_POLL>{el('STATE', vm['state'])}{el('LCM_STATE', vm['lcm_state'])}"
        f"{el('PREV_STATE', vm['prev_state'])}{el('PREV_LCM_STATE', vm['prev_lcm_state'])}"
        f"{el('RESCHED', vm.get('resched', 0))}{el('STIME', vm['stime'])}{el('ETIME', vm.get('etime', 0))}"
        f"{el('DEPLOY_ID', vm.get('deploy_id', ''))}{lock_xml(vm.get('lock'))}"
        "<MONITORING/><SCHED_ACTIONS/>"
        f"{template_xml('TEMPLATE', from_json(vm['template']))}"
        f"{template_xml('USER_TEMPLATE', from_json(vm['user_template']))}"
        f"{history}"
        "<BACKUPS><BACKUP_CONFIG/><BACKUP_IDS/></BACKUPS>"
        "</VM>"
    )


def image_xml(image: Mapping[str, Any], datastore_name: str) -> str:
    return (
        "<IMAGE>"
        f"{el('ID', image['id'])}{OWNER}{el('NAME', image['name'])}{lock_xml(image.get('lock'))}"
        f"{PERMISSIONS}{el('TYPE', image['type'])}{el('DISK_TYPE', image['disk_type'])}"
        f"{el('PERSISTENT', 1 if image['persistent'] else 0)}{el('REGTIME', image['regtime'])}"
        f"<SOURCE>{cdata(image['source'])}</SOURCE><PATH>{cdata(image.get('path', ''))}</PATH>"
        f"<FORMAT>{cdata(image['format'])}</FORMAT><FS>{cdata('')}</FS>{el('SIZE', image['size'])}"
        f"{el('STATE', image['state'])}{el('PREV_STATE', image.get('prev_state', image['state']))}"
        f"{el('RUNNING_VMS', len(image['vms']))}<CLONING_OPS>0</CLONING_OPS><CLONING_ID>-1</CLONING_ID>"
        f"<TARGET_SNAPSHOT>-1</TARGET_SNAPSHOT>{el('DATASTORE_ID', image['datastore_id'])}"
        f"{el('DATASTORE', datastore_name)}{ids('VMS', image['vms'])}<CLONES/><APP_CLONES/>"
        f"{template_xml('TEMPLATE', from_json(image['template']))}"
        "<SNAPSHOTS><ALLOW_ORPHANS><![CDATA[NO]]></ALLOW_ORPHANS><CURRENT_BASE>-1</CURRENT_BASE>"
        "<NEXT_SNAPSHOT>0</NEXT_SNAPSHOT></SNAPSHOTS><BACKUP_INCREMENTS/>"
        "</IMAGE>"
    )


def vnet_xml(vnet: Mapping[str, Any], *, short: bool = False) -> str:
    """A ``VNET`` as ``one.vn.info`` answers it, or (``short``) as in ``one.vnpool.info``, whose
    address ranges carry ``ALLOCATED`` instead of their leases."""
    ar = vnet["ar"]
    leases = vnet.get("leases", {})
    lease_xml = "".join(
        f"<LEASE>{el('IP', ip)}{el('MAC', mac_of(ip))}{el('VM', vm_id)}</LEASE>"
        for ip, vm_id in leases.items()
    )
    ar_head = f"<AR_ID><![CDATA[0]]></AR_ID><IP>{cdata(ar['ip'])}</IP><MAC>{cdata(mac_of(ar['ip']))}</MAC>"
    ar_size = f"<SIZE>{ar['size']}</SIZE><TYPE><![CDATA[IP4]]></TYPE>"
    last_ip = str(ipaddress.IPv4Address(ar["ip"]) + int(ar["size"]) - 1)
    ar_full = (
        f"{ar_head}{ar_size}<MAC_END>{cdata(mac_of(last_ip))}</MAC_END><IP_END>{cdata(last_ip)}</IP_END>"
        f"<USED_LEASES>{len(leases)}</USED_LEASES><LEASES>{lease_xml}</LEASES>"
    )
    allocated = "".join(
        f" {int(ipaddress.IPv4Address(ip)) - int(ipaddress.IPv4Address(ar['ip']))} {vm_id}"
        for ip, vm_id in leases.items()
    )
    ar_short = f"<ALLOCATED>{cdata(allocated)}</ALLOCATED>{ar_head}{ar_size}"
    return (
        "<VNET>"
        f"{el('ID', vnet['id'])}{OWNER}{el('NAME', vnet['name'])}{lock_xml(vnet.get('lock'))}{PERMISSIONS}"
        f"<CLUSTERS><ID>0</ID></CLUSTERS>{el('BRIDGE', vnet['bridge'])}<BRIDGE_TYPE>linux</BRIDGE_TYPE>"
        "<STATE>1</STATE><PREV_STATE>0</PREV_STATE><PARENT_NETWORK_ID/>"
        f"{el('VN_MAD', vnet['vn_mad'])}<PHYDEV/><VLAN_ID_AUTOMATIC>0</VLAN_ID_AUTOMATIC>"
        f"<OUTER_VLAN_ID_AUTOMATIC>0</OUTER_VLAN_ID_AUTOMATIC>{el('USED_LEASES', len(leases))}"
        "<VROUTERS/><UPDATED_VMS/><OUTDATED_VMS/><UPDATING_VMS/><ERROR_VMS/>"
        f"{template_xml('TEMPLATE', from_json(vnet['template']))}"
        f"<AR_POOL><AR>{ar_short if short else ar_full}</AR></AR_POOL>"
        "</VNET>"
    )


def datastore_xml(ds: Mapping[str, Any], image_ids: Iterable[int]) -> str:
    return (
        "<DATASTORE>"
        f"{el('ID', ds['id'])}{OWNER}{el('NAME', ds['name'])}{PERMISSIONS}"
        f"{el('DS_MAD', ds['ds_mad'])}{el('TM_MAD', ds['tm_mad'])}{el('BASE_PATH', ds['base_path'])}"
        f"{el('TYPE', ds['type'])}{el('DISK_TYPE', ds['disk_type'])}<STATE>0</STATE>"
        f"<CLUSTERS><ID>0</ID></CLUSTERS>{el('TOTAL_MB', ds['total_mb'])}{el('FREE_MB', ds['free_mb'])}"
        f"{el('USED_MB', ds['total_mb'] - ds['free_mb'])}{ids('IMAGES', image_ids)}"
        f"{template_xml('TEMPLATE', from_json(ds['template']))}"
        "</DATASTORE>"
    )


def vmtemplate_xml(tpl: Mapping[str, Any]) -> str:
    return (
        "<VMTEMPLATE>"
        f"{el('ID', tpl['id'])}{OWNER}{el('NAME', tpl['name'])}{lock_xml(tpl.get('lock'))}{PERMISSIONS}"
        f"{el('REGTIME', tpl['regtime'])}{template_xml('TEMPLATE', from_json(tpl['template']))}"
        "</VMTEMPLATE>"
    )


def pool(name: str, bodies: Iterable[str]) -> str:
    return f"<{name}>{''.join(bodies)}</{name}>"


def mac_of(ip: str) -> str:
    """OpenNebula's default MAC for an IPv4 lease: ``02:00`` then the four bytes of the address."""
    octets = [int(part) for part in ip.split(".")]
    return "02:00:" + ":".join(f"{o:02x}" for o in octets)
