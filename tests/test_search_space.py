"""The Optuna sweeper's space speaks the official hydra-optuna-sweeper's spellings, and each
job receives exactly the value its trial recorded (checked against Hydra's own parser)."""

from __future__ import annotations

import sys

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import given
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, IntDistribution

from linlab.search.space import parse_space

PARSER = OverridesParser.create()


def job_value(dimension, value):
    """What Hydra reads from the override the job receives."""
    return PARSER.parse_overrides([dimension.override(value)])[0].value()


@given(
    st.one_of(
        st.text(),
        st.sampled_from(["true", "Null", "nan", "a\\b", "a\\", "it's", "${x}", "-3", "1e5"]),
    )
)
def test_a_string_choice_reaches_the_job_as_the_same_string(text):
    (dimension,) = parse_space(["key=choice(a,b)"])[1]
    assert job_value(dimension, text) == text


@pytest.mark.parametrize("value", [True, False, None, 0, -7, 2.5, 1e-300, float("inf")])
def test_other_choices_reach_the_job_with_their_type(value):
    (dimension,) = parse_space(["key=choice(a,b)"])[1]
    got = job_value(dimension, value)
    assert got == value and type(got) is type(value)


def test_choice_of_strings_that_look_like_other_values_stays_strings():
    (dimension,) = parse_space(["key=choice('true','Null','nan','a\\b')"])[1]
    assert dimension.distribution() == CategoricalDistribution(["true", "Null", "nan", "a\\b"])
    assert [job_value(dimension, v) for v in dimension.choices] == list(dimension.choices)


@pytest.mark.parametrize(
    ("argument", "distribution"),
    [
        ("n=int(interval(8,512))", IntDistribution(8, 512)),
        ("n=tag(log,int(interval(8,512)))", IntDistribution(8, 512, log=True)),
        ("n=int(tag(log,interval(8,512)))", IntDistribution(8, 512, log=True)),
        ("n=range(1,10,4)", IntDistribution(1, 9, step=4)),
        ("n=range(5,50,5)", IntDistribution(5, 50, step=5)),  # stop included, as there
        ("n=range(1,3)", IntDistribution(1, 3)),
        ("n=shuffle(range(1,4))", CategoricalDistribution([1, 2, 3])),  # Hydra's range
    ],
)
def test_official_plugin_spellings(argument, distribution):
    (dimension,) = parse_space([argument])[1]
    assert dimension.distribution() == distribution
    sampled = distribution.to_external_repr(distribution.to_internal_repr(dimension.corners()[-1]))
    assert job_value(dimension, sampled) == sampled
    assert type(job_value(dimension, sampled)) is int


def test_without_optuna_the_search_is_refused_with_its_pip_command(monkeypatch):
    from linlab.checks.preflight import problem
    from linlab.train import config_dir

    monkeypatch.setitem(sys.modules, "optuna", None)  # as if not installed
    message = problem(["-m", "hydra/sweeper=optuna", "optimizer.lr=0.1,0.2"], config_dir())
    assert message == (
        'hydra/sweeper=optuna needs Optuna, which is not installed: pip install -e ".[search]"'
    )
