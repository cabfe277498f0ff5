"""Say in plain words which command-line override is malformed and how to write it.

Hydra's override parser answers a typo with its grammar's jargon ("extraneous input '='
expecting {<EOF>, ':', BRACKET_OPEN, ...}"), and ``=1`` (no key) gets past it to crash later.
``check_syntax`` parses each override alone and names the first bad one with what is wrong:
no ``=``, no key, ``==``, an unclosed bracket or quote, a character outside ASCII.
``plain_words`` says the same of what Hydra refuses only while composing (several values
without ``-m``, ``+key`` for a key that exists).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from linlab.errors import ConfigError

HOW = (
    "write key=value (e.g. optimizer.lr=0.1), and quote lists and dicts for the shell: "
    "'model.init={weight:[1,2]}'"
)
_PAIRS = {"[": "]", "{": "}", "(": ")"}


def check_syntax(overrides: Sequence[str]) -> None:
    """Refuse the first override Hydra cannot parse, or one without a key."""
    parser = OverridesParser.create()
    for override in overrides:
        try:
            wrong = None if parser.parse_overrides([override])[0].key_or_group else "it has no key"
        except HydraException:
            wrong = _diagnosis(override)
        if wrong is not None:
            raise ConfigError(f"override {override!r} is malformed: {wrong}; {HOW}")


def _diagnosis(override: str) -> str:
    """What is wrong with an override Hydra's parser refused, in plain words."""
    key, equals, value = override.partition("=")
    odd = next((c for c in override if not c.isascii()), None)
    if odd is not None:
        where = "key" if odd in key else "value"
        advice = "keys are ASCII" if where == "key" else "quote the value: key='...'"
        return f"its {where} holds the non-ASCII character {odd!r} (U+{ord(odd):04X}); {advice}"
    if not equals:
        return "it has no '=' between key and value (a key alone is only allowed as ~key)"
    if value.startswith("="):
        return f"it has '==': use one '=', as in {key}={value.lstrip('=')}"
    if not key.strip():
        return "it has no key before '='"
    if " " in key.strip() or ".." in key:
        return f"the key {key!r} is not a dotted name (letters, digits, _ and single dots)"
    unclosed = _unbalanced(value)
    if unclosed:
        return unclosed
    empty = re.fullmatch(r"\s*(choice|range|interval|glob)\(\s*\)\s*", value)
    if empty:
        return f"an empty choice: {empty[1]}() needs values, as in {key}={empty[1]}(8,64,512)"
    return "Hydra's override grammar does not accept its value"


def _unbalanced(value: str) -> str | None:
    """An unclosed or stray bracket or quote in ``value``, named; None if they balance."""
    stack: list[str] = []
    quote = None
    for char in value:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _PAIRS:
            stack.append(char)
        elif char in _PAIRS.values() and (not stack or _PAIRS[stack.pop()] != char):
            return f"its value has a stray {char!r}"
    if quote:
        return f"its value opens a quote {quote} that is never closed"
    if stack:
        return f"its value opens {stack[-1]!r} without closing it with {_PAIRS[stack[-1]]!r}"
    return None


def plain_words(message: str) -> str | None:
    """Hydra's composition errors about how an override is written, said plainly."""
    quoted = message.split("'")[1] if message.count("'") >= 2 else ""
    if message.startswith("Ambiguous value for argument"):
        return (
            f"{quoted} gives several values: add -m to run one job per value, or write "
            f"{quoted.partition('=')[0]}=[a,b] for a list, '{quoted}' quoted for a string"
        )
    if "requires --multirun" in message:
        return (
            f"{quoted} is a sweep: add -m (and interval() also needs a search sweeper: "
            "hparams_search=... or hydra/sweeper=optuna)"
        )
    if message.startswith("Could not append to config. An item is already at"):
        return (
            f"+{quoted}=... adds a key, but {quoted} exists already: write {quoted}=... to "
            f"change it (or ++{quoted}=... to set it either way)"
        )
    return None
