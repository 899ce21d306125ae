"""The shipped Kubernetes base job template: a run cannot choose the image, command or environment.

The template is rendered with prefect-kubernetes' own code (``KubernetesWorkerJobConfiguration``:
``from_template_and_values`` then ``prepare_for_flow_run``, what the worker does before it creates
the Job), and a work pool made from it on the harness's server shows what the server accepts as a
deployment's or a flow run's ``job_variables``. No cluster is needed.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deployments" / "kubernetes" / "base-job-template.json"
IMAGE = "registry.example.com/standby-worker:0.1.0"
HOSTILE: dict[str, Any] = {
    "image": "attacker.example/miner:latest",
    "command": "sh -c 'cat /etc/standby/kube/kubeconfig'",
    "env": {"STANDBY_CONFIG": "/tmp/forged.yaml", "PYTHONPATH": "/tmp/evil"},
    "env.KUBECONFIG": "/tmp/other",
    "namespace": "kube-system",
    "service_account_name": "prefect-worker",
    "labels": {"app": "ingress"},
    "annotations": {"vault.hashicorp.com/agent-inject": "true"},
}
"""Job variables a run could try, one per thing Standby needs fixed."""


def template() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TEMPLATE.read_text())
    return data


def rendered(values: dict[str, Any]) -> dict[str, Any]:
    """The Job manifest the Kubernetes worker would create for a flow run with ``values``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import FlowRun
    from prefect.utilities.asyncutils import run_coro_as_sync
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    async def build() -> KubernetesWorkerJobConfiguration:
        async with get_client() as client:
            return await KubernetesWorkerJobConfiguration.from_template_and_values(
                template(), values, client=client
            )

    config = run_coro_as_sync(build())
    assert config is not None
    config.prepare_for_flow_run(FlowRun(id=uuid.uuid4(), name="a-run", flow_id=uuid.uuid4()))
    manifest: dict[str, Any] = config.job_manifest
    return manifest


def _container(manifest: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = manifest["spec"]["template"]["spec"]["containers"][0]
    return container


def _env(manifest: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in _container(manifest)["env"]}


def test_without_job_variables_the_job_runs_standbys_image_command_and_environment() -> None:
    manifest = rendered({})
    container = _container(manifest)
    assert container["image"] == IMAGE
    assert container["args"] == ["prefect", "flow-run", "execute"]
    env = _env(manifest)
    assert env["KUBECONFIG"] == "/etc/standby/kube/kubeconfig"
    assert env["STANDBY_CONFIG"] == "/etc/standby/config/standby.yaml"
    assert "PREFECT__FLOW_RUN_ID" in env  # the worker's own variables are still added
    assert [s["secretRef"]["name"] for s in container["envFrom"]] == ["standby-s3", "standby-backup-key"]
    assert manifest["metadata"]["namespace"] == "standby"
    assert manifest["spec"]["template"]["spec"]["serviceAccountName"] == "standby"


def test_a_run_that_overrides_image_command_or_env_changes_nothing_in_the_job() -> None:
    """Even if the server let them through, the template has no place for them."""
    base, hostile = rendered({}), rendered(HOSTILE)
    container = _container(hostile)
    assert container["image"] == IMAGE
    assert container["args"] == ["prefect", "flow-run", "execute"]
    env = _env(hostile)
    assert env["STANDBY_CONFIG"] == "/etc/standby/config/standby.yaml"
    assert env["KUBECONFIG"] == "/etc/standby/kube/kubeconfig"
    assert "PYTHONPATH" not in env
    assert hostile["metadata"]["namespace"] == "standby"
    assert hostile["spec"]["template"]["spec"]["serviceAccountName"] == "standby"
    assert "app" not in hostile["metadata"]["labels"]
    assert "vault.hashicorp.com/agent-inject" not in hostile["metadata"]["annotations"]
    assert set(_env(base)) == set(env)


def test_the_variables_left_to_a_run_are_the_harmless_ones() -> None:
    """Names, pull policy, retries, timeouts, output and resources: none changes what runs or as whom."""
    variables = template()["variables"]
    assert variables["additionalProperties"] is False
    assert set(variables["properties"]) == {
        "name",
        "image_pull_policy",
        "backoff_limit",
        "finished_job_ttl",
        "job_watch_timeout_seconds",
        "pod_watch_timeout_seconds",
        "stream_output",
        "cpu_request",
        "cpu_limit",
        "memory_request",
        "memory_limit",
    }
    resources = _container(rendered({"cpu_request": "250m", "memory_limit": "1Gi"}))["resources"]
    assert resources["requests"]["cpu"] == "250m" and resources["limits"]["memory"] == "1Gi"


@pytest.fixture
def pool() -> str:
    """A Kubernetes work pool made from the shipped template on the harness's server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    name = f"standby-k8s-{uuid.uuid4().hex[:6]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=name, type="kubernetes", base_job_template=template()))
    return name


@pytest.mark.parametrize("variable", sorted(HOSTILE))
def test_the_server_refuses_a_deployment_or_run_that_sets_image_command_or_env(
    pool: str, variable: str
) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    @flow(name="job-template-probe")
    def probe() -> None:
        """Never runs: only its deployment is made."""

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow(probe)
        with pytest.raises(PrefectHTTPStatusError) as refused:
            client.create_deployment(
                flow_id=flow_id,
                name=f"bad-{uuid.uuid4().hex[:6]}",
                work_pool_name=pool,
                job_variables={variable: HOSTILE[variable]},
            )
        assert refused.value.response.status_code == 422
        assert "Additional properties are not allowed" in refused.value.response.text
        ok = client.create_deployment(
            flow_id=flow_id,
            name=f"ok-{uuid.uuid4().hex[:6]}",
            work_pool_name=pool,
            job_variables={"cpu_request": "250m"},
        )
        with pytest.raises(PrefectHTTPStatusError) as run_refused:
            client.create_flow_run_from_deployment(ok, job_variables={variable: HOSTILE[variable]})
        assert run_refused.value.response.status_code == 422
        assert client.create_flow_run_from_deployment(ok, job_variables={"memory_limit": "1Gi"}).id
