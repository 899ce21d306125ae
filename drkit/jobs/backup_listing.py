"""What a backup takes from the app's cluster, without Prefect: one LIST per kind and namespace
(:func:`list_objects`; a kind that cannot be listed is a warning, a transient failure is raised),
or a VM app's records from its front-end (:func:`list_app`), and the refusal of Secrets when no
key is configured.
"""

from __future__ import annotations

from typing import Any

from drkit.adapters.kube import ClusterApi
from drkit.adapters.opennebula import OneFrontend
from drkit.domain.errors import ConfigError, StandbyError, TransientError
from drkit.domain.models import ProtectedApp, Site
from drkit.domain.selection import ListCall, Selection, plan_lists, select_objects
from drkit.jobs.opennebula_vms import list_vms
from drkit.jobs.requests import KEY_ENV


def list_objects(
    cluster: ClusterApi, app: ProtectedApp, *, page_size: int = 500
) -> tuple[Selection, tuple[str, ...], int]:
    """LIST what the app needs; returns the selection, the kinds listed and the number of LIST calls.

    A call that fails for good (kind not served, forbidden, refused) is a warning of the selection;
    a :class:`TransientError` is raised so that the caller retries, and a :class:`ConfigError` (the
    site's access is wrong, e.g. an untrusted certificate) is raised as is.
    """
    listed: list[tuple[ListCall, list[dict[str, Any]]]] = []
    warnings: list[str] = []
    kinds: list[str] = []
    for call in plan_lists(app):
        try:
            objects = cluster.list(
                call.kind, call.namespace, label_selector=call.label_selector, limit=page_size
            )
        except (TransientError, ConfigError):  # retried, or the site's access itself is wrong (TLS)
            raise
        except StandbyError as error:
            warnings.append(f"could not {call} on site {cluster.site}: {error.message}")
            continue
        listed.append((call, objects))
        kinds.append(str(call.kind))
    selection = select_objects(app, listed)
    return Selection(selection.objects, (*warnings, *selection.warnings)), tuple(kinds), len(listed)


def list_app(
    app: ProtectedApp, site: Site, cluster: ClusterApi | None, frontend: OneFrontend | None, page_size: int
) -> tuple[Selection, tuple[str, ...], int]:
    """What a backup run of ``app`` on ``site`` backs up: the VM records read from ``frontend`` (a VM app), else the cluster's."""
    if app.opennebula is not None:
        if frontend is None:
            raise ConfigError(
                f"app {app.name}: a VM app is backed up from {site.name}'s OpenNebula front-end"
            )
        return list_vms(frontend, app, site.name)
    if cluster is None:
        raise ConfigError(f"app {app.name}: its backup reads {site.name}'s Kubernetes API")
    return list_objects(cluster, app, page_size=page_size)


def _refuse_plain_secrets(selection: Selection, app: ProtectedApp, site: str) -> None:
    secrets = sorted(
        str((o.get("metadata") or {}).get("name")) for o in selection.objects if o.get("kind") == "Secret"
    )
    if secrets:
        shown = ", ".join(secrets[:3]) + (f" and {len(secrets) - 3} more" if len(secrets) > 3 else "")
        raise ConfigError(
            f"app {app.name} on site {site} has {len(secrets)} Secret(s) to back up ({shown}) but no backup"
            " encryption key is configured; Secrets are never stored in plaintext",
            hint=f"set {KEY_ENV} to base64 of 32 random bytes (`head -c 32 /dev/urandom | base64`), or give"
            " the flow a Prefect Secret block holding it"
            + ("" if app.opennebula is not None else ", or drop v1/Secret from the app's backup.kinds"),
            context={"app": app.name, "site": site},
        )
