"""Ends this process at an exact point of a stacked group's save, as a kill would there.

``LINLAB_KILL_AT=written:N`` exits (``os._exit(9)``: no handler, no flush, nothing more
written) before the N-th member checkpoint of the run becomes ``last.ckpt.next``;
``renamed:N`` before the N-th ``last.ckpt.next`` is renamed onto ``last.ckpt``
(``linlab.stacking.checkpoints.GroupSave``). Imported before linlab by the test's process.
"""

from __future__ import annotations

import os

_replace = os.replace
_kind, _, _at = os.environ["LINLAB_KILL_AT"].partition(":")
_seen = [0]


def _replace_or_die(source, target, *args, **kwargs):
    moving = str(target if _kind == "written" else source)
    if moving.endswith(".next"):
        _seen[0] += 1
        if _seen[0] == int(_at):
            os._exit(9)
    return _replace(source, target, *args, **kwargs)


os.replace = _replace_or_die
