"""What a run could not write is a warning, never a failed run.

A figure that cannot be drawn (all-NaN losses after a divergence), a PNG, a TensorBoard event
or a checkpoint that cannot be written (a full disk) does not change what training found:
``not_written`` logs one line naming the file and the reason, and keeps it for the run's
``results.json`` (``warnings``), which ``take`` hands over once.
"""

from __future__ import annotations

import logging

log = logging.getLogger("linlab")

_pending: list[str] = []


def not_written(what: str, error: BaseException) -> None:
    """Warn, in one line, that ``what`` was not written and why (once: a checkpoint that fails
    at every epoch end of a full disk is one warning)."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
    message = f"could not write {what}: {type(error).__name__}: {reason}".rstrip(": ")
    if message in _pending:
        return
    log.warning(message)
    _pending.append(message)


def take() -> list[str]:
    """The warnings since the last call (for one run's results.json)."""
    taken = list(_pending)
    _pending.clear()
    return taken
