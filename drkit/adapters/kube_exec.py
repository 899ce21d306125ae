"""Exec into a pod: :class:`KubeExecRunner`, the runner that runs ``rbd`` (and the librbd helper) in
Rook's toolbox pod through the Kubernetes API, as ``kubectl exec`` does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from drkit.adapters.kube_errors import api_call
from drkit.adapters.runner import CommandResult, Redactor, check, tail
from drkit.domain.errors import CommandTimedOut, StandbyError, TransientError
from drkit.domain.models import toolbox_target


class KubeExecRunner:
    """A :class:`~drkit.adapters.runner.Runner` that execs into Rook's toolbox pod.

    This is how Rook users run ``rbd``: ``kubectl exec -n rook-ceph deploy/rook-ceph-tools -- rbd ...``.
    ``toolbox`` is ``namespace/deployment`` (the first running pod of the Deployment: its name is
    random, so RBAC must allow listing pods and exec on any pod of the namespace) or
    ``namespace/pod/name`` (that pod only, e.g. a toolbox StatefulSet's ``standby-tools-0``: RBAC
    names it in ``resourceNames``, and exec is granted on nothing else).
    """

    def __init__(
        self,
        api_client: Any,
        deployment: str,
        *,
        site: str,
        redact: Redactor | None = None,
        timeout: float = 30.0,
    ) -> None:
        namespace, kind, name = toolbox_target(deployment)
        self.api_client = api_client
        self.namespace, self.deployment = namespace, name
        self.named_pod = name if kind == "pod" else None
        self.site = site
        self.redact = redact or Redactor()
        self.timeout = timeout  # per API request (the pod lookup and opening the exec stream)
        self._cached_pod: str | None = None

    def _pod(self) -> str:
        """The first running pod of the deployment (remembered until a command fails)."""
        if self._cached_pod is not None:
            return self._cached_pod
        from kubernetes import client

        apps, core = client.AppsV1Api(self.api_client), client.CoreV1Api(self.api_client)
        hint = "deploy Rook's toolbox or use ceph mode 'local'"
        named = self.named_pod
        if named is not None:
            where = f"toolbox pod {self.namespace}/{named}"
            pod = api_call(
                self.site,
                where,
                lambda: core.read_namespaced_pod(named, self.namespace, _request_timeout=self.timeout),
                not_found_hint=hint,
            )
            if not (pod.status and pod.status.phase == "Running"):
                raise TransientError(
                    f"{where} on {self.site} is not running ({pod.status.phase if pod.status else 'no status'})",
                    hint="wait for the toolbox pod; the call is retried",
                    context={"site": self.site},
                )
            self._cached_pod = named
            return named
        where = f"deployment {self.namespace}/{self.deployment}"
        dep = api_call(
            self.site,
            where,
            lambda: apps.read_namespaced_deployment(
                self.deployment, self.namespace, _request_timeout=self.timeout
            ),
            not_found_hint=hint,
        )
        labels = dep.spec.selector.match_labels or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods = api_call(
            self.site,
            f"pods of {where}",
            lambda: core.list_namespaced_pod(
                self.namespace, label_selector=selector, _request_timeout=self.timeout
            ),
        ).items
        running = sorted(
            str(p.metadata.name) for p in pods if p.metadata and p.status and p.status.phase == "Running"
        )
        if not running:
            raise TransientError(
                f"{where} on {self.site} has no running pod",
                hint="wait for the toolbox pod; the call is retried",
                context={"site": self.site},
            )
        self._cached_pod = running[0]
        return running[0]

    def run(
        self,
        argv: Sequence[str],
        *,
        description: str,
        accept: Iterable[int] = (0,),
        timeout: float = 30.0,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run ``argv`` in the toolbox pod; see :class:`~drkit.adapters.runner.Runner`."""
        from kubernetes import client
        from kubernetes.stream import stream
        from websocket import WebSocketException

        pod = self._pod()
        core = client.CoreV1Api(self.api_client)
        started = time.monotonic()
        try:
            resp = api_call(
                self.site,
                f"exec into {self.namespace}/{pod}",
                lambda: stream(
                    core.connect_get_namespaced_pod_exec,
                    pod,
                    self.namespace,
                    command=list(argv),
                    stderr=True,
                    stdin=stdin is not None,
                    stdout=True,
                    tty=False,
                    _preload_content=False,
                    _request_timeout=self.timeout,
                ),
            )
        except StandbyError:
            self._cached_pod = None  # the pod may have gone: look it up again next time
            raise
        out: list[str] = []
        err: list[str] = []
        try:
            if stdin is not None:
                resp.write_stdin(stdin.decode())
            while resp.is_open():
                if time.monotonic() - started > timeout:
                    raise CommandTimedOut(
                        f"{description}: timed out after {timeout:.0f}s in {self.namespace}/{pod} on {self.site}",
                        argv=[self.redact(a) for a in argv],
                        exit_code=None,
                        output_tail=tail(self.redact("".join(err))),
                    )
                resp.update(timeout=0.5)
                out.append(resp.read_stdout() if resp.peek_stdout() else "")
                err.append(resp.read_stderr() if resp.peek_stderr() else "")
            code = resp.returncode
        except (WebSocketException, OSError) as exc:
            self._cached_pod = None
            raise TransientError(
                f"{description}: exec stream to {self.namespace}/{pod} on {self.site} broke ({type(exc).__name__})",
                hint=f"check site {self.site}'s apiserver and the toolbox pod; the call is retried",
                context={"site": self.site, "pod": pod},
            ) from None
        finally:
            resp.close()
        result = CommandResult(
            argv=tuple(self.redact(a) for a in argv),
            exit_code=int(code if code is not None else -1),
            stdout=self.redact("".join(out)),
            stderr=self.redact("".join(err)),
            seconds=time.monotonic() - started,
        )
        check(result, description=description, accept=accept, context={"site": self.site, "pod": pod})
        return result
