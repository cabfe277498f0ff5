"""Run ``linlab-train`` on a real pseudo-terminal, as a person at a terminal would."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SRC = Path(__file__).parents[1] / "src"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WIDTH = 200  # columns of the terminal


@dataclass
class Session:
    """What the terminal received: (seconds since start, text without colour codes) pieces."""

    pieces: list[tuple[float, str]] = field(default_factory=list)
    returncode: int | None = None

    @property
    def text(self) -> str:
        return "".join(text for _, text in self.pieces)

    def lines(self) -> list[tuple[float, str]]:
        """Each line drawn (ended by ``\\r`` or ``\\n``), with when its end arrived."""
        drawn, pending = [], ""
        for at, text in self.pieces:
            *complete, pending = re.split(r"\r\n|\r|\n", pending + text)
            drawn += [(at, line) for line in complete]
        return drawn


def run_on_terminal(
    args: list[str],
    cwd: Path,
    keys_when: Callable[[str], bytes | None] | None = None,
    width: int = WIDTH,
) -> Session:
    """Start ``python -m linlab.train args`` on a new pty (its controlling terminal).

    ``keys_when(screen_so_far)`` may return bytes to type, e.g. ``b"\\x03"`` (Ctrl-C, which the
    terminal turns into SIGINT for the foreground process), once.
    """
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        os.chdir(cwd)
        os.environ.update(
            PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", TERM="xterm-256color", COLUMNS=str(width)
        )
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execv(sys.executable, [sys.executable, "-m", "linlab.train", *args])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, width, 0, 0))
    session, started, typed = Session(), time.monotonic(), False
    while True:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        text = ANSI.sub("", data.decode(errors="replace"))
        session.pieces.append((time.monotonic() - started, text))
        if keys_when is not None and not typed:
            keys = keys_when(session.text)
            if keys:
                os.write(fd, keys)
                typed = True
    _, status = os.waitpid(pid, 0)
    session.returncode = os.waitstatus_to_exitcode(status)
    os.close(fd)
    return session
