"""``linlab-train --help`` and a mistyped group option answer without torch or Lightning."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "lightning", "lightning_fabric", "pytorch_lightning")
# what the console script `linlab-train` (entry point linlab.cli:console) runs
CONSOLE_SCRIPT = (
    "import sys; from linlab.cli import console; sys.argv[0] = 'linlab-train'; console()"
)


def imported_modules(args: list[str], tmp_path) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the console script under ``python -X importtime``; the top-level modules it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", CONSOLE_SCRIPT, *args],
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    timings = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert timings, proc.stderr  # -X importtime really reported
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in timings}
    return proc, names


def test_help_says_what_linlab_is_without_importing_torch(tmp_path):
    proc, modules = imported_modules(["--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "train a linear model by gradient descent" in proc.stdout
    assert "powered by Hydra" not in proc.stdout
    for group in ("data", "optimizer", "trainer", "experiment"):
        assert f"\n  {group} " in proc.stdout, group
    assert "hydra" in modules and not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert not list(tmp_path.iterdir()), "--help made no folder"


@pytest.mark.parametrize(
    ("argv", "typo"),
    [(["data=gausian"], "data=gausian"), (["-m", "optimizer=sdg", "seed=0,1"], "optimizer=sdg")],
)
def test_mistyped_group_option_is_refused_without_importing_torch(tmp_path, argv, typo):
    proc, modules = imported_modules(argv, tmp_path)
    assert proc.returncode == 2
    (line,) = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    group, _, _ = typo.partition("=")
    assert line.startswith(f"linlab-train: error: {typo} is not an option of {group};"), line
    assert f"did you mean {group}=" in line
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert not list(tmp_path.iterdir()), "nothing made"


# one per value family: a rule, a type read from linlab's source, a deleted node, a Hydra path
VALUE_REFUSALS = [
    (["optimizer.lr=-1"], "optimizer.lr=-1 is not allowed"),
    (["data.batch_size=701"], "data.batch_size=701 is not allowed"),
    (["model.bias=maybe"], "model.bias='maybe' is not allowed"),
    (["~trainer"], "trainer is missing"),
    (["hydra.run.dir="], "hydra.run.dir='' is not allowed"),
]


def test_value_refusals_import_neither_torch_nor_lightning(tmp_path):
    """The value layer is plain Python on the composed config: each refusal is one line,
    exit 2, nothing made, and no heavy module was loaded to say it."""
    for args, line_start in VALUE_REFUSALS:
        proc, modules = imported_modules(args, tmp_path)
        lines = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
        assert proc.returncode == 2 and len(lines) == 1, (args, lines)
        assert lines[0].startswith(f"linlab-train: error: {line_start}"), lines
        assert not modules & set(HEAVY), (args, sorted(modules & set(HEAVY)))
        assert not list(tmp_path.iterdir()), "nothing made"


@pytest.mark.parametrize(
    ("argv", "line_start"),
    [
        (["model._target_=torch.nn.Identity"], "model._target_=torch.nn.Identity does not fit"),
        (["optimizer=adam", "+optimizer.amsgrad=maybe"], "optimizer.amsgrad='maybe'"),
    ],
)
def test_dry_build_of_torch_groups_is_refused_before_lightning_loads(tmp_path, argv, line_start):
    proc, modules = imported_modules(argv, tmp_path)
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert proc.returncode == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"linlab-train: error: {line_start}"), lines
    assert "torch" in modules and not {"lightning", "lightning_fabric"} & modules
    assert not list(tmp_path.iterdir()), "nothing made"


def test_a_single_run_says_what_it_trains_and_where_first(tmp_path):
    """The first console line comes from the checks, before torch loads; it names the model,
    the data, the optimiser, the epochs, the accelerator and the run folder itself: the one
    Hydra then makes from the default ``outputs/${now:...}_<id>``. The console script ends the
    process without Python's teardown, and nothing is lost: the closing lines are in
    ``train.log`` and the TensorBoard events hold every epoch's loss."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from linlab import tags

    args = ["data.n_samples=80", "trainer.max_epochs=3", "callbacks=none"]
    proc = subprocess.run(
        [sys.executable, "-c", CONSOLE_SCRIPT, *args],
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (folder,) = (tmp_path / "outputs").iterdir()
    first, *rest = proc.stdout.splitlines()
    assert first == (
        "linlab-train: LinearRegression on gaussian data (80 x 5), SGD lr=0.01, 3 epochs, cpu "
        f"-> outputs/{folder.name}"
    ), first
    assert (folder / "results.json").is_file()
    assert (folder / "train.log").read_text().splitlines()[-len(rest) :] == rest
    events = EventAccumulator(str(folder))
    events.Reload()
    assert len(events.Scalars(tags.VAL_LOSS)) == 3, "one value per epoch"
