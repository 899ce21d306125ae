"""A VM's way between OpenNebula front-ends, pure: images to register or reuse, the VM template for
the target, every decision and refusal, on the guide's cases."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from drkit.domain.opennebula import (
    SavedImage,
    SourceVm,
    TargetSite,
    VmPlan,
    bind_images,
    is_protected,
    rbd_image,
    translate_vm,
    unbound,
    vm_guard,
)
from drkit.domain.opennebula_models import OpenNebulaApp
from drkit.domain.opennebula_records import Named, TargetImage
from drkit.domain.opennebula_template import parse_template, render_template

ROOT_PASSWORD = 'pa"ss\\word'


def guide_vm() -> SourceVm:
    """The guide's VM 0 (alpine on one/one-0-0-0) with a second NIC on a network site-b lacks, an ISO
    and a kernel path only site-a has, and the runtime keys a running VM carries."""
    return SourceVm(
        id=0,
        name="alpine-0",
        template={
            "CPU": "0.1",
            "MEMORY": "96",
            "VMID": "0",
            "TEMPLATE_ID": "3",
            "AUTOMATIC_REQUIREMENTS": "(CLUSTER_ID = 0) & !(PUBLIC_CLOUD = YES)",
            "TM_MAD_SYSTEM": "ceph",
            "CONTEXT": {
                "DISK_ID": "1",
                "ETH0_GATEWAY": "192.168.150.1",
                "ETH0_IP": "192.168.150.100",
                "ETH0_MAC": "02:00:c0:a8:96:64",
                "ETH1_IP": "10.0.0.5",
                "ETH10_IP": "10.9.9.9",
                "NETWORK": "YES",
                "SSH_PUBLIC_KEY": "ssh-rsa AAAAB3Nza one",
                "ROOT_PASSWORD": ROOT_PASSWORD,
                "TARGET": "hda",
            },
            "DISK": [
                {
                    "DISK_ID": "0",
                    "IMAGE": "alpine",
                    "IMAGE_ID": "0",
                    "IMAGE_UNAME": "oneadmin",
                    "SOURCE": "one/one-0",
                    "TYPE": "RBD",
                    "TM_MAD": "ceph",
                    "DATASTORE": "default",
                    "DATASTORE_ID": "1",
                    "POOL_NAME": "one",
                    "CEPH_HOST": "mon-a",
                    "CLONE": "YES",
                    "PERSISTENT": "NO",
                    "SIZE": "256",
                    "ORIGINAL_SIZE": "256",
                    "TARGET": "vda",
                    "DEV_PREFIX": "vd",
                    "CACHE": "none",
                    "TOTAL_IOPS_SEC": "500",
                },
                {
                    "DISK_ID": "2",
                    "IMAGE": "alpine-3.20.iso",
                    "IMAGE_ID": "4",
                    "TYPE": "CDROM",
                    "TARGET": "hdb",
                },
                {"DISK_ID": "3", "TYPE": "swap", "SIZE": "128", "DATASTORE_ID": "0", "TARGET": "vdc"},
            ],
            "NIC": [
                {
                    "NIC_ID": "0",
                    "NETWORK": "public-a",
                    "NETWORK_ID": "0",
                    "IP": "192.168.150.100",
                    "MAC": "02:00:c0:a8:96:64",
                    "BRIDGE": "br0",
                    "MODEL": "virtio",
                    "SECURITY_GROUPS": "0",
                    "TARGET": "one-0-0",
                    "VN_MAD": "bridge",
                    "AR_ID": "0",
                },
                {
                    "NIC_ID": "1",
                    "NETWORK": "private-a",
                    "NETWORK_ID": "1",
                    "IP": "10.0.0.5",
                    "MAC": "02:00:0a:00:00:05",
                },
            ],
            "GRAPHICS": {"LISTEN": "0.0.0.0", "PORT": "5900", "TYPE": "vnc", "PASSWD": "vnc-pw"},
            "OS": {"UUID": "417177d9-5765-44d7-9033-4f75572519a2", "KERNEL": "/var/lib/one/kernels/vmlinuz"},
        },
        user_template={"SCHED_DS_REQUIREMENTS": 'ID="100"', "DR": "standby"},
    )


ALPINE = SavedImage(
    id=0,
    name="alpine",
    source="one/one-0",
    size_mb=256,
    persistent=False,
    owner="oneadmin",
    type=0,
    dev_prefix="vd",
)
ISO = SavedImage(
    id=4,
    name="alpine-3.20.iso",
    source="/var/lib/one/datastores/101/9f1c",
    size_mb=50,
    persistent=False,
    type=1,
)


def site_b(**changes: Any) -> TargetSite:
    base = TargetSite(
        name="site-b",
        networks=(Named(id=5, name="public-b"),),
        datastores=(Named(id=0, name="system"), Named(id=100, name="ceph-images")),
    )
    return base.model_copy(update=changes)


def rules(**changes: Any) -> OpenNebulaApp:
    fields: dict[str, Any] = {
        "vm_ids": [0],
        "datastores": {"site-a": 1, "site-b": "ceph-images"},
        "networks": {"public-a": "public-b"},
        "unmapped_nic": "drop-context",
        "source_only": "drop",
    }
    return OpenNebulaApp.model_validate({**fields, **changes})


def go(app: OpenNebulaApp | None = None, target: TargetSite | None = None, **kw: Any) -> VmPlan:
    return translate_vm(
        guide_vm(), [ALPINE, ISO], target or site_b(), app or rules(), source_is_home=True, **kw
    )


def decided(plan: VmPlan) -> dict[str, str]:
    """Each decision as 'before -> after (rule)' by what it is about (several joined by ' | ')."""
    out: dict[str, str] = {}
    for d in plan.decisions:
        text = f"{d.before} -> {d.after} ({d.rule})"
        out[d.what] = f"{out[d.what]} | {text}" if d.what in out else text
    return out


def test_the_guides_vm_registers_its_disk_as_a_persistent_image_from_the_mirrored_source() -> None:
    plan = go()
    assert plan.refusals == ()
    (image,) = plan.images
    assert image.template == {
        "NAME": "alpine-0-0",
        "TYPE": "OS",
        "PERSISTENT": "YES",
        "SOURCE": "one/one-0-0-0",
        "FORMAT": "raw",
        "SIZE": "256",
        "DEV_PREFIX": "vd",
    }
    assert (image.datastore_id, image.reuse, image.disk_id) == (100, None, 0)
    assert "register" in decided(plan)["DISK 0 image alpine-0-0"]


def test_the_guides_vm_template_for_the_target() -> None:
    t = go().template
    assert t["NAME"] == "alpine-0" and t["MEMORY"] == "96" and t["TM_MAD_SYSTEM"] == "ceph"
    for runtime in ("VMID", "TEMPLATE_ID", "AUTOMATIC_REQUIREMENTS"):
        assert runtime not in t
    assert t["DISK"] == [
        {
            "IMAGE": "alpine-0-0",
            "TARGET": "vda",
            "DEV_PREFIX": "vd",
            "CACHE": "none",
            "TOTAL_IOPS_SEC": "500",
        },
        {"TYPE": "swap", "SIZE": "128", "TARGET": "vdc"},  # volatile: created empty
    ]
    # NIC 0 moves to public-b, its static addresses dropped; NIC 1's network does not exist on B: dropped.
    assert t["NIC"] == {"NETWORK_ID": "5", "NETWORK": "public-b", "MODEL": "virtio"}
    assert t["CONTEXT"] == {
        "ETH10_IP": "10.9.9.9",  # ETH1_ is NIC 1's, ETH10_ is not
        "NETWORK": "YES",
        "SSH_PUBLIC_KEY": "ssh-rsa AAAAB3Nza one",
        "ROOT_PASSWORD": ROOT_PASSWORD,
        "TARGET": "hda",
    }
    assert t["GRAPHICS"] == {"LISTEN": "0.0.0.0", "TYPE": "vnc", "PASSWD": "vnc-pw"}
    assert t["OS"] == {"UUID": "417177d9-5765-44d7-9033-4f75572519a2"}  # the kernel path exists only on A
    assert "SCHED_DS_REQUIREMENTS" not in t and t["DR"] == "standby"


def test_every_change_is_a_decision_the_plan_can_show() -> None:
    seen = decided(go())
    assert seen["NIC 0"].startswith("network public-a -> network public-b (5)")
    assert "IP=192.168.150.100, MAC=02:00:c0:a8:96:64 -> dropped" in " ".join(seen.values())
    assert seen["NIC 1"] == (
        "network private-a, IP=10.0.0.5, MAC=02:00:0a:00:00:05 -> NIC dropped: site-b has no such network"
        " (unmapped_nic drop-context)"
    )
    assert seen["DISK 2 (a CDROM image)"] == "alpine-3.20.iso -> dropped (source_only drop)"
    assert seen["OS/KERNEL"] == "/var/lib/one/kernels/vmlinuz -> dropped (source_only drop)"
    assert seen["SCHED_DS_REQUIREMENTS"] == 'ID="100" -> dropped (source_only drop)'
    assert seen["template"].startswith("AUTOMATIC_REQUIREMENTS, TEMPLATE_ID, VMID -> removed")
    assert seen["GRAPHICS/PORT"].startswith("5900 -> removed")
    assert seen["CONTEXT/DISK_ID"].startswith("1 -> removed")
    assert seen["CONTEXT"].startswith("ETH0_GATEWAY, ETH0_IP, ETH0_MAC, ETH1_IP -> removed")
    assert seen["DISK 3"] == "swap disk -> created empty (volatile)"
    text = " ".join(str(d) for d in go().decisions)
    assert "vnc-pw" not in text and "word" not in text  # no secret value in a decision


def test_a_nic_whose_network_has_no_mapping_is_refused_by_rule() -> None:
    plan = go(rules(unmapped_nic="refuse"))
    assert [str(r) for r in plan.refusals] == [
        "VM 0 alpine-0: NIC 1: network private-a has no mapping to site-b in opennebula.networks"
    ]


def test_drop_context_keeps_a_nic_on_the_targets_network_of_the_same_name_without_its_addresses() -> None:
    target = site_b(networks=(Named(id=5, name="public-b"), Named(id=7, name="private-a")))
    t = go(target=target).template
    assert t["NIC"][1] == {"NETWORK_ID": "7", "NETWORK": "private-a"}
    assert "ETH1_IP" not in t["CONTEXT"]


def test_a_mapped_network_the_target_lacks_is_refused() -> None:
    plan = go(target=site_b(networks=()))
    assert "NIC 0: network public-a maps to public-b, which site-b does not have" in str(plan.refusals[0])


def test_kept_addresses_stay_with_their_context() -> None:
    t = go(rules(mapped_nic_addresses="keep")).template
    assert t["NIC"]["IP"] == "192.168.150.100" and t["NIC"]["MAC"] == "02:00:c0:a8:96:64"
    assert t["CONTEXT"]["ETH0_IP"] == "192.168.150.100"


def test_attributes_only_on_the_source_refused_or_rewritten() -> None:
    refused = go(rules(source_only="refuse"))
    reasons = [str(r) for r in refused.refusals]
    assert any("DISK 2 (a CDROM image): alpine-3.20.iso exists only on the source" in r for r in reasons)
    assert any(
        r.startswith("VM 0 alpine-0: OS/KERNEL: /var/lib/one/kernels/vmlinuz exists only") for r in reasons
    )
    assert any("SCHED_DS_REQUIREMENTS" in r for r in reasons)
    rewritten = go(
        rules(
            source_only="rewrite",
            rewrites={
                "alpine-3.20.iso": "alpine-b.iso",
                "/var/lib/one/kernels/vmlinuz": "/srv/kernels/vmlinuz",
                'ID="100"': 'ID="100" | ID="101"',
            },
        )
    )
    assert rewritten.refusals == ()
    t = rewritten.template
    assert t["DISK"][1] == {"IMAGE": "alpine-b.iso", "TARGET": "hdb"}
    assert t["OS"]["KERNEL"] == "/srv/kernels/vmlinuz" and t["SCHED_DS_REQUIREMENTS"] == 'ID="100" | ID="101"'
    missing = go(rules(source_only="rewrite", rewrites={"alpine-3.20.iso": "alpine-b.iso"}))
    assert sorted(r.what for r in missing.refusals) == ["OS/KERNEL", "SCHED_DS_REQUIREMENTS"]
    kernel = "opennebula.rewrites has no rewrite for '/var/lib/one/kernels/vmlinuz'"
    assert any(kernel in r.reason for r in missing.refusals)


def test_an_image_name_taken_on_the_target_with_the_same_source_is_reused() -> None:
    target = site_b(images=(TargetImage(id=9, name="alpine-0-0", source="one/one-0-0-0"),))
    plan = go(target=target)
    assert plan.refusals == () and plan.images[0].reuse == 9
    assert plan.template["DISK"][0]["IMAGE_ID"] == "9" and "IMAGE" not in plan.template["DISK"][0]
    assert unbound(plan, {}) == []
    # Registered by hand under another name, with that SOURCE: reused too (never a second image on one RBD image).
    other = go(target=site_b(images=(TargetImage(id=11, name="by-hand", source="one/one-0-0-0"),)))
    assert other.images[0].reuse == 11 and other.images[0].name == "by-hand"


def test_an_image_name_taken_on_the_target_with_another_source_stops_the_plan() -> None:
    plan = go(target=site_b(images=(TargetImage(id=9, name="alpine-0-0", source="one/one-42"),)))
    assert plan.images == ()
    assert [str(r) for r in plan.refusals] == [
        "VM 0 alpine-0: DISK 0 image alpine-0-0: the name alpine-0-0 is taken on site-b by image 9 whose SOURCE is"
        " one/one-42, not one/one-0-0-0; rename or delete that image"
    ]


def test_a_datastore_the_target_lacks_is_refused() -> None:
    plan = go(rules(datastores={"site-a": 1, "site-b": 7}))
    assert plan.images == ()
    assert (
        "datastore 7 does not exist on site-b (it has: 0 system, 100 ceph-images)" in plan.refusals[0].reason
    )
    assert go(rules(datastores={"site-a": 1, "site-b": 100})).images[0].datastore_id == 100


def test_a_persistent_image_keeps_its_name_and_source() -> None:
    persistent = ALPINE.model_copy(update={"persistent": True, "source": "one/one-7", "id": 7, "name": "db"})
    assert rbd_image(persistent, 0, 0) == ("one", "one-7")
    vm = guide_vm().model_copy(update={"template": {"DISK": {"DISK_ID": "0", "IMAGE_ID": "7"}}})
    plan = translate_vm(vm, [persistent], site_b(), rules(), source_is_home=True)
    assert plan.images[0].template["SOURCE"] == "one/one-7" and plan.images[0].name == "db"
    assert plan.template["DISK"] == {"IMAGE": "db"}


def test_a_disk_not_among_the_apps_volumes_exists_only_on_the_source() -> None:
    plan = go(rules(source_only="refuse"), mirrored={"one-9"})
    assert any("its RBD image is not one of the app's volumes" in r.what for r in plan.refusals)
    assert go(mirrored={"one-0-0-0"}).images[0].source == "one/one-0-0-0"


def test_the_way_back_reads_the_network_map_in_reverse() -> None:
    vm = guide_vm().model_copy(
        update={"template": {"NIC": {"NIC_ID": "0", "NETWORK": "public-b", "IP": "1.2.3.4"}}}
    )
    home = TargetSite(
        name="site-a", networks=(Named(id=0, name="public-a"),), datastores=(Named(id=1, name="a"),)
    )
    plan = translate_vm(vm, [], home, rules(), source_is_home=False)
    assert plan.template["NIC"] == {"NETWORK_ID": "0", "NETWORK": "public-a"}


def test_a_nic_named_by_network_id_only_is_resolved_by_the_saved_networks() -> None:
    vm = guide_vm().model_copy(
        update={"template": {"NIC": {"NIC_ID": "0", "NETWORK_ID": "0"}}, "networks": {0: "public-a"}}
    )
    assert (
        translate_vm(vm, [], site_b(), rules(), source_is_home=True).template["NIC"]["NETWORK"] == "public-b"
    )
    lost = vm.model_copy(update={"networks": {}})
    plan = translate_vm(lost, [], site_b(), rules(), source_is_home=True)
    assert "names network id '0', whose name was not saved" in plan.refusals[0].reason


def test_an_alias_of_a_dropped_nic_goes_with_it() -> None:
    template = dict(guide_vm().template)
    template["NIC_ALIAS"] = [
        {"NIC_ID": "2", "PARENT": "NIC1", "NETWORK": "private-a"},
        {"NIC_ID": "3", "PARENT": "NIC0", "NETWORK": "public-a", "IP": "192.168.150.7"},
    ]
    plan = translate_vm(
        guide_vm().model_copy(update={"template": template}),
        [ALPINE, ISO],
        site_b(),
        rules(),
        source_is_home=True,
    )
    assert plan.template["NIC_ALIAS"] == {"NETWORK_ID": "5", "NETWORK": "public-b", "PARENT": "NIC0"}
    assert decided(plan)["NIC_ALIAS 2"] == "NIC1 -> dropped (parent NIC dropped)"


def test_disks_are_bound_to_the_ids_their_images_got() -> None:
    plan = go()
    assert unbound(plan, {}) == ["alpine-0-0"]
    bound = bind_images(plan, {"alpine-0-0": 12, "alpine": 99})
    assert bound["DISK"][0] == {
        "IMAGE_ID": "12",
        "TARGET": "vda",
        "DEV_PREFIX": "vd",
        "CACHE": "none",
        "TOTAL_IOPS_SEC": "500",
    }
    assert bound["DISK"][1] == {"TYPE": "swap", "SIZE": "128", "TARGET": "vdc"}
    assert plan.template["DISK"][0]["IMAGE"] == "alpine-0-0"  # the plan itself is unchanged
    assert unbound(plan, {"alpine-0-0": 12}) == []


def test_image_types_by_number_or_name() -> None:
    assert ALPINE.type == "OS" and ISO.type == "CDROM"
    assert (
        SavedImage(id=1, name="d", source="one/one-1", size_mb=1, persistent=True, type="datablock").type
        == "DATABLOCK"
    )
    with pytest.raises(ValidationError, match="unknown image type 12"):
        SavedImage(id=1, name="d", source="one/one-1", size_mb=1, persistent=True, type=12)


def test_the_translated_template_renders_and_parses_back_as_it_was() -> None:
    template = bind_images(go(), {"alpine-0-0": 12})
    text = render_template(template)
    assert 'ROOT_PASSWORD="pa\\"ss\\\\word"' in text
    assert text.startswith('NAME="alpine-0"\n')
    assert 'DISK=[\n  IMAGE_ID="12",\n  TARGET="vda",' in text
    assert parse_template(text) == template


def test_the_plan_guard_fails_with_every_refusal_and_passes_with_what_will_be_done() -> None:
    ok = vm_guard([go()], "site-b")
    assert ok.ok and ok.detail.startswith("1 VM(s) on site-b: 1 image(s) to register, 0 reused, ")
    taken = site_b(images=(TargetImage(id=9, name="alpine-0-0", source="one/one-42"),))
    failed = vm_guard([go(rules(unmapped_nic="refuse"), target=taken)], "site-b")
    assert not failed.ok
    assert failed.detail.count("VM 0 alpine-0: ") == 2
    assert (
        "NIC 1: network private-a has no mapping" in failed.detail
        and "the name alpine-0-0 is taken" in failed.detail
    )


def test_the_vms_of_an_app_by_id_or_by_label() -> None:
    by_id = rules()
    assert is_protected(by_id, 0, {}) and not is_protected(by_id, 1, {"DR": "standby"})
    by_label = rules(vm_ids=None, vm_label="DR=standby")
    assert is_protected(by_label, 7, {"DR": "standby"}) and is_protected(by_label, 7, {"dr": "standby"})
    assert not is_protected(by_label, 7, {"DR": "standby-not"}) and not is_protected(by_label, 7, {})
    assert not is_protected(by_label, 7, {"DR": {"X": "standby"}})
