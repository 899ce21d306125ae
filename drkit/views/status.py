"""What ``standby status`` prints and the ``status`` flow's table artifact shows: one row per app,
read like ``kubectl get`` (upper-case headers, ``-`` for unknown, durations with their unit).

Also the small helpers every table of the CLI uses: :func:`duration_text` and :func:`text_table`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from drkit.domain.status import AppStatus


def duration_text(seconds: float | None) -> str:
    """Seconds as a person reads them: ``9.8s``, ``4m12s``, ``3h05m``, ``2d4h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def status_sites(statuses: Sequence[AppStatus]) -> list[str]:
    """The sites that get a mirroring column, in the order the apps name them."""
    sites: list[str] = []
    for st in statuses:
        sites += [s for s in st.mirroring_health if s not in sites]
    return sites


def status_rows(statuses: Sequence[AppStatus], *, unknown: str = "-") -> list[dict[str, str]]:
    """One row per app (column name -> cell): app, home, primary, observed primary, one mirroring
    column per site, lag, last backup (its run id and the site it was taken on), its age, the last
    operation, and how many warnings follow. An unknown cell reads ``unknown`` (``-`` as in
    ``kubectl get``; a Prefect table renders its cells as Markdown, where a lone ``-`` is a bullet)."""
    sites = status_sites(statuses)
    rows = []
    for st in statuses:
        backup = st.last_backup
        row = {
            "APP": st.app,
            "HOME": st.home,
            "PRIMARY": st.primary or "unknown",
            "OBSERVED": st.observed_primary or "none",
        }
        row |= {f"MIRRORING {s.upper()}": st.mirroring_health.get(s, "-") for s in sites}
        row |= {
            "LAG": duration_text(st.lag_seconds),
            "LAST BACKUP": f"{backup.run_id} ({backup.site})" if backup else "-",
            "BACKUP AGE": duration_text(st.backup_age_seconds),
            "LAST OPERATION": st.last_operation or "-",
            "WARNINGS": str(len(st.warnings)),
        }
        rows.append({column: unknown if cell == "-" else cell for column, cell in row.items()})
    return rows


def text_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None) -> str:
    """Rows as left-aligned columns separated by three spaces, headers first (``kubectl get``)."""
    if not rows:
        return ""
    names = list(columns or rows[0].keys())
    cells = [["-" if r.get(c) is None else str(r.get(c)) for c in names] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(names)]
    lines = ["   ".join(c.ljust(w) for c, w in zip(names, widths, strict=True)).rstrip()]
    lines += ["   ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def status_text(statuses: Sequence[AppStatus]) -> str:
    """``standby status``: the table, then each app's warnings (``warning: APP: ...``)."""
    lines = [text_table(status_rows(statuses))]
    lines += [f"warning: {st.app}: {w}" for st in statuses for w in st.warnings]
    return "\n".join(lines)
