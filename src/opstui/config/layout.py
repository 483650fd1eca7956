"""The views a dashboard shows: the config's own, or one automatic view of every probe."""

from __future__ import annotations

from opstui.config.models import Config, View

AUTO_VIEW_NAME = "All"
AUTO_COLUMNS = 2


def effective_views(config: Config) -> list[View]:
    """The config's views; without any, one view "All" listing every probe, 2 per row.

    The UI re-flows panels by terminal width, so the row split is only a default grouping.
    A config without probes has nothing to show and gets no views.
    """
    if config.views:
        return list(config.views)
    ids = [probe.id for probe in config.probes]
    if not ids:
        return []
    rows = [ids[start : start + AUTO_COLUMNS] for start in range(0, len(ids), AUTO_COLUMNS)]
    return [View(name=AUTO_VIEW_NAME, rows=rows)]
