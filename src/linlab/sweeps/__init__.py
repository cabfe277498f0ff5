"""Sweeps: folder names, HParams, per-job progress, the report, and the stacked lr sweep."""
