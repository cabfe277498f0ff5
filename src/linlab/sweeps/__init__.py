"""Sweeps: folder names, composing jobs, HParams, the sweep console."""
