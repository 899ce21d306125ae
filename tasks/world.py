"""One World per run: how a flow gets its configuration, adapters and placement.

A flow calls :func:`world_for_run` once, with its ``config`` parameter (a YAML file's path or
``block:<name>``, see :mod:`blocks.config`): the configuration is resolved once (the blocks are
read once), the sites' clients are built when first used, the apps' placement is read once
(:meth:`~drkit.jobs.world.World.placement`), and the World's warnings go to the run's log. The
flow hands the World (or the part a task needs) to its tasks; no task takes a configuration path.

Tasks given a World declare ``cache_policy=NO_CACHE``: Prefect then neither hashes nor persists
their inputs (a World holds live clients and, for a configuration from blocks, credentials in
memory). A task runs in the flow's process (Prefect's thread runner, retries included), so it
shares the flow's World. A task run in another process (a background task worker, a Kubernetes
job, a retry sent elsewhere) cannot be handed live clients: give it ``world.config`` (the resolved
:class:`~drkit.domain.models.StandbyConfig` the World was built from) and the key *source*, and
let it call :func:`world_in_task` once at its start. It builds the same World again, without
resolving the blocks again. (Such a task's parameters hold the credentials of a configuration
from blocks: keep its result storage private.)
"""

from __future__ import annotations

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from blocks.config import resolve_config
from drkit.domain.models import StandbyConfig
from drkit.jobs.world import World, build_world
from tasks.backup import master_key


def world_for_run(config: str | None, *, key_source: str | None = None) -> World:
    """The run's World: ``config`` resolved once, warnings said on the run's log ("integrity check
    failed", "state is unauthenticated"), and the backup key of ``key_source`` (``env:VAR``,
    ``secret:BLOCK`` or ``none``) loaded when given, so the placement it reads is checked with it."""
    return world_in_task(resolve_config(config), key_source=key_source)


def world_in_task(config: StandbyConfig, *, key_source: str | None = None) -> World:
    """A World built from an already resolved configuration (a task in another process: see the
    module's docstring); otherwise as :func:`world_for_run`."""
    world = build_world(config)
    try:
        world.on_warning = get_run_logger().warning
    except MissingContextError:  # outside a run (a script): logger standby.security
        pass
    if key_source:
        world.use_key(master_key(key_source))
    return world
