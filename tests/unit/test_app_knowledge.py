"""App knowledge as data: field paths, selectors, storage-class fields, transforms, restore order
and checks come from the app's configuration; bad config is one line naming the app and field."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from drkit.config import parse_config
from drkit.domain import fieldpath
from drkit.domain.app_checks import Checks, HttpCheck, NexusRoundTrip
from drkit.domain.errors import ConfigError
from drkit.domain.models import StandbyConfig
from drkit.domain.restore_order import sort_for_restore
from drkit.domain.restore_spec import FieldTransform, ObjectSelector
from drkit.domain.transforms import ApplyFieldTransform, context_for, sanitize, selects
from drkit.jobs.backup import run_backup
from drkit.jobs.drivers import driver_for
from drkit.jobs.restore import restore_backup
from drkit.testing.clock import FakeClock
from drkit.testing.kube import FakeCluster
from drkit.testing.objectstore import FakeObjectStore
from lab import seeds

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "standby.example.yaml").read_text()


def _config(text: str = EXAMPLE) -> StandbyConfig:
    return parse_config(text, source=Path("standby.yaml"), base=ROOT)


# ------------------------------------------------------------------------------------ field paths


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("spec.storageClassName", ("spec", "storageClassName")),
        (
            "spec.volumeClaimTemplates[*].spec.storageClassName",
            ("spec", "volumeClaimTemplates", "*", "spec", "storageClassName"),
        ),
        ("spec.containers[0].image", ("spec", "containers", 0, "image")),
    ],
)
def test_parse_path(path: str, segments: tuple[object, ...]) -> None:
    assert fieldpath.parse_path(path) == segments


@pytest.mark.parametrize("path", ["", "spec..name", "spec.x[", "spec.x[a]", " spec", "spec.a b"])
def test_bad_paths_say_what_is_wrong(path: str) -> None:
    with pytest.raises(ValueError, match="field path"):
        fieldpath.parse_path(path)


def test_values_update_and_assign() -> None:
    obj: dict[str, Any] = {"spec": {"t": [{"sc": "a"}, {"sc": "b"}, {"other": 1}]}}
    assert fieldpath.values(obj, "spec.t[*].sc") == ["a", "b"]
    assert fieldpath.values(obj, "spec.missing[*].sc") == []
    assert fieldpath.update(obj, "spec.t[*].sc", lambda v: v.upper()) == 2
    assert obj["spec"]["t"][:2] == [{"sc": "A"}, {"sc": "B"}]
    assert fieldpath.update(obj, "spec.t[1].sc", lambda v: fieldpath.REMOVE) == 1
    assert obj["spec"]["t"][1] == {}
    fieldpath.assign(obj, "metadata.annotations.x", "y")
    assert obj["metadata"] == {"annotations": {"x": "y"}}


# -------------------------------------------------------------------------------------- selectors

STS = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "web", "namespace": "web-dr", "labels": {"app": "web", "tier": "front"}},
    "spec": {
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"storageClassName": "ceph-a"}}]
    },
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({}, True),
        ({"kind": "StatefulSet"}, True),
        ({"kind": "Deployment"}, False),
        ({"group": "apps"}, True),
        ({"group": ""}, False),
        ({"api_version": "apps/v1"}, True),
        ({"api_version": "apps/v1beta1"}, False),
        ({"name": "we*"}, True),
        ({"name": "db"}, False),
        ({"namespace": "web-*"}, True),
        ({"namespace": "nexus-dr"}, False),
        ({"labels": {"app": "web"}}, True),
        ({"labels": {"app": "web", "tier": "back"}}, False),
        ({"kind": "StatefulSet", "group": "apps", "name": "web", "labels": {"tier": "front"}}, True),
    ],
)
def test_selectors_match_on_more_than_kind(selector: dict[str, Any], expected: bool) -> None:
    assert selects(ObjectSelector.model_validate(selector), STS) is expected


# ------------------------------------------------------------------- transforms from the config


def test_storage_class_of_statefulset_claim_templates_is_rewritten_from_config() -> None:
    cfg = _config()
    app = cfg.app("web")
    a = cfg.site("site-a").model_copy(update={"storage_class": "ceph-a"})
    b = cfg.site("site-b").model_copy(update={"storage_class": "ceph-b"})
    out = sanitize(STS, context_for(app, a, b))
    assert out["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "ceph-b"
    assert out["metadata"]["annotations"] == {"standby-restored": "true"}  # the app's own transform
    assert STS["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "ceph-a"  # input untouched
    assert sanitize(out, context_for(app, a, b)) == out  # idempotent


def test_field_transform_set_and_remove_only_on_selected_objects() -> None:
    remove = ApplyFieldTransform(
        FieldTransform(
            select=ObjectSelector(kind="StatefulSet", labels={"tier": "front"}),
            action="remove",
            path="spec.volumeClaimTemplates[*].spec.storageClassName",
        )
    )
    other = copy.deepcopy(STS)
    other["metadata"]["labels"] = {"app": "web"}
    assert "storageClassName" not in remove.apply(STS)["spec"]["volumeClaimTemplates"][0]["spec"]
    assert remove.apply(other) == other
    assert remove.applies_to("StatefulSet") and not remove.applies_to("Service")


# ---------------------------------------------------------------------------------- restore order


def test_restore_order_comes_from_the_app() -> None:
    text = EXAMPLE.replace("        - [Service, Ingress]\n", "        - [Service, Ingress]\n", 1).replace(
        "        - [Namespace]\n        - [Secret, ConfigMap]\n",
        "        - [Namespace]\n        - [ConfigMap]\n        - [Secret]\n",
        1,
    )
    app = _config(text).app("nexus")
    assert app.restore.order[1:3] == (("ConfigMap",), ("Secret",))
    items = ["Service", "Secret", "Nexus", "ConfigMap", "Widget", "Namespace"]
    assert sort_for_restore(items, str, app.workload.kind, app.restore.order) == [
        "Namespace",
        "ConfigMap",
        "Secret",
        "Widget",
        "Nexus",
        "Service",
    ]
    assert _config().app("web").restore.order[0] == ("Namespace",)  # the default


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("        - [Secret, ConfigMap]\n", "        - [Secret, Secret]\n"),
            "app nexus: apps[0].restore.order: 'Secret' is in rank 1 and again",
        ),
        (
            ("        - [PersistentVolume]\n", "        - []\n"),
            "app nexus: apps[0].restore.order: rank 2 is empty",
        ),
        (
            (
                'path: "spec.volumeClaimTemplates[*].spec.storageClassName"',
                'path: "spec.volumeClaimTemplates[x].spec"',
            ),
            "app web: apps[1].restore.storage_class_fields[2].path: field path",
        ),
        (
            ("          action: set\n", "          action: replace\n"),
            "app web: apps[1].restore.transforms[0].action",
        ),
        (
            ("        site-b: http://127.0.0.1:16913", "        site-c: http://127.0.0.1:16913"),
            "app web: apps[1].checks.urls: unknown site 'site-c'",
        ),
        (("      kind: http\n      urls:", "      kind: htp\n      urls:"), "app web: apps[1].checks.kind"),
        (
            ("expect_status: 200, expect_body: ok", "expect_status: 2000"),
            "app web: apps[1].checks.health[0].expect_status",
        ),
        (
            ("{kind: http, path: /healthz", "{kind: http, path: healthz"),
            "app web: apps[1].checks.health[0].path",
        ),
        (
            ("      health:\n", "      smoke: [{kind: nexus-round-trip}]\n      health:\n"),
            "app web: apps[1].checks: smoke check 'nexus-round-trip' needs kind 'nexus'",
        ),
    ],
)
def test_bad_app_knowledge_is_one_line_naming_app_and_field(edit: tuple[str, str], expected: str) -> None:
    assert edit[0] in EXAMPLE, edit[0]
    with pytest.raises(ConfigError) as info:
        _config(EXAMPLE.replace(edit[0], edit[1], 1))
    message = str(info.value)
    assert expected in message and "\n" not in message, message


# ------------------------------------------------------------------------------------------ checks


def test_check_defaults_per_driver() -> None:
    assert Checks(kind="http", health_path="/up").health_checks() == (HttpCheck(path="/up"),)
    assert Checks(kind="http").smoke_checks() == ()
    assert Checks(kind="nexus").health_checks() == ()
    assert Checks(kind="nexus", smoke_repository="r").smoke_checks() == (
        NexusRoundTrip(kind="nexus-round-trip", repository="r"),
    )


class _App(BaseHTTPRequestHandler):
    healthy = True

    def do_GET(self) -> None:
        ok = self.path == "/healthz" and _App.healthy
        body = b"ok\n" if ok else b"down\n"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def http_app() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _App.healthy = True
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_driver_runs_the_configured_checks_against_a_real_server(http_app: str) -> None:
    cfg = _config(EXAMPLE.replace("http://127.0.0.1:16912", http_app))
    app, site = cfg.app("web"), cfg.site("site-a")
    cluster = FakeCluster(site="site-a")
    driver = driver_for(app, site, cluster)
    assert driver.url() is None and not driver.writable()  # no workload, no URL
    cluster.seed(*seeds.web_app())
    assert driver.url() == http_app
    assert driver.writable() and driver.answers(http_app)
    assert driver.smoke("t").ok
    _App.healthy = False
    result = driver.smoke("t")
    assert not result.ok and result.failed == ("GET /healthz",)
    assert not driver.writable() and driver.answers(http_app)  # it answers, unhealthy


# ------------------------------------------------------------- the second app, end to end on fakes


def test_second_app_backs_up_and_restores_by_config_alone() -> None:
    cfg = _config()
    app = cfg.app("web")
    a = cfg.site("site-a")
    b = cfg.site("site-b").model_copy(update={"storage_class": "ceph-rbd-b"})
    source = FakeCluster(site="site-a")
    source.seed(*seeds.common("pw-123456789"), *seeds.web_app())
    store = FakeObjectStore(site="site-a")
    summary = run_backup(
        app, a, source, store, key=None, clock=FakeClock(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    )
    assert summary.status == "complete" and summary.objects == 6
    target = FakeCluster(site="site-b")
    target.seed(*seeds.common("pw-123456789"))
    done = restore_backup(store, a, app, target, b, key=None, clock=FakeClock())
    kinds = [c.split()[0] for c in done.created]
    assert kinds == [
        "PersistentVolume",
        "PersistentVolumeClaim",
        "VolumeReplication",
        "StatefulSet",
        "Service",
    ]
    sts = target.get(app.workload.kind, seeds.WEB_NAME, seeds.WEB_NAMESPACE)
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "ceph-rbd-b"
    assert sts["metadata"]["annotations"]["standby-restored"] == "true"
    assert done.bound_pvcs == (f"{seeds.WEB_NAMESPACE}/{seeds.WEB_PVC}",)
