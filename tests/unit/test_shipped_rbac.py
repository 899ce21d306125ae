"""The shipped RBAC and admission policy (``deployments/kubernetes/<site>/``), read as files: no
ClusterRole reaches namespaced objects in every namespace, exec names the toolbox pod the example
configuration uses, the isolated drill's namespace is installed with a Role in it, and the PV
policy lists exactly the example apps' images. (That every rule is used and nothing is denied is
proven in the lab: ``tests/lab/test_zz_rbac_audit.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from drkit.config import load_config
from drkit.domain.drill import scratch_image, scratch_namespace
from drkit.domain.models import toolbox_target
from lab import rbac
from tests.lab.rbac_audit import Grant, cross_namespace, grants

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT / "standby.example.yaml")
SITES = ("site-a", "site-b")


@pytest.mark.parametrize("site", SITES)
def test_no_cluster_role_grants_secrets_claims_or_the_workload_across_namespaces(site: str) -> None:
    assert cross_namespace(rbac.site_manifests(site)) == []


def test_the_check_catches_a_cluster_wide_secret_grant() -> None:
    wide = [
        {
            "kind": "ClusterRole",
            "metadata": {"name": "x"},
            "rules": [{"apiGroups": [""], "resources": ["secrets", "persistentvolumes"], "verbs": ["list"]}],
        },
        {
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "x"},
            "roleRef": {"kind": "ClusterRole", "name": "x"},
            "subjects": [{"kind": "ServiceAccount", "name": "standby", "namespace": "standby"}],
        },
    ]
    assert cross_namespace(wide) == [Grant("x", None, "", "secrets", "list")]


def _exec_grants(site: str) -> list[Grant]:
    return [
        g for g in grants(rbac.site_manifests(site)) if g.resource in ("pods/exec", "*/exec", "pods/*", "*")
    ]


def test_exec_is_granted_on_the_configured_toolbox_pod_only() -> None:
    for site in CONFIG.sites:
        found = _exec_grants(site.name)
        if site.ceph.mode != "rook-toolbox":
            assert found == [], f"{site.name} runs rbd locally: no exec"
            continue
        namespace, kind, name = toolbox_target(site.ceph.toolbox)
        assert kind == "pod", "a Deployment's pod name is random: RBAC could not name it"
        assert found and all(g.names == (name,) and g.namespace == namespace for g in found), found
        pods = [g for g in grants(rbac.site_manifests(site.name)) if g.resource == "pods"]
        assert all(g.names == (name,) for g in pods), "no listing of the toolbox namespace's pods"


def test_the_drill_namespace_is_installed_with_a_role_on_the_drill_target() -> None:
    app = CONFIG.app("nexus")
    objects = rbac.site_manifests(app.secondary_site)
    ns = scratch_namespace(app)
    assert {"kind": "Namespace", "name": ns} in [
        {"kind": o["kind"], "name": o["metadata"]["name"]} for o in objects
    ]
    scoped = {g.resource for g in grants(objects) if g.namespace == ns}
    assert {"secrets", "persistentvolumeclaims", "nexuses", "namespaces"} <= scoped


def _pv_policy(site: str) -> dict:  # type: ignore[type-arg]
    (policy,) = [o for o in rbac.site_manifests(site) if o["kind"] == "ValidatingAdmissionPolicy"]
    (binding,) = [o for o in rbac.site_manifests(site) if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    return policy


@pytest.mark.parametrize("site", SITES)
def test_the_pv_policy_lists_the_apps_images_and_their_drill_copies(site: str) -> None:
    import ast

    policy = _pv_policy(site)
    (images,) = [v for v in policy["spec"]["variables"] if v["name"] == "images"]
    listed = set(ast.literal_eval(images["expression"]))
    drilled = [a for a in CONFIG.apps if a.checks.kind == "nexus"]  # only these can be drilled
    expected = {v.image for a in CONFIG.apps for v in a.volumes}
    expected |= {scratch_image(v.image) for a in drilled for v in a.volumes}
    assert listed == expected
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rules == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE", "DELETE"],
            "resources": ["persistentvolumes"],
        }
    ]
