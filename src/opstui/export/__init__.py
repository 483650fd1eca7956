"""`opstui export`: the engine without a UI, its snapshots published for Prometheus."""

from opstui.export.collector import ErrorCounter, SnapshotCollector
from opstui.export.server import ExportError, parse_listen, serve

__all__ = ["ErrorCounter", "ExportError", "SnapshotCollector", "parse_listen", "serve"]
