"""DDP on 2 CPU processes: the single process's parameters, one writer, also inside a sweep."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import compose_config, run_cli

from linlab.choices import check_equal_shards
from linlab.ddp import HydraJobDDPStrategy, refuse_script_launcher_in_multirun

SMALL = ["data=gaussian", "data.n_samples=200", "trainer.max_epochs=8", "optimizer.lr=0.1"]
RANK0_FILES = {
    ".hydra/config.yaml",
    ".hydra/hydra.yaml",
    ".hydra/overrides.yaml",
    "checkpoints/last.ckpt",
    "figures/curves.png",
    "figures/fit.png",
    "figures/loss_surface.png",
    "hparams.yaml",
    "results.json",
    "train.log",
}


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def parameters(results: dict) -> torch.Tensor:
    return torch.tensor([*results["weights"], results["bias"]], dtype=torch.float64)


def test_ddp_cpu_full_batch_equals_single_process_and_only_rank0_writes(train_in, tmp_path):
    overrides = [*SMALL, "data.batch_size=null"]
    run_cli([*overrides, "trainer=ddp_cpu", f"hydra.run.dir={tmp_path}/ddp"], cwd=tmp_path)
    single = train_in(overrides, name="single")
    files = files_under(tmp_path / "ddp")
    events = {f for f in files if f.startswith("events.out.tfevents.")}
    writers = {name.split(".")[-2] for name in events}  # the writing process's id
    assert len(writers) == 1 and files - events == RANK0_FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "single"]
    results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert results["world_size"] == 2 and single["world_size"] == 1
    assert results["steps"] == single["steps"] == 8
    assert torch.allclose(parameters(results), parameters(single), atol=1e-6)
    assert results["train_loss"] == pytest.approx(single["train_loss"], rel=1e-5)


def test_ddp_cpu_inside_a_multirun_gives_one_folder_and_run_per_job(train_in, tmp_path):
    """Shuffled minibatches, both gradient modes: each job as its own single-process run."""
    overrides = [*SMALL, "data.batch_size=70"]
    sweep = ["module.gradient=autograd,analytic"]
    run_cli(
        ["-m", *overrides, *sweep, "trainer=ddp_cpu", f"hydra.sweep.dir={tmp_path}/sweep"],
        cwd=tmp_path,
    )
    results_files = sorted(tmp_path.rglob("results.json"))
    events = sorted(tmp_path.rglob("events.out.tfevents.*"))
    assert [p.parent.name for p in results_files] == ["gradient=analytic", "gradient=autograd"]
    job_events = sorted({p.parent for p in events} - {tmp_path / "sweep"})  # sweep: HParams summary
    assert job_events == [p.parent for p in results_files]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    jobs = [p for p in (tmp_path / "sweep").iterdir() if p.is_dir()]
    assert len(jobs) == 2
    for path in results_files:
        results = json.loads(path.read_text())
        gradient = path.parent.name.split("=")[1]
        single = train_in([*overrides, f"module.gradient={gradient}"], name=f"single_{gradient}")
        assert results["world_size"] == 2 and results["steps"] == single["steps"] == 16
        assert torch.allclose(parameters(results), parameters(single), atol=1e-6)


def test_minibatches_that_do_not_split_into_equal_shards_are_refused():
    check_equal_shards(n_train=140, batch_size=70, drop_last=False, ranks=2)
    check_equal_shards(n_train=141, batch_size=70, drop_last=True, ranks=2)
    with pytest.raises(ValueError, match=r"data.batch_size=35 .* 2 equal shards"):
        check_equal_shards(n_train=140, batch_size=35, drop_last=False, ranks=2)
    with pytest.raises(ValueError, match=r"last minibatch .* has 31 samples.* data.drop_last=true"):
        check_equal_shards(n_train=101, batch_size=70, drop_last=False, ranks=2)


def test_lightning_script_launcher_inside_a_multirun_is_refused(tmp_path):
    compose_config(["hydra.mode=MULTIRUN"], tmp_path)
    stock = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    with pytest.raises(ValueError, match="use trainer=ddp_cpu or trainer=ddp"):
        refuse_script_launcher_in_multirun(stock.strategy)
    ours = L.Trainer(accelerator="cpu", devices=2, strategy=HydraJobDDPStrategy(), logger=False)
    refuse_script_launcher_in_multirun(ours.strategy)
