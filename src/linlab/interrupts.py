"""Ctrl-C and SIGTERM stop a fit at the next minibatch boundary, on every DDP rank at once.

A chunk of minibatches can be a whole epoch (one ``training_step`` call), so waiting for
Lightning's between-batch checks can take an epoch, and a KeyboardInterrupt raised at an
arbitrary point can land inside an optimiser step or, under DDP, leave one rank in a collective
that the others never join. While :func:`stop_at_minibatch_boundary` is active, SIGINT and
SIGTERM only set :data:`STATE` ``.received``; the training step tests ``STATE.stop`` once per
minibatch (a bool test), ends the chunk there, counts and logs the steps it took, and then
raises :class:`Interrupted`. In one process a signal sets
``stop`` at once; under DDP ``linlab.ddp.average_gradients`` sums ``received`` over the ranks
with the gradients, so all ranks stop after the same minibatch. A second signal stops at once.

Outside a fit, :func:`on_ctrl_c` raises KeyboardInterrupt as Python does, and also records the
Ctrl-C in ``STATE.asked``: a KeyboardInterrupt raised while a finalizer runs (a ``__del__``
between two jobs of a sweep) is printed and dropped by Python, so the record is what makes the
next fit stop at its first minibatch boundary and the command still end with exit 130.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import torch.distributed as dist

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _State:
    asked = False  # Ctrl-C came outside a fit (see on_ctrl_c); stays set for the command
    received = False  # a signal arrived in this process
    stop = False  # all processes of the run agree to stop at the next minibatch


STATE = _State()


class Interrupted(KeyboardInterrupt):
    """Raised after the minibatches taken so far have been counted and logged."""


def on_ctrl_c(signum: int, frame: FrameType | None) -> None:
    """SIGINT outside a fit: Python's KeyboardInterrupt, recorded where it cannot be lost."""
    STATE.asked = True
    raise KeyboardInterrupt


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if STATE.received:
        raise KeyboardInterrupt  # asked twice: do not wait for the minibatch to end
    STATE.received = True
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        STATE.stop = True


def raise_if_stopping() -> None:
    """Raise :class:`Interrupted` if the run agreed to stop (called at the end of a chunk)."""
    if STATE.stop:
        raise Interrupted


@contextmanager
def stop_at_minibatch_boundary() -> Iterator[None]:
    """Route SIGINT and SIGTERM to :data:`STATE` for the duration (main thread only)."""
    STATE.received = STATE.stop = STATE.asked  # a Ctrl-C that a finalizer swallowed
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, _on_signal)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
