"""The one exception a bad setting raises, from the command line and from Python alike, and
how its one line is worded."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A config that cannot run; its message is the one line shown to the user."""


def first_line(error: BaseException) -> str:
    """What an exception says, in one line (its type's name where it says nothing)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def did_you_mean(
    name: str, names: Iterable[str], prefix: str = "", before: str = "", after: str = " "
) -> str:
    """``did you mean <prefix><closest>?`` for a misspelt ``name``, where one of ``names`` is
    close to it (``difflib``), with ``before`` and ``after`` around it; "" where none is."""
    close = difflib.get_close_matches(name, list(names), n=1)
    return f"{before}did you mean {prefix}{close[0]}?{after}" if close else ""
