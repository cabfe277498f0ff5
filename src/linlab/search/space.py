"""A search space written in Hydra's override grammar, read into Optuna distributions.

    optimizer.lr='tag(log,interval(1e-4,1))'   # float in [1e-4, 1], sampled on a log scale
    data.batch_size=choice(8,64,512)           # one of the listed values
    optimizer=sgd,adam                         # a config group's options, like any list
    trainer.max_epochs='range(5,45,5)'         # 5, 10, ..., 45: integers on a grid
    data.batch_size='int(interval(8,512))'     # any integer in [8, 512] (or tag(int,...))

The official hydra-optuna-sweeper's spellings mean what they mean there: an interval with two
integer ends (``int(interval(..))``) is an integer interval, ``shuffle(range(..))`` a choice,
and ``range(start, stop, step)`` includes ``stop`` (Hydra's basic sweeper excludes it). Each
value reaches the job as exactly the value the study recorded:
strings stay strings (``'true'``, ``'null'``, ``'nan'``, ``'a\\b'``), quoted as Hydra reads them.

Everything else on the command line (or in ``hydra.sweeper.params``) is a fixed override that
every trial gets. :func:`sample_jobs` gives the jobs at the space's edges that the config
checks compose before the search runs. A bad space raises :class:`SearchSpaceError` with the
one line a user sees; nothing here imports Optuna until a distribution is asked for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    Glob,
    IntervalSweep,
    Override,
    RangeSweep,
)
from hydra.errors import HydraException

KNOWN_TAGS = {"log", "int"}
_PLAIN = re.compile(r"^[A-Za-z_][\w./-]*$", re.ASCII)
_QUOTE_ESCAPES = re.compile(r"(\\*)('|$)")
Choice = str | int | float | bool | None


class SearchSpaceError(ValueError):
    """A search space that cannot be searched; the message is one line."""


@dataclass(frozen=True)
class Dimension:
    """One searched key: a list of choices, or a numeric range ``[low, high]``."""

    key: str  # as written before ``=``, e.g. ``optimizer.lr`` or ``+optimizer.momentum``
    choices: tuple[Choice, ...] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def name(self) -> str:
        """The parameter's name in the study: the config key without ``+``/``~``."""
        return self.key.lstrip("+~")

    def distribution(self) -> Any:
        """The Optuna distribution Optuna's samplers draw this key from."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.choices is not None:
            return CategoricalDistribution(self.choices)
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=self.step or 1)
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def grid_values(self) -> list[Choice]:
        """Every value, for the grid sampler; an interval has no grid."""
        if self.choices is not None:
            return list(self.choices)
        if self.step is None and not self.integer:
            raise SearchSpaceError(
                f"{self.name}: sampler=grid needs listed values (choice(...), a,b,c or "
                "range(...)), not an interval"
            )
        step = self.step or 1
        count = math.floor((self.high - self.low) / step + 1e-9) + 1
        values = [self.low + i * step for i in range(count)]
        return [int(v) for v in values] if self.integer else values

    def corners(self) -> list[Choice]:
        """Values a sample job is composed with before the search runs: each choice, or both
        ends of a range (the config checks refuse a batch larger than the data, and so on)."""
        if self.choices is not None:
            return list(self.choices)
        ends = [self.low, self.high]
        return [int(v) for v in ends] if self.integer else ends

    def override(self, value: Choice) -> str:
        """``key=value`` in the override grammar, as the trial's job receives it."""
        return f"{self.key}={format_value(value)}"


def format_value(value: Choice) -> str:
    """A value in the override grammar that Hydra parses back to ``value``, type included;
    floats keep every digit (``repr``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return {"inf": "inf", "-inf": "-inf"}.get(repr(value), "nan")
    if isinstance(value, int | float):
        return repr(value)
    if _PLAIN.match(value) and _reads_back(value):
        return value
    return "'" + _QUOTE_ESCAPES.sub(_escape, value) + "'"


def _reads_back(text: str) -> bool:
    """Whether Hydra reads ``text`` unquoted as this very string (``true``, ``nan``: no)."""
    return OverridesParser.create().parse_overrides([f"k={text}"])[0].value() == text


def _escape(match: re.Match[str]) -> str:
    """Hydra's quoted strings: backslashes are doubled only before a quote or the closing
    quote, and the quote is escaped."""
    backslashes, quote = match.group(1), match.group(2)
    return backslashes * 2 + ("\\'" if quote else "")


def parse_space(arguments: Sequence[str]) -> tuple[list[str], list[Dimension]]:
    """Split overrides into the fixed ones and the searched dimensions (the last one of a key
    wins, so the command line overrides a preset's ``hydra.sweeper.params``)."""
    by_key: dict[str, str | Dimension] = {}
    for argument in arguments:
        override = _parse_one(argument)
        key = override.get_key_element()
        by_key.pop(key, None)
        if override.is_sweep_override():
            by_key[key] = dimension(override, argument)
        else:
            by_key[key] = argument
    fixed = [v for v in by_key.values() if isinstance(v, str)]
    return fixed, [v for v in by_key.values() if isinstance(v, Dimension)]


def sample_jobs(arguments: Sequence[str]) -> list[list[str]]:
    """Jobs the config checks compose before a search runs, whose values are only known as
    trials are asked: each choice of every searched key, and both ends of every range or
    interval (the other keys at their first value), with the fixed overrides."""
    fixed, dimensions = parse_space(arguments)
    corners = [d.corners() for d in dimensions]
    count = max((len(values) for values in corners), default=1)
    return [
        [
            *fixed,
            *(d.override(v[min(i, len(v) - 1)]) for d, v in zip(dimensions, corners, strict=True)),
        ]
        for i in range(count)
    ]


def dimension(override: Override, argument: str) -> Dimension:
    """The dimension of one sweep override, or a one-line refusal naming it."""
    key, sweep = override.get_key_element(), override.value()
    tags = set(getattr(sweep, "tags", set()))
    unknown = tags - KNOWN_TAGS
    if unknown:
        raise SearchSpaceError(
            f"{argument}: unknown tag {', '.join(sorted(unknown))}; allowed tags: log, int"
        )
    if isinstance(sweep, Glob):
        raise SearchSpaceError(f"{argument}: glob() is not searchable; list the options instead")
    if isinstance(sweep, ChoiceSweep):
        return _choice(key, argument, list(sweep.list), tags)
    if isinstance(sweep, RangeSweep) and sweep.shuffle:  # the official plugin: a choice
        # Hydra's range, as the official plugin reads a shuffled one; in order: resumable
        return _choice(key, argument, sorted(override.sweep_iterator()), tags)
    if isinstance(sweep, RangeSweep):
        return _range(key, argument, sweep, tags)
    if isinstance(sweep, IntervalSweep):
        if isinstance(sweep.start, int) and isinstance(sweep.end, int):
            tags = tags | {"int"}  # int(interval(..)): the official plugin's integer interval
        return _interval(key, argument, sweep.start, sweep.end, tags)
    raise SearchSpaceError(f"{argument}: not a search space")


def _choice(key: str, argument: str, values: list[Any], tags: set[str]) -> Dimension:
    if tags:
        raise SearchSpaceError(f"{argument}: tag(log/int) applies to interval(low, high) only")
    if not values:
        raise SearchSpaceError(f"{argument}: an empty choice; give one value or more")
    bad = [v for v in values if not isinstance(v, Choice)]
    if bad:
        raise SearchSpaceError(
            f"{argument}: choices must be numbers, strings, booleans or null (got {bad[0]!r})"
        )
    if len(set(map(repr, values))) != len(values):
        raise SearchSpaceError(f"{argument}: a value is listed twice")
    return Dimension(key, choices=tuple(values))


def _range(key: str, argument: str, sweep: RangeSweep, tags: set[str]) -> Dimension:
    """``range(start, stop, step)`` as the official plugin reads it: ``stop`` included when it
    lies on the grid (Hydra's basic sweeper excludes it)."""
    if tags:
        raise SearchSpaceError(f"{argument}: tag(log/int) applies to interval(low, high) only")
    values = _range_values(sweep)
    if not values:
        raise SearchSpaceError(f"{argument}: an empty range; it needs start <= stop and step > 0")
    if len(values) == 1:
        return Dimension(key, choices=(values[0],))
    return Dimension(key, low=values[0], high=values[-1], step=sweep.step, integer=_ints(sweep))


def _interval(key: str, argument: str, low: float, high: float, tags: set[str]) -> Dimension:
    if not low < high:
        raise SearchSpaceError(
            f"{argument}: interval(low, high) needs low < high (got {low:g}, {high:g})"
        )
    if "log" in tags and low <= 0:
        raise SearchSpaceError(
            f"{argument}: a log interval needs low > 0 (got {low:g}), "
            "e.g. tag(log,interval(1e-4,1))"
        )
    integer = "int" in tags
    if integer and math.ceil(low) > math.floor(high):
        raise SearchSpaceError(f"{argument}: no integer lies in [{low:g}, {high:g}]")
    if integer:
        low, high = math.ceil(low), math.floor(high)
    return Dimension(key, low=low, high=high, log="log" in tags, integer=integer)


def _range_values(sweep: RangeSweep) -> list[int | float]:
    """``start, start + step, ...`` up to ``stop`` included (Optuna's ``step`` grid)."""
    if sweep.step <= 0 or sweep.stop < sweep.start:
        return []
    count = math.floor((sweep.stop - sweep.start) / sweep.step + 1e-9) + 1
    values = [sweep.start + i * sweep.step for i in range(count)]
    return [int(v) for v in values] if _ints(sweep) else values


def _ints(sweep: RangeSweep) -> bool:
    return all(isinstance(v, int) for v in (sweep.start, sweep.stop, sweep.step))


def _parse_one(argument: str) -> Override:
    try:
        return OverridesParser.create().parse_overrides([argument])[0]
    except HydraException as error:
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 and not lines[1].startswith("See ") else lines[0]
        raise SearchSpaceError(f"{argument}: {detail.split(': ', 1)[-1]}") from None
