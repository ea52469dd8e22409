"""ftsweep."""
