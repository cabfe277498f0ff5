"""Every family of bad config is refused in one line before anything runs; divergence and
files that cannot be written are results, never failed runs; ``_target_`` stays in bounds.

The bulk goes through ``linlab.checks.preflight.problem``, the function ``linlab-train``'s
``main()`` calls, in this process; a representative set runs the real CLI.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import train_run

import linlab
from linlab.checks.preflight import problem
from linlab.train import config_dir

SHARED = "trials of the search would share that folder"
# (overrides, fragments the one-line refusal must contain: the key, and what is allowed)
REFUSED = [
    # values inside lists
    (["data=fixed", "data.x=[1,nan,3,4]"], ["data.x=", "finite numbers"]),
    (["data=fixed", "data.x=[1,abc,3,4]"], ["data.x=", "finite numbers"]),
    (["data=fixed", "data.x=[[1,2],[3],[4,5],[6,7]]"], ["data.x=", "rows of as many"]),
    (["data=fixed", "data.y=[1,2,3,nan]"], ["data.y=", "finite numbers"]),
    (["data.weights=[1,2,3,4,nan]"], ["data.weights=", "5 finite numbers"]),
    (["data.weights=[1,2,3]"], ["data.weights=[1, 2, 3]", "5 finite numbers"]),
    (["model.init={weight:[a,1,1,1,1]}"], ["model.init.weight=", "5 numbers"]),
    (["optimizer=adam", "optimizer.betas=[0.9]"], ["optimizer.betas=[0.9]", "[0, 1)"]),
    (["optimizer=adam", "optimizer.betas=[0.9,0.99,0.5]"], ["optimizer.betas=", "two numbers"]),
    (["optimizer=adam", "optimizer.betas=[nan,0.99]"], ["optimizer.betas=[nan, 0.99]", "[0, 1)"]),
    # settings the README documents as needing others
    (["data.streaming=true"], ["data.streaming=true", "data.val_fraction=0"]),
    (
        [
            "data.streaming=true",
            "data.val_fraction=0",
            "data.test_fraction=0",
            "data.batch_size=null",
        ],
        ["data.streaming=true", "data.batch_size"],
    ),
    (["trainer=ddp_cpu", "data.batch_size=33"], ["data.batch_size=33", "multiple of 2"]),
    # optimiser and scheduler values torch rejects (or would take with a flipped sign)
    (["optimizer.momentum=-1"], ["optimizer.momentum=-1", ">= 0"]),
    (["optimizer.weight_decay=-1"], ["optimizer.weight_decay=-1", ">= 0"]),
    (["optimizer=adam", "+optimizer.eps=-1"], ["optimizer.eps=-1", ">= 0"]),
    (["optimizer=adam", "optimizer.betas=[0.9,1.5]"], ["optimizer.betas=[0.9, 1.5]", "[0, 1)"]),
    (["+optimizer.nesterov=true"], ["optimizer.nesterov", "momentum > 0"]),
    (["scheduler=step", "scheduler.step_size=0"], ["scheduler.step_size=0", "integer >= 1"]),
    (["scheduler=cosine", "scheduler.T_max=0"], ["scheduler.T_max=0", "integer >= 1"]),
    (["scheduler=step", "scheduler.gamma=-1"], ["scheduler.gamma=-1", "> 0"]),
    # Trainer values, and options manual optimisation cannot honour
    (["trainer.check_val_every_n_epoch=0"], ["trainer.check_val_every_n_epoch=0", ">= 1"]),
    (["+trainer.gradient_clip_val=1.0"], ["trainer.gradient_clip_val=1.0", "manual"]),
    (["+trainer.accumulate_grad_batches=2"], ["trainer.accumulate_grad_batches=2", "manual"]),
    (["+trainer.max_steps=-5"], ["trainer.max_steps=-5", "-1"]),
    # numbers beyond what the run can hold
    (["optimizer.lr=1e39"], ["optimizer.lr=1e+39", "float32", "3.403e+38"]),
    (["seed=4294967296"], ["seed=4294967296", "2**32"]),
    (["data.seed=-5"], ["data.seed=-5", "2**32"]),
    (["trainer.max_epochs=99999999999999999999"], ["trainer.max_epochs=", "64 bits"]),
    # figure settings
    (["callbacks.figures.resolution=0"], ["callbacks.figures.resolution=0", ">= 2"]),
    (["callbacks.figures.max_samples=0"], ["callbacks.figures.max_samples=0", ">= 1"]),
    (["callbacks.figures.surface_params=[q,r]"], ["callbacks.figures.surface_params", "w0"]),
    (["callbacks.figures.every_n_epochs=-1"], ["callbacks.figures.every_n_epochs=-1", ">= 0"]),
    # run folders that cannot be made, problems beyond the machine's memory
    (["hydra.run.dir=/proc/linlab_run"], ["/proc/linlab_run", "hydra.run.dir"]),
    (["hydra.run.dir=/sys/linlab_run"], ["/sys/linlab_run", "hydra.run.dir"]),
    (
        ["data.n_samples=100000000000", "data.n_features=1000"],
        ["data.n_samples=100000000000", "data.n_features=1000", "data.streaming=true"],
    ),
    # override syntax
    (["optimizer.lr==1"], ["'optimizer.lr==1'", "one '='", "key=value"]),
    (["optimizer.lr=[1"], ["'optimizer.lr=[1'", "'['", "key=value"]),
    (["optimizer.lr"], ["'optimizer.lr'", "no '='", "key=value"]),
    (["optimizer.lr=é"], ["'optimizer.lr=é'", "non-ASCII", "quote"]),
    (["=1"], ["'=1'", "no key", "key=value"]),
    (["optimizer.lr=0.1,0.2"], ["optimizer.lr=0.1,0.2", "-m"]),
    (["+data.seed=3"], ["+data.seed=...", "exists already", "data.seed=..."]),
    # _target_ within bounds, anywhere in the config
    (
        ["+callbacks.x._target_=builtins.open", "+callbacks.x.file=made.txt"],
        ["callbacks.x._target_=builtins.open", "standard library"],
    ),
    (["+callbacks.x._target_=shutil.copyfile"], ["callbacks.x._target_=shutil.copyfile"]),
    (
        ["+callbacks.x._target_=torch.serialization.os.system", "+callbacks.x.command=true"],
        ["callbacks.x._target_=torch.serialization.os.system", "posix.system"],
    ),
    (["+hydra.callbacks.x._target_=subprocess.run"], ["hydra.callbacks.x._target_"]),
    (["trainer.plugins=[{_target_:builtins.eval}]"], ["trainer.plugins[0]._target_"]),
    (["trainer.plugins=[ddp]"], ["trainer.plugins[0]='ddp'", "CheckpointIO", "ClusterEnvironment"]),
    (["trainer.plugins=[{_target_:builtins.dict}]"], ["trainer.plugins[0]='builtins.dict'"]),
    # Hydra's output folders must be paths
    (["hydra.run.dir="], ["hydra.run.dir=''", "folder path"]),
    (["hydra.run.dir=' '"], ["hydra.run.dir=' '", "folder path"]),
    ([f"hydra.run.dir={'x' * 300}"], ["hydra.run.dir=", "255 bytes"]),
    (["-m", "hydra.sweep.dir=", "seed=1,2"], ["hydra.sweep.dir=''", "folder path"]),
    (["-m", "hydra.sweep.subdir=", "seed=1,2"], ["hydra.sweep.subdir=''", "folder path"]),
    (["-m", "hydra.sweep.subdir=x", "seed=1,2"], ["subdir='x'", "jobs 0 and 1 would share"]),
    (["-m", "hydra.sweep.subdir=.", "seed=1"], ["subdir='.'", "inside hydra.sweep.dir"]),
    (["-m", "hydra.sweep.subdir=../j${hydra.job.num}", "seed=1"], ["subdir='../j0'", "inside"]),
    (["hydra.output_subdir=../cfg"], ["hydra.output_subdir='../cfg'", "inside", ".hydra"]),
    (["-m", "seed=1,2", "hydra.output_subdir=/tmp/cfg"], ["hydra.output_subdir='/tmp/cfg'"]),
    # a search's trials differ by their number only: values may repeat
    (["-m", "hparams_search=lr_batch_tpe", "hydra.sweep.subdir=same"], ["subdir='same'", SHARED]),
    (["-m", "hparams_search=lr_batch_tpe", "hydra.sweep.subdir=t${now:%Y}"], ["subdir='t", SHARED]),
    (["-m", "hparams_search=lr_batch_tpe", "hydra.sweep.subdir=.."], ["subdir='..'", "inside"]),
    (["-m", "hparams_search=lr_batch_tpe", "hydra.sweep.subdir="], ["subdir=''", "folder path"]),
    (
        ["-m", "hparams_search=lr_batch_tpe", "hydra.sweep.subdir=${hydra.job.override_dirname}"],
        ["hparams_search=lr_batch_tpe", SHARED],  # optuna_trial is kept out of that name
    ),
    # Lightning's script launcher would re-run the whole sweep in every process
    (
        ["-m", "trainer.strategy=ddp", "trainer.devices=2", "optimizer.lr=0.01,0.1"],
        ["trainer.strategy=ddp inside a multirun", "trainer=ddp_cpu"],
    ),
    (
        ["-m", "trainer.strategy=ddp_find_unused_parameters_true", "trainer.devices=2", "seed=1,2"],
        ["trainer.strategy=ddp_find_unused_parameters_true inside a multirun"],
    ),
    (
        [
            "-m",
            "trainer.strategy={_target_:lightning.pytorch.strategies.DDPStrategy}",
            "trainer.devices=2",
            "seed=1,2",
        ],
        ["trainer.strategy=lightning.pytorch.strategies.DDPStrategy inside a multirun"],
    ),
]


@pytest.mark.parametrize(("overrides", "fragments"), REFUSED, ids=lambda v: " ".join(v))
def test_refused_in_one_line(overrides, fragments):
    message = problem(overrides, config_dir())
    assert message is not None and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_every_strategy_name_of_lightnings_registry_is_allowed_and_no_other():
    """The names come from Lightning's own ``StrategyRegistry``, not a copied list."""
    from lightning.pytorch.strategies import StrategyRegistry

    names = StrategyRegistry.available_strategies()
    message = problem(["trainer.strategy=foo"], config_dir())
    assert message.startswith("trainer.strategy='foo' is not allowed; allowed: auto, "), message
    assert set(message.partition("allowed: ")[2].split(", ")) == {"auto", *names}
    StrategyRegistry.register("linlab_test_strategy", type(StrategyRegistry["ddp"]["strategy"]))
    try:
        assert "linlab_test_strategy" in problem(["trainer.strategy=foo"], config_dir())
    finally:
        StrategyRegistry.remove("linlab_test_strategy")


@pytest.mark.parametrize("node", ["data", "model", "loss", "optimizer", "module", "trainer"])
def test_deleting_a_node_every_run_builds_is_refused(node):
    """What ``linlab.train.build`` and ``build_trainer`` instantiate must be there."""
    for overrides in ([f"~{node}"], [f"~{node}._target_"]):
        message = problem(overrides, config_dir())
        assert message is not None and "\n" not in message, (overrides, message)
        assert message.startswith(f"{node} is missing or builds nothing"), message
        assert f"{node}=<option>" in message


def test_a_model_whose_output_the_loss_cannot_take_is_blamed_not_the_loss():
    """Identity outputs (N, d): the loss takes (N,) targets, so the model is to blame; a loss
    that cannot take even one prediction per sample is blamed itself."""
    message = problem(
        [
            "model._target_=torch.nn.Identity",
            "~model.n_features",
            "~model.bias",
            "~model.init",
            "~model.init_std",
        ],
        config_dir(),
    )
    assert message.startswith("model._target_=torch.nn.Identity does not fit the loss"), message
    assert "shape (2, 5)" in message and "(2,) or (2, 1)" in message
    own = problem(["loss._target_=torch.nn.CosineEmbeddingLoss"], config_dir())
    assert own is not None and own.startswith("loss"), own


def test_errors_of_your_own_code_are_one_line(tmp_path, monkeypatch):
    """A user's module that raises on import, a callback that raises on its arguments and a
    model that raises when built: each one line naming the key or group, no traceback."""
    (tmp_path / "usercode.py").write_text(
        "import lightning as L\n"
        "class Callback(L.Callback):\n"
        "    def __init__(self, k: int = 1):\n"
        "        if k < 0:\n"
        "            raise RuntimeError(f'k must be >= 0, got {k}')\n"
        "class Model:\n"
        "    def __init__(self, n_features):\n"
        "        raise KeyError('no such model')\n"
    )
    (tmp_path / "broken.py").write_text("raise RuntimeError('broken at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    refusals = {
        ("+callbacks.x._target_=broken.Thing",): "callbacks.x._target_=broken.Thing",
        ("+callbacks.x._target_=usercode.Callback", "+callbacks.x.k=-3"): "callbacks.x.k=-3",
        (
            "model._target_=usercode.Model",
            "~model.bias",
            "~model.init",
            "~model.init_std",
        ): "model: KeyError",
    }
    for overrides, fragment in refusals.items():
        message = problem(list(overrides), config_dir())
        assert message is not None and "\n" not in message and fragment in message, message


def test_interval_with_multirun_names_a_search_sweeper():
    message = problem(["-m", "optimizer.lr=interval(0,1)"], config_dir())
    assert "requires --multirun" not in message
    assert "optimizer.lr=interval(0,1)" in message and "hydra/sweeper=optuna" in message
    assert "range(" in message


def test_a_suggested_plus_key_works_and_no_other_is_suggested():
    """``+key`` is suggested only where the target takes the key, and then it passes."""
    wrong = problem(["loss.delta=1"], config_dir())
    assert "+loss.delta" not in wrong and "MSELoss takes no delta" in wrong
    offered = problem(["optimizer=adam", "optimizer.eps=1e-6"], config_dir())
    assert "+optimizer.eps=..." in offered
    assert problem(["optimizer=adam", "+optimizer.eps=1e-6"], config_dir()) is None


@pytest.mark.parametrize(
    "overrides",
    [
        ["seed=null"],
        ["-m", "seed=null,1"],
        ["optimizer.lr=1e30"],  # representable: it diverges, a result
        ["trainer.precision=64-true", "optimizer.lr=1e39"],
        ["model.init={weight:[nan,1,1,1,1]}"],  # NaN start: diverges, a result
        ["trainer=ddp_cpu", "data.batch_size=32"],
        ["-m", "trainer=ddp_cpu", "data.batch_size=32", "optimizer.lr=0.01,0.1"],
        ["trainer.strategy=ddp", "trainer.devices=2"],  # one run: Lightning's launcher is fine
        ["-m", "trainer.strategy=ddp_spawn", "trainer.devices=2", "seed=1,2"],
        ["-m", "trainer.strategy=ddp", "trainer.devices=1", "seed=1,2"],
        ["hydra.run.dir=./here"],
        ["-m", "hydra.sweep.subdir=job${hydra.job.num}", "seed=1,2"],
        ["-m", "hparams_search=lr_batch_tpe", "hydra.sweep.subdir=t${hydra:job.num}"],
        ["-m", "seed=1,2", "hydra.sweep.subdir=${hydra.job.id}"],  # the launcher sets job.id
        ["-m", "hparams_search=lr_batch_tpe", "hydra.sweep.subdir=t${hydra.job.id}"],
        ["-m", "seed=1,2", "hydra.output_subdir=saved"],
        ["+callbacks.x._target_=builtins.dict"],
    ],
    ids=" ".join,
)
def test_documented_values_pass(overrides):
    assert problem(overrides, config_dir()) is None


def test_a_run_and_a_sweep_do_not_share_a_folder(tmp_path):
    """A single run into a sweep folder (its ``multirun.yaml``), a sweep into a run's folder:
    refused before either is touched; a sweep goes on in its own folder."""
    sweep_dir, run_dir = tmp_path / "sweep", tmp_path / "run"
    sweep_dir.mkdir()
    (sweep_dir / "multirun.yaml").write_text("hydra: {}\n")
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "results.json").write_text('{"status": "ok"}')
    into_sweep = problem([f"hydra.run.dir={sweep_dir}"], config_dir())
    assert into_sweep.startswith(f"hydra.run.dir={sweep_dir} holds a sweep"), into_sweep
    into_run = problem(["-m", f"hydra.sweep.dir={run_dir}", "seed=1,2"], config_dir())
    assert into_run.startswith(f"hydra.sweep.dir={run_dir} holds a single run"), into_run
    assert problem(["-m", f"hydra.sweep.dir={sweep_dir}", "seed=1,2"], config_dir()) is None
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        ".hydra",
        "multirun.yaml",
        "results.json",
        "run",
        "sweep",
    ]


# One per family through the real CLI: (arguments, key the line names)
CLI_REFUSED = [
    (["data=fixed", "data.x=[1,nan,3,4]"], "data.x="),
    (["optimizer.momentum=-1"], "optimizer.momentum=-1"),
    (["=1"], "'=1'"),
    (["-m", "optimizer.lr=interval(0,1)"], "optimizer.lr=interval(0,1)"),
    (["trainer.strategy=foo"], "trainer.strategy='foo'"),
    (["~trainer"], "trainer is missing"),
    (["-m", "trainer.strategy=ddp", "trainer.devices=2", "optimizer.lr=0.01,0.1"], "multirun"),
    (["hydra.run.dir="], "hydra.run.dir=''"),
    (["-m", "hydra.sweep.subdir=", "seed=1,2"], "hydra.sweep.subdir=''"),
    (["-m", "hparams_search=lr_batch_tpe", "hydra.sweep.subdir=same"], "subdir='same'"),
    (["model._target_=torch.nn.Identity"], "model._target_=torch.nn.Identity"),
    (
        [
            "+callbacks.x._target_=builtins.open",
            "+callbacks.x.file=made.txt",
            "+callbacks.x.mode=w",
        ],
        "callbacks.x._target_=builtins.open",
    ),
]


# what the console script `linlab-train` (entry point linlab.cli:console) runs
CONSOLE_SCRIPT = (
    "import sys; from linlab.cli import console; sys.argv[0] = 'linlab-train'; console()"
)


def test_cli_refuses_every_family_before_anything_exists(tmp_path):
    """Exit 2, exactly one stderr line naming the key, no traceback, nothing made in the cwd
    (the commands run side by side, each in its own empty folder, as ``linlab-train``)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    running = []
    for index, (args, key) in enumerate(CLI_REFUSED):
        cwd = tmp_path / str(index)
        cwd.mkdir()
        command = [sys.executable, "-c", CONSOLE_SCRIPT, *args]
        proc = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        running.append((args, key, cwd, proc))
    for args, key, cwd, proc in running:
        _, stderr = proc.communicate(timeout=300)
        lines = stderr.strip().splitlines()
        assert proc.returncode == 2, (args, stderr)
        assert len(lines) == 1 and lines[0].startswith("linlab-train: error: "), (args, stderr)
        assert key in lines[0] and "Traceback" not in stderr, (args, stderr)
        assert list(cwd.iterdir()) == [], (args, list(cwd.iterdir()))


SMALL = ["data.n_samples=40", "trainer.max_epochs=2", "logger=none"]


def test_seed_null_runs_and_records_the_seed_it_drew(tmp_path):
    drawn = train_run([*SMALL, "seed=null", "callbacks=none"], tmp_path / "drawn")
    assert isinstance(drawn["seed"], int)
    again = train_run([*SMALL, f"seed={drawn['seed']}", "callbacks=none"], tmp_path / "again")
    assert again["weights"] == drawn["weights"] and again["true_weights"] == drawn["true_weights"]


@pytest.mark.parametrize(
    ("overrides", "step"),
    [
        (["experiment=minibatch_eye3", "model.init={weight:[nan,nan,nan],bias:nan}"], 0),
        ([*SMALL, "model.init={weight:[nan,1,1,1,1]}"], 0),
        ([*SMALL, "data.bias=1e30"], 0),  # the first loss overflows float32: non-finite
        ([*SMALL, "optimizer.lr=1e30"], 1),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_divergence_is_a_result_with_figures_or_warnings(tmp_path, overrides, step):
    """Status diverged at the step where a plain float32 computation first goes non-finite
    or past the limit; every figure is a PNG, or a warning names it."""
    results = train_run([*overrides, "logger=none", "callbacks.figures.enabled=true"], tmp_path)
    assert results["status"] == "diverged" and results["diverged_at_step"] == step
    first = results.get("last_finite_loss")
    assert step == 0 or (first is not None and math.isfinite(first))
    _figures_written_or_warned(tmp_path, results)


def test_full_disk_leaves_ok_and_warnings_never_an_empty_file(tmp_path):
    """On a 120 KiB tmpfs the figures do not all fit: status ok, a warning names each file
    not written, results.json is there and no file is empty; the CLI refuses the same
    file system cleanly (less than 1 MiB free) before making anything."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=120k", "tmpfs", str(disk)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        results = train_run(["data.n_samples=200", "trainer.max_epochs=2"], disk / "run")
        assert results["status"] == "ok" and results.get("warnings"), results.get("warnings")
        assert (disk / "run" / "results.json").is_file()
        assert [p for p in disk.rglob("*") if p.is_file() and p.stat().st_size == 0] == []
        assert not list(disk.rglob("*.partial"))
        _figures_written_or_warned(disk / "run", results)
        message = problem([f"hydra.run.dir={disk}/cli_run"], config_dir())
        assert message is not None and "KiB free" in message and "hydra.run.dir" in message
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _figures_written_or_warned(run_dir: Path, results: dict) -> None:
    warnings = " ".join(results.get("warnings", []))
    for name in ("fit", "loss_surface", "curves"):
        png = run_dir / "figures" / f"{name}.png"
        assert (png.is_file() and png.stat().st_size > 0) or f"{name}.png" in warnings, name


def test_load_run_refuses_to_unpickle_a_crafted_checkpoint(tmp_path):
    """A last.ckpt whose unpickling would call ``Path.touch`` is refused, and nothing runs."""
    marker = tmp_path / "ran.txt"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text(
        "model:\n  _target_: linlab.models.LinearRegression\n  n_features: 1\n"
    )
    (tmp_path / "checkpoints").mkdir()
    torch.save({"state_dict": {}, "payload": Payload()}, tmp_path / "checkpoints" / "last.ckpt")
    with pytest.raises(ValueError, match="weights_only=True"):
        linlab.load_run(tmp_path)
    assert not marker.exists()
