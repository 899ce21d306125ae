"""Label selectors, the list plan and the selection of an app's objects."""

from __future__ import annotations

from typing import Any

import pytest

from drkit.domain.errors import ConfigError
from drkit.domain.models import KindRef, ProtectedApp
from drkit.domain.selection import (
    LabelSelector,
    ListCall,
    is_cluster_managed,
    plan_lists,
    select_objects,
)

LABELS = {"app": "nexus", "tier": "web", "env": "prod"}

MATCHES = [
    ("", True),
    ("app=nexus", True),
    ("app==nexus", True),
    ("app=other", False),
    ("app!=other", True),
    ("app!=nexus", False),
    ("missing!=x", True),
    ("tier in (web,api)", True),
    ("tier in (api)", False),
    ("tier notin (api, db)", True),
    ("tier notin (web)", False),
    ("missing in (a)", False),
    ("missing notin (a)", True),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("app=nexus, tier in (web), !legacy, env!=dev", True),
    ("app=nexus,env=dev", False),
    ("example.com/team", False),
    ("app=", False),
]


@pytest.mark.parametrize(("text", "expected"), MATCHES)
def test_selector_matches(text: str, expected: bool) -> None:
    assert LabelSelector.parse(text).matches(LABELS) is expected


@pytest.mark.parametrize(
    "text",
    [
        "app=a=b",
        "tier in ()",
        "tier in (a",
        "a)",
        "bad key!=x",
        "app=nexus,,tier=web",
        "-app=x",
        "app=-x",
        "x in (a,b c)",
    ],
)
def test_selector_errors_name_the_clause(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LabelSelector.parse(text)
    assert repr(text) in str(caught.value)
    assert "app=nexus" in caught.value.hint


def test_selector_round_trips_to_canonical_text() -> None:
    selector = LabelSelector.parse("app==nexus, tier in (web,api), !legacy,release")
    assert str(selector) == "app=nexus,tier in (api,web),!legacy,release"
    assert LabelSelector.parse(str(selector)) == selector
    assert LabelSelector.parse(None).matches(None)


def _app(**backup: Any) -> ProtectedApp:
    return ProtectedApp.model_validate(
        {
            "name": "nexus",
            "namespace": "nexus-dr",
            "home_site": "site-a",
            "secondary_site": "site-b",
            "volumes": [{"pvc": "data-0", "image": "csi-vol-1"}],
            "workload": {"kind": "operator.alaudadevops.io/v1alpha1/Nexus", "name": "nexus-ddrs"},
            "mirroring": {"volume_replication_class": "rbd-vrc"},
            "snapshot_interval": "1m",
            "rpo_target": "5m",
            "backup": backup,
        }
    )


def test_plan_lists_one_call_per_kind_and_namespace() -> None:
    calls = plan_lists(_app())
    rendered = [str(c) for c in calls]
    assert rendered == [
        "list v1/Namespace cluster-wide metadata.name=nexus-dr",
        "list v1/Secret namespace nexus-dr",
        "list v1/ConfigMap namespace nexus-dr",
        "list v1/PersistentVolumeClaim namespace nexus-dr",
        "list v1/Service namespace nexus-dr",
        "list networking.k8s.io/v1/Ingress namespace nexus-dr",
        "list replication.storage.openshift.io/v1alpha1/VolumeReplication namespace nexus-dr",
        "list operator.alaudadevops.io/v1alpha1/Nexus namespace nexus-dr metadata.name=nexus-ddrs",
        "list v1/PersistentVolume cluster-wide",
    ]
    assert calls[-1].purpose == "claimed-pvs"


def test_plan_lists_dedups_and_scopes() -> None:
    app = _app(
        kinds=[
            "v1/Secret",
            "v1/Secret",
            "storage.k8s.io/v1/StorageClass",
            "operator.alaudadevops.io/v1alpha1/Nexus",
        ],
        include_pvs=False,
        label_selector="app in (nexus)",
    )
    calls = plan_lists(app, include_namespace=False)
    assert [str(c) for c in calls] == [
        "list v1/Secret namespace nexus-dr app in (nexus)",
        "list storage.k8s.io/v1/StorageClass cluster-wide app in (nexus)",
        "list operator.alaudadevops.io/v1alpha1/Nexus namespace nexus-dr app in (nexus)",
        "list operator.alaudadevops.io/v1alpha1/Nexus namespace nexus-dr metadata.name=nexus-ddrs",
    ]
    without_selector = plan_lists(
        _app(kinds=["operator.alaudadevops.io/v1alpha1/Nexus"]), include_namespace=False
    )
    assert len([c for c in without_selector if c.kind.kind == "Nexus"]) == 1


def _obj(kind: str, name: str, ns: str | None = "nexus-dr", api: str = "v1", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **extra.pop("meta", {})}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": api, "kind": kind, "metadata": meta, **extra}


def _answers(
    app: ProtectedApp, by_kind: dict[str, list[dict[str, Any]]]
) -> list[tuple[ListCall, list[dict[str, Any]]]]:
    return [(call, by_kind.get(call.kind.kind, [])) for call in plan_lists(app)]


def test_select_objects_keeps_the_app_and_its_claimed_pvs() -> None:
    app = _app(label_selector="app=nexus")
    labelled = {"labels": {"app": "nexus"}}
    listed = _answers(
        app,
        {
            "Namespace": [_obj("Namespace", "nexus-dr", None)],
            "Secret": [
                _obj("Secret", "root", meta=labelled),
                _obj(
                    "Secret", "other"
                ),  # wrong labels: an adapter ignoring selectors must not widen the backup
                _obj("Secret", "tok", meta=labelled, type="kubernetes.io/service-account-token"),
            ],
            "ConfigMap": [_obj("ConfigMap", "kube-root-ca.crt", meta=labelled)],
            "PersistentVolumeClaim": [
                _obj("PersistentVolumeClaim", "data-0", meta=labelled, spec={"volumeName": "pv-a"}),
                _obj("PersistentVolumeClaim", "pending", meta=labelled, spec={}),
            ],
            "PersistentVolume": [
                _obj("PersistentVolume", "pv-a", None),
                _obj("PersistentVolume", "pv-z", None),
            ],
            "Nexus": [_obj("Nexus", "nexus-ddrs", api="operator.alaudadevops.io/v1alpha1")],
        },
    )
    selection = select_objects(app, listed)
    names = [(o["kind"], o["metadata"]["name"]) for o in selection.objects]
    assert sorted(names) == sorted(
        [
            ("Namespace", "nexus-dr"),
            ("Secret", "root"),
            ("PersistentVolumeClaim", "data-0"),
            ("PersistentVolumeClaim", "pending"),
            ("PersistentVolume", "pv-a"),
            ("Nexus", "nexus-ddrs"),
        ]
    )
    assert selection.warnings == (
        "PVC nexus-dr/pending is not bound (no spec.volumeName); its PV is not saved",
    )


def test_select_objects_warns_about_missing_claims_and_pvs() -> None:
    app = _app()
    listed = _answers(
        app, {"PersistentVolumeClaim": [_obj("PersistentVolumeClaim", "data-0", spec={"volumeName": "gone"})]}
    )
    warnings = select_objects(app, listed).warnings
    assert warnings == ("PV gone of PVC nexus-dr/data-0 was not found by the backup",)
    assert select_objects(app, _answers(app, {})).warnings == (
        "PVC nexus-dr/data-0 of app nexus was not found by the backup",
    )


def test_select_objects_dedups_objects_listed_twice() -> None:
    app = _app(kinds=["operator.alaudadevops.io/v1alpha1/Nexus"], label_selector="a=b")
    cr = _obj("Nexus", "nexus-ddrs", api="operator.alaudadevops.io/v1alpha1", meta={"labels": {"a": "b"}})
    assert len(select_objects(app, _answers(app, {"Nexus": [cr]})).objects) == 1


def test_field_selector_is_checked_again() -> None:
    app = _app()
    listed = _answers(
        app, {"Namespace": [_obj("Namespace", "nexus-dr", None), _obj("Namespace", "kube-system", None)]}
    )
    kept = [o["metadata"]["name"] for o in select_objects(app, listed).objects if o["kind"] == "Namespace"]
    assert kept == ["nexus-dr"]


@pytest.mark.parametrize(
    ("obj", "managed"),
    [
        ({"kind": "Secret", "type": "kubernetes.io/service-account-token", "metadata": {"name": "t"}}, True),
        ({"kind": "Secret", "type": "Opaque", "metadata": {"name": "t"}}, False),
        ({"kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"}}, True),
        ({"kind": "ConfigMap", "metadata": {"name": "app-config"}}, False),
    ],
)
def test_is_cluster_managed(obj: dict[str, Any], managed: bool) -> None:
    assert is_cluster_managed(obj) is managed


def test_kind_ref_in_list_call_is_hashable() -> None:
    call = ListCall(KindRef(version="v1", kind="Secret"), "ns")
    assert {call: 1}[call] == 1
