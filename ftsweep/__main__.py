"""``python -m ftsweep`` (what ``ray job submit`` runs on a cluster)."""

from ftsweep.cli import entry

entry()
