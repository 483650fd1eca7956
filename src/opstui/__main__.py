from opstui.cli import entry

raise SystemExit(entry())
