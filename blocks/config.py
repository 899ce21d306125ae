"""The configuration from Prefect blocks: ``config="block:<name>"``, and saving a YAML file as blocks.

:func:`resolve_config` is what a flow calls, once, with its ``config`` parameter (through
:func:`tasks.world.world_for_run`, which builds the run's World from it): a
``block:<name>`` reference loads the :class:`~blocks.standby_blocks.StandbyConfiguration` of that
name, its site and app blocks, and the Secret and ``AwsCredentials`` blocks they name; anything
else is a path to the YAML file (empty: ``$STANDBY_CONFIG``, which may itself be ``block:<name>``,
then ``./standby.yaml``). The engine receives the loaded :class:`StandbyConfig`; a site's
credentials travel with it in memory (:attr:`Site.secrets`), never through a file.

Every mistake (a missing or misnamed block, content that fails the models, a kubeconfig that is
not YAML or lacks the context, a referenced Secret block missing) is a :class:`ConfigError` whose
one line names the block and the field, and what to do. It is never retried.

:func:`import_config` saves a configuration loaded from YAML as blocks (``standby blocks import``,
and ``make up`` for the lab's).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect_aws import AwsCredentials
from pydantic import SecretStr, ValidationError

from blocks.standby_blocks import StandbyApp, StandbyConfiguration, StandbySite
from drkit.adapters.objectstore import S3Credentials
from drkit.config import ENV_VAR, format_validation_error, load_config
from drkit.domain.bounded_yaml import YamlTooLarge, load_bounded
from drkit.domain.errors import ConfigError
from drkit.domain.models import ProtectedApp, Site, SiteSecrets, StandbyConfig

PREFIX = "block:"
"""A ``config`` value starting with this names a Standby Configuration block."""

B = TypeVar("B", bound=Block)


# ------------------------------------------------------------------------------------ resolving


def resolve_config(config: str | None) -> StandbyConfig:
    """The configuration ``config`` names: ``block:<name>``, or a YAML file's path.

    Empty: ``$STANDBY_CONFIG`` (a path or ``block:<name>``), then ``./standby.yaml``.
    """
    ref = (config or os.environ.get(ENV_VAR) or "").strip()
    if ref.startswith(PREFIX):
        return with_opennebula_sessions(load_config_block(ref[len(PREFIX) :].strip()))
    return with_opennebula_sessions(load_config(Path(ref) if ref else None))


def with_opennebula_sessions(config: StandbyConfig) -> StandbyConfig:
    """``config`` with the OpenNebula session of each site whose front-end names a Prefect Secret
    block (``sites[].opennebula.credentials_secret``) read into its in-memory secrets."""
    sites = []
    for site in config.sites:
        front = site.opennebula
        if front is None or front.credentials_secret is None:
            sites.append(site)
            continue
        name, where = front.credentials_secret, f"site {site.name}: opennebula.credentials_secret"
        value: Any = _load(Secret, name, where=where).get()
        if not isinstance(value, str) or ":" not in value.strip() or value.strip().startswith(":"):
            raise ConfigError(
                f"{where}: Secret block {name!r} does not hold an OpenNebula session 'user:password'",
                hint="store the front-end's user:password in that block (one line, no quotes)",
                context={"site": site.name, "block": name},
            )
        session = SecretStr(value.strip())
        held = site.secrets
        secrets = (
            held.model_copy(update={"opennebula_session": session})
            if held is not None
            else SiteSecrets(opennebula_session=session)
        )
        sites.append(site.with_secrets(secrets))
    if all(a is b for a, b in zip(sites, config.sites, strict=True)):
        return config
    return config.model_copy(update={"sites": tuple(sites)})


def load_config_block(name: str) -> StandbyConfig:
    """Load the Standby Configuration block ``name`` with every block it names."""
    if not name:
        raise ConfigError(
            f"config {PREFIX!r} names no block",
            hint=f'write config="{PREFIX}<name>", the name of a Standby Configuration block',
        )
    top = _load(StandbyConfiguration, name, where=f"config {PREFIX}{name}")
    label = f"Standby Configuration block {name!r}"
    sites = [
        load_site(_load(StandbySite, n, where=f"{label}: sites[{i}]"), n) for i, n in enumerate(top.sites)
    ]
    apps = [_load(StandbyApp, n, where=f"{label}: apps[{i}]").app for i, n in enumerate(top.apps)]
    try:
        return StandbyConfig(sites=tuple(sites), apps=tuple(apps))
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(f"{label} (its sites and apps together)", exc),
            hint="fix the site or app block the field points to, or the lists of this block",
            context={"block": name},
        ) from None


def load_site(block: StandbySite, name: str) -> Site:
    """The site of ``block`` (saved as ``name``) with its credentials from the blocks it names."""
    site, label = block.site, f"Standby Site block {name!r}"
    kubeconfig: str | None = None
    if block.kubeconfig_secret:
        if site.kube.kubeconfig or site.kube.in_cluster:
            raise ConfigError(
                f"{label}: kubeconfig_secret: cannot be combined with site.kube.kubeconfig or in_cluster",
                hint="choose one: clear kubeconfig_secret, or site.kube.kubeconfig and in_cluster",
                context={"block": name},
            )
        kubeconfig = _kubeconfig(label, block.kubeconfig_secret, site.kube.context)
    keys: dict[str, SecretStr | None] = {}
    if block.aws_credentials:
        s3 = site.s3
        if s3.access_key_id_env or s3.secret_access_key_env or s3.credentials_file:
            raise ConfigError(
                f"{label}: aws_credentials: cannot be combined with site.s3's key variables or credentials_file",
                hint="choose one: clear aws_credentials, or those fields of site.s3",
                context={"block": name},
            )
        where = f"{label}: aws_credentials"
        creds = _load(AwsCredentials, block.aws_credentials, where=where)
        if not (creds.aws_access_key_id and creds.aws_secret_access_key):
            raise ConfigError(
                f"{where}: AWS Credentials block {block.aws_credentials!r} has no access key id and secret access key",
                hint="fill in aws_access_key_id and aws_secret_access_key in that block",
                context={"block": block.aws_credentials},
            )
        keys = {
            "s3_access_key_id": SecretStr(creds.aws_access_key_id),
            "s3_secret_access_key": creds.aws_secret_access_key,
            "s3_session_token": SecretStr(creds.aws_session_token) if creds.aws_session_token else None,
        }
    if kubeconfig is None and not keys:
        return site
    return site.with_secrets(
        SiteSecrets(kubeconfig=SecretStr(kubeconfig) if kubeconfig is not None else None, **keys)
    )


def _kubeconfig(label: str, secret_name: str, context: str | None) -> str:
    """The kubeconfig content of Secret block ``secret_name``, checked to hold ``context``."""
    where = f"{label}: kubeconfig_secret"
    value: Any = _load(Secret, secret_name, where=where).get()
    what = f"Secret block {secret_name!r}"
    fix = "store the content of a kubeconfig file in it"
    if isinstance(value, str):
        try:
            data = load_bounded(value)
        except YamlTooLarge as exc:
            raise ConfigError(
                f"{where}: {what} is not read as a kubeconfig: {exc}",
                hint=fix,
                context={"block": secret_name},
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(
                f"{where}: {what} is not valid YAML{at}", hint=fix, context={"block": secret_name}
            ) from None
        text = value
    else:
        data, text = value, yaml.safe_dump(value)
    contexts = data.get("contexts") if isinstance(data, dict) else None
    if not isinstance(contexts, list):
        raise ConfigError(
            f"{where}: {what} is not a kubeconfig (no contexts list)",
            hint=fix,
            context={"block": secret_name},
        )
    names = [str(c.get("name")) for c in contexts if isinstance(c, dict)]
    wanted = context or data.get("current-context")
    if wanted not in names:
        raise ConfigError(
            f"{where}: {what} has no context {wanted!r} (it has: {', '.join(names) or 'none'})",
            hint="fix site.kube.context, or the kubeconfig in that Secret block",
            context={"block": secret_name},
        )
    return text


def _load(cls: type[B], name: str, *, where: str) -> B:
    """Load block ``name`` of type ``cls``; a ``ConfigError`` says what is wrong and where."""
    kind = f"{cls.get_block_type_name()} block {name!r}"
    try:
        block: B = cls.load(name)  # type: ignore[assignment]  # sync here: flows and tasks are sync
        return block
    except ValueError as exc:
        if "Unable to find block document" not in str(exc):
            raise
        known = _known(cls)
        listed = (
            f" (known: {', '.join(known)})" if known else f" (there is no {cls.get_block_type_name()} block)"
        )
        raise ConfigError(
            f"{where}: {kind} does not exist{listed}",
            hint="create it (standby blocks import FILE --name NAME saves a YAML configuration as blocks),"
            " or fix the name",
            context={"block": name},
        ) from None
    except RuntimeError as exc:
        cause = exc.__cause__
        if not isinstance(cause, ValidationError):
            raise
        raise ConfigError(
            format_validation_error(f"{where}: {kind}", cause),
            hint="fix that field of the block (Prefect UI: Blocks), or save it again",
            context={"block": name},
        ) from None


def _known(cls: type[Block]) -> list[str]:
    """Names of the saved blocks of ``cls``'s type (empty when they cannot be listed)."""
    from prefect import get_client

    try:
        with get_client(sync_client=True) as client:
            docs = client.read_block_documents_by_type(cls.get_block_type_slug(), include_secrets=False)
    except Exception:  # only a hint: listing may fail where loading did not
        return []
    return sorted(d.name for d in docs if d.name and not d.is_anonymous)[:10]


# ------------------------------------------------------------------------------------ importing


def import_config(config: StandbyConfig, name: str) -> list[str]:
    """Save ``config`` (loaded from its YAML file) as blocks; return what was saved, never a secret.

    Each site becomes a Standby Site block ``<name>-<site>``. The kubeconfig file it names is cut
    down to the site's context (certificate files inlined) and kept in the Secret block
    ``<name>-<site>-kubeconfig``; the S3 keys it names go to the AwsCredentials block
    ``<name>-<site>-s3``. Each app becomes ``<name>-<app>``; the Standby Configuration ``name``
    lists them. Existing blocks of these names are overwritten.
    """
    saved: list[str] = []
    site_blocks: list[str] = []
    for site in config.sites:
        kube, s3 = site.kube, site.s3
        secret_name = aws_name = None
        if not kube.in_cluster:
            path = Path(kube.kubeconfig or os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
            content, context = site_kubeconfig(path, kube.context, site=site.name)
            secret_name = f"{name}-{site.name}-kubeconfig"
            Secret(value=SecretStr(content)).save(secret_name, overwrite=True)
            saved.append(f"Secret {secret_name} (kubeconfig of {site.name}, context {context})")
            kube = kube.model_copy(update={"kubeconfig": None, "context": context})
        creds = S3Credentials.from_location(s3)
        if creds is not None:
            aws_name = f"{name}-{site.name}-s3"
            AwsCredentials(
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=SecretStr(creds.secret_access_key),
                aws_session_token=creds.session_token,
                region_name=s3.region,
            ).save(aws_name, overwrite=True)
            saved.append(f"AwsCredentials {aws_name} (S3 keys of {site.name})")
            s3 = s3.model_copy(
                update={"access_key_id_env": None, "secret_access_key_env": None, "credentials_file": None}
            )
        block_name = f"{name}-{site.name}"
        plain = site.model_copy(update={"kube": kube, "s3": s3})
        StandbySite(site=plain, kubeconfig_secret=secret_name, aws_credentials=aws_name).save(
            block_name, overwrite=True
        )
        saved.append(f"Standby Site {block_name}")
        site_blocks.append(block_name)
    app_blocks = [_save_app(app, name) for app in config.apps]
    saved += [f"Standby App {n}" for n in app_blocks]
    StandbyConfiguration(sites=site_blocks, apps=app_blocks).save(name, overwrite=True)
    saved.append(f'Standby Configuration {name} (config="{PREFIX}{name}")')
    return saved


def _save_app(app: ProtectedApp, name: str) -> str:
    block_name = f"{name}-{app.name}"
    StandbyApp(app=app).save(block_name, overwrite=True)
    return block_name


def site_kubeconfig(path: Path, context: str | None, *, site: str) -> tuple[str, str]:
    """The kubeconfig at ``path`` cut down to ``context`` (its current one when empty), with the
    certificate and key files it names inlined; returns the YAML text and the context's name."""
    try:
        data = load_bounded(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, YamlTooLarge) as exc:
        why = str(exc) if isinstance(exc, YamlTooLarge) else type(exc).__name__
        raise ConfigError(
            f"site {site}: cannot read kubeconfig {path}: {why}",
            hint="fix sites[].kube.kubeconfig, or set $KUBECONFIG",
            context={"site": site},
        ) from None
    return reduce_kubeconfig(data if isinstance(data, dict) else {}, context, base=path.parent, site=site)


def reduce_kubeconfig(
    data: Mapping[str, Any], context: str | None, *, base: Path, site: str
) -> tuple[str, str]:
    """See :func:`site_kubeconfig`: ``data`` is the parsed kubeconfig, ``base`` its folder."""
    wanted = context or data.get("current-context")

    def named(section: str, key: str | None) -> dict[str, Any]:
        for item in data.get(section) or []:
            if isinstance(item, dict) and item.get("name") == key:
                return dict(item)
        raise ConfigError(
            f"site {site}: the kubeconfig has no {section[:-1]} {key!r}",
            hint="fix sites[].kube.context, or the kubeconfig",
            context={"site": site},
        )

    ctx = named("contexts", wanted)
    spec = ctx.get("context") or {}
    cluster, user = named("clusters", spec.get("cluster")), named("users", spec.get("user"))
    cluster["cluster"] = _inline(dict(cluster.get("cluster") or {}), ("certificate-authority",), base)
    user["user"] = _inline(dict(user.get("user") or {}), ("client-certificate", "client-key"), base)
    out: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": wanted,
        "preferences": {},
        "contexts": [ctx],
        "clusters": [cluster],
        "users": [user],
    }
    return yaml.safe_dump(out, sort_keys=False), str(wanted)


def _inline(section: dict[str, Any], keys: tuple[str, ...], base: Path) -> dict[str, Any]:
    for key in keys:
        if key in section and f"{key}-data" not in section:
            path = Path(os.path.expanduser(str(section.pop(key))))
            section[f"{key}-data"] = base64.b64encode(
                (path if path.is_absolute() else base / path).read_bytes()
            ).decode()
    return section
