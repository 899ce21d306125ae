"""Where the drill report is kept (``<prefix>/drills/<app>/<drill-id>/``, ``report.json`` written
last) and its JSON. What people read (Markdown, HTML, the PNG timeline) is rendered by
:mod:`drkit.views.drill_report`, :mod:`drkit.views.drill_html` and :mod:`drkit.views.drill_chart`;
this module stores what they return.

With a key, ``report.json`` carries a MAC (``mac``, ``mac_key_id``: see
:mod:`drkit.domain.signed_state`) bound to its app and drill id, and a report read back (the
History of the next drill, ``standby drill report``) is used only when it passes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import ValidationError

from drkit.adapters.objectstore import ObjectStore
from drkit.domain import crypto
from drkit.domain.drill import DrillReport
from drkit.domain.errors import IntegrityError, StandbyError
from drkit.domain.layout import StoreLayout
from drkit.domain.signed_state import report_context, seal, unseal
from drkit.jobs.world import StoreRef, World
from drkit.views.drill_chart import TIMELINE_CHART, timeline_png
from drkit.views.drill_html import report_html
from drkit.views.drill_report import report_markdown

INTEGRITY = "integrity check failed"
"""How the line of a report refused by its integrity check starts (after its key)."""


def report_json(report: DrillReport, key: crypto.MasterKey | None = None) -> bytes:
    """The report as JSON (indent 2), ``schema_version`` its first field; with ``key``, its ``mac``
    and ``mac_key_id`` last."""
    if key is None:
        return report.model_dump_json(indent=2).encode("utf-8")
    sealed = seal(
        report.model_dump(mode="json"),
        key,
        what="drill-report",
        context=report_context(report.app, report.drill_id),
    )
    return json.dumps(sealed, indent=2, ensure_ascii=False).encode("utf-8")


# ------------------------------------------------------------------------------------------- store


def store_report(
    store: ObjectStore,
    layout: StoreLayout,
    report: DrillReport,
    history: Sequence[DrillReport],
    *,
    key: crypto.MasterKey | None = None,
) -> dict[str, str]:
    """Write the chart, Markdown, HTML and, last, JSON of ``report``; format (md, html, png, json) -> key.

    ``report.json`` is written last: its presence marks the report complete (:func:`load_reports`);
    with ``key`` it is signed.
    """
    png = timeline_png(report)
    keys = {
        "png": layout.drill_chart_key(report.app, report.drill_id, TIMELINE_CHART),
        "md": layout.drill_report_key(report.app, report.drill_id, "md"),
        "html": layout.drill_report_key(report.app, report.drill_id, "html"),
        "json": layout.drill_report_key(report.app, report.drill_id, "json"),
    }
    store.put(keys["png"], png, content_type="image/png")
    store.put(
        keys["md"],
        report_markdown(report, history).encode("utf-8"),
        content_type="text/markdown; charset=utf-8",
    )
    store.put(
        keys["html"],
        report_html(report, history, png).encode("utf-8"),
        content_type="text/html; charset=utf-8",
    )
    store.put(keys["json"], report_json(report, key), content_type="application/json")
    return keys


def load_reports(
    store: ObjectStore,
    layout: StoreLayout,
    app: str,
    *,
    skipped: list[str] | None = None,
    key: crypto.MasterKey | None = None,
    store_name: str = "",
) -> list[DrillReport]:
    """Every complete report (``report.json``) of ``app``, oldest first.

    A report that cannot be read or parsed, that names another app or drill than its folder, or
    (with ``key``) whose MAC does not pass for its folder's app and drill, is skipped; ``skipped``
    (when given) receives one line per skipped key saying why (``<key>: integrity check failed:
    drill report <id> of app <app> in the store of <store_name> ...`` for the last). Listing the
    store itself may still fail (the store's error says how).
    """
    found: list[DrillReport] = []
    for info in store.list(layout.drills_prefix(app)):
        drill_id = layout.drill_id_of_report_key(app, info.key)
        if drill_id is None:
            continue
        why = ""
        where = f" in the store of {store_name}" if store_name else ""
        try:
            body = unseal(
                json.loads(store.get(info.key)),
                key,
                what="drill-report",
                context=report_context(app, drill_id),
                name=f"drill report {drill_id} of app {app}{where}",
            )
            report = DrillReport.model_validate(body)
        except IntegrityError as error:
            why = error.message
        except StandbyError as error:
            why = error.message
        except (ValidationError, ValueError) as error:
            why = f"not a drill report: {str(error).splitlines()[0]}"
        else:
            if report.app != app or report.drill_id != drill_id:
                why = f"names app {report.app!r} and drill {report.drill_id!r}, not its folder's"
            else:
                found.append(report)
        if why and skipped is not None:
            skipped.append(f"{info.key}: {why}")
    return sorted(found, key=lambda r: (r.started_at, r.drill_id))


def store_reports(world: World, ref: StoreRef, app: str) -> list[DrillReport]:
    """The app's reports in one store, checked with the world's key; each report refused by its
    integrity check is warned about once (and left out)."""
    skipped: list[str] = []
    reports = load_reports(
        ref.store, ref.layout, app, key=world.state_key(), skipped=skipped, store_name=ref.name
    )
    for line in skipped:
        if INTEGRITY in line:
            world.warn(f"{line}; that report is not used")
    return reports


def drill_reports(world: World, app_name: str) -> list[DrillReport]:
    """The app's stored drill reports whose integrity check passes, oldest first."""
    app = world.config.app(app_name)
    out: dict[str, DrillReport] = {}
    for ref in world.stores():
        try:
            for report in store_reports(world, ref, app.name):
                out.setdefault(report.drill_id, report)
        except StandbyError:
            continue
    return sorted(out.values(), key=lambda r: r.started_at)
