"""Tests of ftsweep.losses."""
