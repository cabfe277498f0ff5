"""Bad configs are refused with one line naming key, value and what is allowed, before any
folder exists; every other config trains to a results.json."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from conftest import run_cli, train_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linlab.checks.preflight import problem
from linlab.train import config_dir

# (overrides, fragments the refusal must contain: the key, the value, what is allowed)
REFUSED = [
    (["optimizer.lr=0"], ["optimizer.lr=0", "> 0"]),
    (["optimizer.lr=-0.1"], ["optimizer.lr=-0.1", "> 0"]),
    (["optimizer.lr=nan"], ["optimizer.lr=nan", "finite number > 0"]),
    (["optimizer.lr=fast"], ["optimizer.lr='fast'", "number"]),
    (["data.batch_size=0"], ["data.batch_size=0", "size 700"]),
    (["data.batch_size=-4"], ["data.batch_size=-4", "1 to"]),
    (["data.batch_size=701"], ["data.batch_size=701", "training split's size 700"]),
    (["data.val_fraction=0.6", "data.test_fraction=0.5"], ["val_fraction", "1.1", "sum < 1"]),
    (["data.val_fraction=-0.2"], ["data.val_fraction=-0.2", "[0, 1]"]),
    (
        [
            "data.n_samples=2",
            "data.val_fraction=0.5",
            "data.test_fraction=0.4",
            "data.batch_size=1",
        ],
        ["val_fraction", "train 0"],
    ),
    (["data.n_samples=0"], ["data.n_samples=0", ">= 1"]),
    (["data.noise=-1"], ["data.noise=-1", ">= 0"]),
    (["data.noise=nan"], ["data.noise=nan", ">= 0"]),
    (["data.n_features=0"], ["data.n_features=0", ">= 1"]),
    (["data=line_1d", "data.n_features=3"], ["data.n_features=3", "line_1d"]),
    (["data=line_1d", "model.init={weight:[1,2]}"], ["model.init.weight=[1, 2]", "n_features=1"]),
    (["data=fixed", "data.x=[1,2,3]", "data.y=[2,4]"], ["data.y=[2, 4]", "rows (3)"]),
    (
        ["data=gausian"],
        [
            "data=gausian",
            "fixed, gaussian, gaussian_mixture, line_1d, separable",
            "did you mean data=gaussian",
        ],
    ),
    (["loss=msee"], ["loss=msee", "half_squared", "huber", "l1", "mse"]),
    (["data.nosie=0.5"], ["data.nosie", "did you mean data.noise?"]),
    (["trainer.max_epoch=3"], ["trainer.max_epoch", "did you mean trainer.max_epochs?"]),
    (["+data.nosie=0.5"], ["data.nosie", "did you mean data.noise?"]),
    (["trainer.max_epochs=0"], ["trainer.max_epochs=0", "an integer >= 1"]),
    (["trainer.max_epochs=1.5"], ["trainer.max_epochs=1.5", "integer"]),
    (["trainer.precision=17"], ["trainer.precision=17", "32-true", "bf16-mixed"]),
    (["trainer.precision=16-mixed"], ["trainer.precision='16-mixed'", "CUDA", "32-true"]),
    (["trainer.accelerator=quantum"], ["trainer.accelerator='quantum'", "cpu", "gpu"]),
    (["trainer.devices=two"], ["trainer.devices='two'", "auto"]),
    (["model.init=bogus"], ["model.init='bogus'", "zeros", "normal"]),
    (["model.n_features=3"], ["model.n_features=3", "data.n_features (5)"]),
    (["module.update=manual", "optimizer=adam"], ["module.update='manual'", "optimizer=sgd"]),
    (["seed=-1"], ["seed=-1", "2**32"]),
    (["ckpt_path=/no/such.ckpt"], ["ckpt_path='/no/such.ckpt'", "existing checkpoint file"]),
    (["model._target_=nowhere.Model"], ["model._target_=nowhere.Model", "'nowhere'"]),
    (["loss._target_=torch.nn.NoSuchLoss"], ["loss._target_=torch.nn.NoSuchLoss", "NoSuchLoss"]),
    (["trainer.plugins=[{_target_:linlab.Nope}]"], ["trainer.plugins[0]._target_=linlab.Nope"]),
    (["hydra.run.dir=/etc/hostname/run"], ["/etc/hostname", "not a folder", "hydra.run.dir"]),
    (["-m", "optimizer.lr=0.1,-1"], ["optimizer.lr=-1", "> 0"]),
    (["-m", "data=gaussian,line_1d", "data.n_features=5"], ["data.n_features=5", "line_1d"]),
]


@pytest.mark.parametrize(("overrides", "fragments"), REFUSED, ids=lambda v: " ".join(v))
def test_bad_config_refused_with_one_line(overrides, fragments):
    message = problem(overrides, config_dir())
    assert message is not None and "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["data.batch_size=700"],
        ["data=fixed"],
        ["data=line_1d", "model.init={weight:[-15],bias:-10}"],
        ["-m", "optimizer.lr=0.1,0.2", "data.batch_size=8,64"],
        ["--cfg", "job", "optimizer.lr=-1"],
    ],
)
def test_good_config_passes(overrides):
    assert problem(overrides, config_dir()) is None


CLI_REFUSED = [
    (["optimizer.lr=-1"], "optimizer.lr=-1"),
    (["data=gausian"], "available: fixed, gaussian, gaussian_mixture, line_1d, separable"),
    pytest.param(
        ["trainer.accelerator=gpu"],
        "trainer.accelerator=gpu is not available",
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here"),
    ),
    (["-m", "optimizer.lr=0.1,0.01", "data.batch_size=8,9999"], "data.batch_size=9999"),
]


@pytest.mark.parametrize(("args", "fragment"), CLI_REFUSED, ids=lambda v: str(v))
def test_cli_refuses_before_any_folder_exists(tmp_path, args, fragment):
    folders = [f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    proc = run_cli([*args, *folders], cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("linlab-train: error: "), proc.stderr
    assert fragment in lines[0]
    assert list(tmp_path.iterdir()) == [], "a refused command left files behind"


OVERRIDES = {
    "data": ["gaussian", "line_1d", "fixed"],
    "optimizer": ["sgd", "adam"],
    "optimizer.lr": ["0.05", "0", "-1", "nan", "1e6", "abc"],
    "data.batch_size": ["null", "1", "7", "0", "-3", "100000"],
    "data.n_samples": ["1", "3", "40", "0"],
    "data.noise": ["0", "0.3", "-1", "nan"],
    "data.n_features": ["1", "2", "0"],
    "data.val_fraction": ["0", "0.3", "0.5", "1.2"],
    "model.init": ["zeros", "normal", "bogus", "{weight:[1.0]}", "{weight:[1.0,2.0],bias:1}"],
    "model.bias": ["true", "false"],
    "loss": ["mse", "huber", "l1"],
    "module.gradient": ["autograd", "analytic", "magic"],
}


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in OVERRIDES.items()}))
def test_any_config_trains_or_is_refused_in_one_line(chosen):
    """Random overrides (1 epoch, small data): never an unhandled error."""
    groups = [f"{k}={v}" for k, v in chosen.items() if "." not in k]
    keys = [f"{k}={v}" for k, v in chosen.items() if "." in k]
    if "data.n_samples" not in chosen:
        keys.append("data.n_samples=30")
    overrides = [*groups, *keys, "trainer.max_epochs=1", "logger=none", "callbacks=none"]
    message = problem(overrides, config_dir())
    if message is not None:
        assert "\n" not in message and "=" in message
        return
    with tempfile.TemporaryDirectory() as folder:
        results = train_run(overrides, Path(folder) / "run")
        assert (Path(folder) / "run" / "results.json").is_file()
        assert results["status"] in ("ok", "diverged")


@pytest.mark.parametrize(
    ("single", "swept"),
    [
        (["optimizer.lr=-1"], ["optimizer.lr=0.1,-1"]),
        (
            ["optimizer._target_=torch.optim.RMSprop", "+optimizer.alpha=-1"],
            ["optimizer._target_=torch.optim.RMSprop", "+optimizer.alpha=0.9,-1"],
        ),
        (["loss=huber", "loss.delta=0"], ["loss=huber", "loss.delta=1.0,0", "seed=0,1"]),
    ],
)
def test_a_sweeps_later_bad_job_is_refused_as_its_single_run(single, swept):
    """The dry build keeps what a sweep's earlier jobs built: a stage that breaks in a later job
    is still built for it, and refused with its single run's line."""
    expected = problem(single, config_dir())
    assert expected is not None
    assert problem(["-m", "hydra/launcher=stacked", *swept], config_dir()) == expected


def test_a_sweeps_dry_build_builds_a_stage_again_only_where_its_inputs_change(tmp_path):
    """``optimizer.lr`` swept: the optimiser and the module around it (and the callbacks that
    read the module) are built per job; the model, loss and data once."""
    from collections import Counter

    from conftest import compose_config

    from linlab.checks import dry_build
    from linlab.checks.validation import check_values

    built: dict = {}
    for lr in (0.1, 0.2, 0.3):
        dry_build.check(check_values(compose_config([f"optimizer.lr={lr}"], tmp_path)), built)
    stages = Counter(group for group, _ in built)
    assert (stages["model"], stages["loss"], stages["data"]) == (1, 1, 1)
    assert (stages["optimizer"], stages["module"], stages["callbacks.theory"]) == (3, 3, 3)


@pytest.mark.parametrize("generator", ["line_1d", "gaussian", "gaussian_mixture", "separable"])
def test_a_deleted_n_samples_is_judged_on_the_generators_own_default(generator):
    """``~data.n_samples`` leaves the generator's default (``separable``: 200, not 1000): the
    batch-size bound is the training split of that many samples, as the run would draw."""
    import inspect

    from linlab.data import synthetic

    n = inspect.signature(getattr(synthetic, generator)).parameters["n_samples"].default
    base = [f"data={generator}", "~data.n_samples", "data.val_fraction=0", "data.test_fraction=0"]
    base += ["data.n_features=1"] if generator == "line_1d" else []
    if generator == "separable":
        base += ["model=logistic", "loss=logistic"]
    assert problem([*base, f"data.batch_size={n}"], config_dir()) is None
    message = problem([*base, f"data.batch_size={n + 1}"], config_dir())
    assert message is not None and f"training split's size {n}" in message, message
