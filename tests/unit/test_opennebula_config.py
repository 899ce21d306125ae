"""The configuration of OpenNebula VMs: a site's front-end, an app of checks.kind opennebula, and
one-line errors naming the app and the field for each of their fields."""

from __future__ import annotations

import copy
import re
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from drkit.config import parse_config
from drkit.domain.errors import ConfigError
from drkit.domain.models import StandbyConfig
from drkit.domain.selection import plan_lists

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "standby.example.yaml"
GUIDE = ROOT / "docs" / "operator-guide.md"


def guide_example() -> dict[str, Any]:
    """The annotated VM app of the operator's guide (its YAML block under the VM section)."""
    text = GUIDE.read_text()
    section = text[text.index("## Virtual machines (OpenNebula): configuration") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    data: dict[str, Any] = yaml.safe_load(block.group(1))
    return data


def with_vm(edit: Any = None) -> dict[str, Any]:
    """The example configuration with the guide's sites' front-ends and its VM app, edited by ``edit``."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    vm = guide_example()
    fronts = {s["name"]: s["opennebula"] for s in vm["sites"]}
    for site in data["sites"]:
        site["opennebula"] = copy.deepcopy(fronts[site["name"]])
    data["apps"].append(copy.deepcopy(vm["apps"][0]))
    if edit is not None:
        edit(data)
    return data


def load(data: dict[str, Any]) -> StandbyConfig:
    return parse_config(yaml.safe_dump(data), source=Path("bad.yaml"), base=ROOT)


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        load(data)
    message = str(info.value)
    assert message.startswith("bad.yaml: ") and "\n" not in message
    return message


def app(data: dict[str, Any]) -> dict[str, Any]:
    vm: dict[str, Any] = data["apps"][2]
    return vm


def one(data: dict[str, Any]) -> dict[str, Any]:
    section: dict[str, Any] = app(data)["opennebula"]
    return section


def test_the_guides_vm_app_is_valid_beside_the_kubernetes_apps() -> None:
    cfg = load(with_vm())
    vm = cfg.app("vms")
    assert vm.namespace is None and vm.workload is None
    assert [v.pvc for v in vm.volumes] == [None, None]
    assert [vm.volume_mode(v) for v in vm.volumes] == ["journal", "snapshot"]
    assert vm.routing.mode == "none"  # no Ingress for VMs: 'none' when absent
    assert vm.opennebula is not None
    assert vm.opennebula.label() == ("DR", "standby")
    assert vm.opennebula.datastores == {"site-a": 1, "site-b": "ceph-images"}
    assert vm.opennebula.network_map(source_is_home=True) == {"public-a": "public-b"}
    assert vm.opennebula.network_map(source_is_home=False) == {"public-b": "public-a"}
    assert vm.opennebula.describe() == "VMs labelled DR=standby"
    # The VMs' images are in the image pool (the guide's 'one'), the Kubernetes apps' in the site's.
    assert vm.pool_on(cfg.site("site-b")) == "one"
    assert cfg.app("web").pool_on(cfg.site("site-b")) == cfg.site("site-b").pool == "replicapool"
    a, b = cfg.site("site-a").opennebula, cfg.site("site-b").opennebula
    assert a is not None and b is not None
    assert a.credentials_file == ROOT / "one-a.auth"  # relative: against the file's folder
    assert a.timeout == timedelta(seconds=30) and b.credentials_secret == "one-b-session"
    # The Kubernetes apps read as before.
    nexus = cfg.app("nexus")
    assert nexus.namespace == "nexus-dr" and nexus.volumes[0].pvc and nexus.opennebula is None
    assert nexus.volume_mode(nexus.volumes[0]) == "snapshot"


def test_a_config_with_a_vm_app_round_trips_through_json_as_blocks_store_it() -> None:
    cfg = load(with_vm())
    assert StandbyConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_a_vm_app_reaching_a_kubernetes_command_is_one_line_naming_app_and_command() -> None:
    vm = load(with_vm()).app("vms")
    with pytest.raises(ConfigError) as info:
        plan_lists(vm)
    assert str(info.value).startswith("app vms: backup is not supported yet for checks.kind 'opennebula'")
    for call in (lambda: vm.kube_namespace("restore"), lambda: vm.kube_workload("drill")):
        with pytest.raises(ConfigError, match=r"^app vms: (restore|drill) is not supported yet"):
            call()
    with pytest.raises(ConfigError, match="app vms: the restore-volumes step is not supported yet"):
        vm.claim(vm.volumes[0], "the restore-volumes step")


def edits() -> list[tuple[str, Any, str]]:
    """(case, edit of the configuration, what the one-line error says)."""

    def site(n: int, **fields: Any) -> Any:
        def edit(d: dict[str, Any]) -> None:
            front = d["sites"][n]["opennebula"]
            for k, v in fields.items():
                if v is None:
                    front.pop(k, None)
                else:
                    front[k] = v

        return edit

    def vm(**fields: Any) -> Any:
        def edit(d: dict[str, Any]) -> None:
            for k, v in fields.items():
                if v is None:
                    app(d).pop(k, None)
                else:
                    app(d)[k] = v

        return edit

    def section(**fields: Any) -> Any:
        def edit(d: dict[str, Any]) -> None:
            for k, v in fields.items():
                if v is None:
                    one(d).pop(k, None)
                else:
                    one(d)[k] = v

        return edit

    nexus = "app nexus: apps[0]"
    return [
        # a site's front-end
        (
            "no credentials",
            site(0, credentials_file=None),
            "sites[0].opennebula: give exactly one of credentials_file, credentials_env and credentials_secret; the password itself is never written",
        ),
        (
            "two sources",
            site(1, credentials_env="ONE_B"),
            "sites[1].opennebula: give exactly one of credentials_file, credentials_env and credentials_secret (got credentials_env, credentials_secret)",
        ),
        ("a password", site(0, password="hunter2"), "sites[0].opennebula.password: unknown field"),
        (
            "endpoint",
            site(0, endpoint="one-a:2633"),
            "sites[0].opennebula.endpoint: String should match pattern",
        ),
        (
            "env name",
            site(1, credentials_secret=None, credentials_env="ONE B"),
            "sites[1].opennebula.credentials_env: String should match pattern",
        ),
        ("timeout", site(0, timeout="0s"), "sites[0].opennebula.timeout: Input should be greater than 0"),
        ("timeout text", site(0, timeout="soon"), "sites[0].opennebula.timeout: expected a duration like"),
        (
            "no front-end",
            lambda d: d["sites"][1].pop("opennebula"),
            "app vms: apps[2].checks.kind: site site-b has no 'opennebula' section",
        ),
        # the app's section
        (
            "ids and label",
            section(vm_ids=[0]),
            "app vms: apps[2].opennebula: give exactly one of vm_ids and vm_label",
        ),
        (
            "neither",
            section(vm_label=None),
            "app vms: apps[2].opennebula: give exactly one of vm_ids and vm_label",
        ),
        (
            "label",
            section(vm_label="DR"),
            "app vms: apps[2].opennebula.vm_label: String should match pattern",
        ),
        (
            "negative id",
            section(vm_label=None, vm_ids=[-1]),
            "app vms: apps[2].opennebula.vm_ids: VM ids are 0 or more",
        ),
        (
            "repeated id",
            section(vm_label=None, vm_ids=[3, 3]),
            "app vms: apps[2].opennebula.vm_ids: repeated VM ids: 3",
        ),
        (
            "no ids",
            section(vm_label=None, vm_ids=[]),
            "app vms: apps[2].opennebula.vm_ids: Tuple should have at least 1 item",
        ),
        (
            "pool",
            section(image_pool=""),
            "app vms: apps[2].opennebula.image_pool: String should have at least 1 character",
        ),
        (
            "datastores",
            section(datastores=None),
            "app vms: apps[2].opennebula.datastores: required field is missing",
        ),
        (
            "datastore of site-b",
            section(datastores={"site-a": 1}),
            "app vms: apps[2]: opennebula.datastores: no datastore for site-b",
        ),
        (
            "datastore site",
            section(datastores={"site-a": 1, "site-b": 2, "site-c": 3}),
            "app vms: apps[2].opennebula.datastores: unknown site 'site-c'",
        ),
        (
            "datastore id",
            section(datastores={"site-a": -1, "site-b": 2}),
            "app vms: apps[2].opennebula.datastores: site site-a: a datastore is an id",
        ),
        ("network", section(networks={"public-a": " "}), "app vms: apps[2].opennebula.networks: empty name"),
        (
            "unmapped rule",
            section(unmapped_nic="ignore"),
            "app vms: apps[2].opennebula.unmapped_nic: Input should be 'drop-context' or 'refuse'",
        ),
        (
            "addresses rule",
            section(mapped_nic_addresses="maybe"),
            "app vms: apps[2].opennebula.mapped_nic_addresses: Input should be 'drop' or 'keep'",
        ),
        (
            "source rule",
            section(source_only="ignore"),
            "app vms: apps[2].opennebula.source_only: Input should be 'drop', 'rewrite' or 'refuse'",
        ),
        (
            "rewrite needs",
            section(rewrites=None),
            "app vms: apps[2].opennebula: source_only 'rewrite' needs 'rewrites'",
        ),
        (
            "rewrites unread",
            section(source_only="drop"),
            "app vms: apps[2].opennebula: 'rewrites' is only read with source_only 'rewrite', not 'drop'",
        ),
        ("unknown key", section(vm_name="web"), "app vms: apps[2].opennebula.vm_name: unknown field"),
        # the app's Kubernetes fields and its kind
        (
            "namespace",
            vm(namespace="vms"),
            "app vms: apps[2]: namespace: an app of checks.kind opennebula has no Kubernetes namespace",
        ),
        (
            "workload",
            vm(workload={"kind": "apps/v1/StatefulSet", "name": "x"}),
            "app vms: apps[2]: workload: an app of checks.kind opennebula has no Kubernetes workload",
        ),
        (
            "pvc",
            lambda d: app(d)["volumes"][1].update(pvc="data"),
            "app vms: apps[2]: volumes[1].pvc: a VM's disk has no PVC",
        ),
        (
            "volume mode",
            lambda d: app(d)["volumes"][0].update(mode="async"),
            "app vms: apps[2].volumes[0].mode: Input should be 'snapshot' or 'journal'",
        ),
        (
            "control",
            vm(mirroring={"control": "volume-replication", "volume_replication_class": "x"}),
            "app vms: apps[2]: mirroring.control: an app of checks.kind opennebula has no PVCs",
        ),
        (
            "routing",
            vm(routing={"mode": "ingress"}),
            "app vms: apps[2]: routing.mode: 'ingress' restores Kubernetes Services",
        ),
        (
            "section",
            vm(opennebula=None),
            "app vms: apps[2]: checks.kind opennebula needs an 'opennebula' section",
        ),
        (
            "section on nexus",
            lambda d: d["apps"][0].update(opennebula=one(d)),
            f"{nexus}: opennebula: only read for checks.kind opennebula, not 'nexus'",
        ),
        (
            "nexus namespace",
            lambda d: d["apps"][0].pop("namespace"),
            f"{nexus}: namespace: required for checks.kind 'nexus' (only kind opennebula goes without)",
        ),
        (
            "nexus workload",
            lambda d: d["apps"][0].pop("workload"),
            f"{nexus}: workload: required for checks.kind 'nexus'",
        ),
        (
            "web pvc",
            lambda d: d["apps"][1]["volumes"][0].pop("pvc"),
            "app web: apps[1]: volumes[0].pvc: required for checks.kind 'http'",
        ),
    ]


@pytest.mark.parametrize(("case", "edit", "expected"), edits(), ids=[c for c, _, _ in edits()])
def test_each_field_error_is_one_line_naming_the_app_and_the_field(
    case: str, edit: Any, expected: str
) -> None:
    load(with_vm())  # the unedited configuration is valid: the edit alone makes the error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        message = error_of(with_vm(edit))
    assert expected in message, message
