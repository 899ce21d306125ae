"""The lab apiserver's ValidatingAdmissionPolicy: the shipped PV policy enforced as Kubernetes does
(the standby ServiceAccount writes only PVs on its apps' images), CEL errors absorbed or failing as
CEL says, and anything beyond the supported subset refused when stored, never silently ignored."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab import rbac
from lab.kubeapi.admission import Review, Unsupported, admit, compile_expression, compile_policy
from lab.kubeapi.errors import ApiError
from tests.apiservers import bearer_client, rbac_server

SA = "system:serviceaccount:standby:standby"
IMAGE = "csi-vol-459e6f28-a158-4ae9-b5da-163448c35119"


def _shipped() -> tuple[dict[str, Any], dict[str, Any]]:
    objs = rbac.site_manifests("site-b")
    (policy,) = [o for o in objs if o["kind"] == "ValidatingAdmissionPolicy"]
    (binding,) = [o for o in objs if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    return policy, binding


def _pv(name: str, image: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}
    if image is not None:
        spec["csi"] = {
            "driver": "rook-ceph.rbd.csi.ceph.com",
            "volumeHandle": name,
            "volumeAttributes": {"imageName": image, "pool": "replicapool"},
        }
    else:
        spec["hostPath"] = {"path": "/etc"}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec}


def _review(
    operation: str, obj: dict[str, Any] | None, old: dict[str, Any] | None = None, user: str = SA
) -> Review:
    name = (obj or old or {})["metadata"]["name"]
    return Review("", "v1", "persistentvolumes", operation, name, "", user, (), obj, old)


def _denied(review: Review) -> str:
    policy, binding = _shipped()
    try:
        admit([policy], [binding], review)
    except ApiError as err:
        return f"{err.code} {err.message}"
    return ""


def test_standby_may_create_patch_and_delete_only_pvs_on_its_apps_images() -> None:
    listed, drill, other = _pv("a", IMAGE), _pv("b", f"{IMAGE}-drill"), _pv("c", "csi-vol-someone-else")
    assert _denied(_review("CREATE", listed)) == ""
    assert _denied(_review("CREATE", drill)) == ""
    assert _denied(_review("DELETE", None, listed)) == ""
    retained = copy.deepcopy(listed)
    retained["spec"]["persistentVolumeReclaimPolicy"] = "Retain"
    assert _denied(_review("UPDATE", retained, listed)) == ""
    refused = _denied(_review("CREATE", other))
    assert refused.startswith(
        '403 persistentvolumes "c" is forbidden: ValidatingAdmissionPolicy '
        "'standby-persistentvolumes' with binding 'standby-persistentvolumes' denied request:"
    )
    assert "only PersistentVolumes on its apps' RBD images" in refused
    assert _denied(_review("DELETE", None, other)).startswith("403 ")  # deleting someone else's PV
    assert _denied(_review("UPDATE", _pv("a", "csi-vol-someone-else"), listed)).startswith(
        "403 "
    )  # repointing
    assert _denied(_review("UPDATE", listed, other)).startswith("403 ")  # taking over someone else's
    assert _denied(_review("CREATE", _pv("h", None))).startswith("403 ")  # a hostPath PV: no csi at all


def test_other_users_are_not_matched() -> None:
    assert _denied(_review("CREATE", _pv("c", "csi-vol-someone-else"), user="admin")) == ""


def test_cel_errors_are_absorbed_by_and_or_and_otherwise_fail_closed() -> None:
    env: dict[str, Any] = {"object": {"spec": {}}, "oldObject": None, "request": {"operation": "CREATE"}}
    assert compile_expression("'a' == 'b' && object.spec.csi.x == 'y'")(env) is False
    assert compile_expression("object.spec.csi.x == 'y' || 'a' == 'a'")(env) is True
    assert compile_expression("has(object.spec.csi)")(env) is False
    assert compile_expression("!has(object.spec)")(env) is False
    assert compile_expression("'a' in ['a', \"b\"] && 'c' != 'a'")(env) is True
    failing = compile_expression("oldObject.spec.csi == 'y' || 'a' == 'b'")(env)
    assert type(failing).__name__ == "Err"
    policy, binding = _shipped()
    broken = copy.deepcopy(policy)
    broken["spec"]["validations"] = [
        {"expression": "object.spec.csi.volumeAttributes.imageName in variables.images"}
    ]
    with pytest.raises(ApiError) as err:  # an error with failurePolicy Fail denies
        admit([broken], [binding], _review("CREATE", _pv("h", None)))
    assert err.value.code == 422 and "resulted in error: no such key: csi" in err.value.message


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s["validations"].append({"expression": "size(object.spec) > 1"}),
        lambda s: s["validations"].append({"expression": "object.spec.x ? 'a' == 'a' : 'b' == 'b'"}),
        lambda s: s["validations"].append({"expression": "true"}),
        lambda s: s["validations"][0].update({"messageExpression": "'no'"}),
        lambda s: s.update({"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}),
        lambda s: s["matchConstraints"].update({"namespaceSelector": {}}),
        lambda s: s["matchConstraints"]["resourceRules"][0].update({"resourceNames": ["x"]}),
    ],
)
def test_what_the_lab_cannot_evaluate_is_refused(edit: Any) -> None:
    policy, _ = _shipped()
    edit(policy["spec"])
    with pytest.raises(Unsupported):
        compile_policy(policy)


def test_the_apiserver_enforces_the_shipped_policy_for_the_service_account(tmp_path: Path) -> None:
    policy, binding = _shipped()
    with rbac_server(tmp_path, "admin-token", ("app", "x"), {}) as (srv, admin):
        core, custom = client.CoreV1Api(admin), client.CustomObjectsApi(admin)
        rbac_api = client.RbacAuthorizationV1Api(admin)
        rbac_api.create_cluster_role(
            {
                "metadata": {"name": "pv"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["persistentvolumes"],
                        "verbs": ["create", "patch", "delete"],
                    }
                ],
            }
        )
        rbac_api.create_cluster_role_binding(
            {
                "metadata": {"name": "pv"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pv"},
                "subjects": [{"kind": "ServiceAccount", "name": "standby", "namespace": "standby"}],
            }
        )
        group = ("admissionregistration.k8s.io", "v1")
        custom.create_cluster_custom_object(*group, "validatingadmissionpolicies", policy)
        custom.create_cluster_custom_object(*group, "validatingadmissionpolicybindings", binding)
        bad = copy.deepcopy(policy)
        bad["metadata"]["name"] = "bad"
        bad["spec"]["validations"] = [{"expression": "size(object.spec) > 1"}]
        with pytest.raises(ApiException) as err:
            custom.create_cluster_custom_object(*group, "validatingadmissionpolicies", bad)
        assert err.value.status == 422 and "not supported by the lab" in str(err.value.body)
        token = core.create_namespaced_service_account_token(
            "standby",
            "standby",
            client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
        ).status.token
        sa = client.CoreV1Api(bearer_client(srv.url, token, srv.ca_file))
        sa.create_persistent_volume(_pv("mine", IMAGE))
        sa.patch_persistent_volume("mine", {"spec": {"persistentVolumeReclaimPolicy": "Retain"}})
        core.create_persistent_volume(_pv("theirs", "csi-vol-someone-else"))  # the admin is not matched
        for call in (
            lambda: sa.create_persistent_volume(_pv("other", "csi-vol-someone-else")),
            lambda: sa.patch_persistent_volume(
                "theirs", {"spec": {"persistentVolumeReclaimPolicy": "Retain"}}
            ),
            lambda: sa.delete_persistent_volume("theirs"),
        ):
            with pytest.raises(ApiException) as err:
                call()
            assert err.value.status == 403 and "ValidatingAdmissionPolicy 'standby-persistentvolumes'" in str(
                err.value.body
            )
        sa.delete_persistent_volume("mine")
        assert [p.metadata.name for p in core.list_persistent_volume().items] == ["theirs"]
