"""``hydra/launcher=stacked``: a sweep's jobs trained as members of one process, each job's
files equal to what the basic launcher's separate process writes."""

from __future__ import annotations

import copy
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, compose_config, train_group_run
from omegaconf import OmegaConf
from sweeps import SRC, hparams_sessions
from test_performance import PLAIN_RUN, plain_minibatch_sgd, scalars

from linlab import interpolation_parses
from linlab.checks.preflight import job_configs
from linlab.data.synthetic import gaussian
from linlab.stacking.groups import make_groups
from linlab.train import build, config_dir

TESTS = Path(__file__).parent
TINY = ["data.n_samples=200", "trainer.max_epochs=3", "callbacks.figures.enabled=false"]
GRID = ["optimizer.lr=0.01,0.3", "seed=0,1", "optimizer.momentum=0.5"]
HOOK_LOG = ["+callbacks.hook_log._target_=faulty.HookLog"]  # <job>/hooks.txt
PRECISIONS = ["trainer.precision=32-true,64-true"]
STACKED = ["hydra/launcher=stacked"]


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{SRC}{os.pathsep}{TESTS}"}
    return subprocess.Popen(
        [sys.executable, "-m", "linlab.train", "-m", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=300)
    return proc.returncode, stdout, stderr


def results(folder: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in folder.glob("*/results.json")}


def resume_beside(whole: subprocess.Popen, args: list[str], killed_dir: Path) -> tuple[dict, dict]:
    """Resume the killed sweep in ``killed_dir`` (``ckpt_path=last``); once it and the
    uninterrupted sweep ``whole`` (in ``<killed_dir's parent>/whole``) ended, their results."""
    resumed = start([*args, "ckpt_path=last", f"hydra.sweep.dir={killed_dir}"], REPO)
    for proc in (whole, resumed):
        code, out, err = finish(proc)
        assert code == 0, (out, err)
    return results(killed_dir.parent / "whole"), results(killed_dir)


def job_places(stdout: str) -> dict[str, str]:
    """Each job line's ``[k/N]`` by job folder name."""
    return {job: place for place, job in re.findall(r"^\[(\d+/\d+)\] (\S+)  ", stdout, re.M)}


@pytest.fixture(scope="module")
def twin_sweeps(tmp_path_factory) -> dict[str, Path]:
    """The same 8-job grid with the basic and the stacked launcher, run side by side."""
    root = tmp_path_factory.mktemp("twins")
    args = [*GRID, *PRECISIONS, *TINY, *HOOK_LOG]
    procs = {
        name: start([*args, *extra, f"hydra.sweep.dir={root / name}"], REPO)
        for name, extra in (("basic", []), ("stacked", STACKED))
    }
    for name, proc in procs.items():
        code, out, err = finish(proc)
        assert code == 0, (name, out, err)
        (root / f"{name}.stdout").write_text(out)
    return {name: root / name for name in procs}


def test_stacked_members_equal_the_basic_launchers_jobs(twin_sweeps):
    basic, stacked = results(twin_sweeps["basic"]), results(twin_sweeps["stacked"])
    assert len(basic) == 8 and set(stacked) == set(basic)
    for job, alone in basic.items():
        member = stacked[job]
        assert member["stacked_members"] == 4, job  # 2 groups: one per precision
        tolerance = 1e-12 if alone["precision"] == "64-true" else 1e-6
        for key in ("status", "steps", "epochs", "lr", "seed", "precision"):
            assert member[key] == alone[key], (job, key)
        for key in ("weights", "bias", "train_loss", "val_loss", "test_loss", "param_distance"):
            torch.testing.assert_close(
                torch.tensor(member[key], dtype=torch.float64),
                torch.tensor(alone[key], dtype=torch.float64),
                rtol=tolerance,
                atol=tolerance,
                msg=f"{job} {key}",
            )
        expected, got = scalars(twin_sweeps["basic"] / job), scalars(twin_sweeps["stacked"] / job)
        assert set(got) == set(expected), job
        for tag, values in expected.items():
            assert [s for s, _ in got[tag]] == [s for s, _ in values], (job, tag)
            torch.testing.assert_close(
                torch.tensor([v for _, v in got[tag]]),
                torch.tensor([v for _, v in values]),
                rtol=1e-5,
                atol=1e-6,
            )
        assert (twin_sweeps["stacked"] / job / "checkpoints" / "last.ckpt").is_file()
        hooks = (twin_sweeps["basic"] / job / "hooks.txt").read_text()
        assert hooks.count("on_train_epoch_end") == 3, job
        assert (twin_sweeps["stacked"] / job / "hooks.txt").read_text() == hooks, job
    sessions = hparams_sessions(twin_sweeps["stacked"])
    expected_sessions = hparams_sessions(twin_sweeps["basic"])
    assert {run: s.keys() for run, s in sessions.items()} == {
        run: s.keys() for run, s in expected_sessions.items()
    }
    for run, session in sessions.items():
        assert {k: v for k, v in session.items() if not k.startswith("final/")} == {
            k: v for k, v in expected_sessions[run].items() if not k.startswith("final/")
        }


@pytest.mark.parametrize("launcher", ["basic", "stacked"])
def test_a_sweeps_job_lines_count_the_jobs_as_they_end(twin_sweeps, launcher):
    """``[k/N]``: k runs 1..N in the order the lines are printed (two groups of 4 members)."""
    stdout = (twin_sweeps[launcher].parent / f"{launcher}.stdout").read_text()
    lines = re.findall(r"^\[(\d+)/(\d+)\] (\S+)  ", stdout, flags=re.MULTILINE)
    assert [(int(k), int(n)) for k, n, _ in lines] == [(k, 8) for k in range(1, 9)], stdout
    assert {job for _, _, job in lines} == set(results(twin_sweeps[launcher]))


def test_a_members_checkpoint_resumes_as_a_single_run(twin_sweeps):
    """Member k's slice is a single run's checkpoint: plain data, its own parameters."""
    job = twin_sweeps["stacked"] / "lr=0.3,seed=1,precision=64-true"
    checkpoint = torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)
    member = results(twin_sweeps["stacked"])[job.name]
    assert set(checkpoint["state_dict"]) == {"model.w", "model.b"}
    torch.testing.assert_close(
        checkpoint["state_dict"]["model.w"], torch.tensor(member["weights"], dtype=torch.float64)
    )
    assert len(checkpoint["optimizer_states"][0]["param_groups"]) == 1
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == 0.3


def test_grouping_keeps_shapes_and_step_counts_apart():
    argv = [
        "-m",
        "optimizer.lr=0.01,0.1",
        "seed=0,1",
        "data.noise=0.1,0.2",
        "optimizer.momentum=0,0.9",
        "data.batch_size=8,16",
        "trainer.precision=32-true,64-true",
        "model.bias=true,false",
    ]
    configs = list(job_configs(argv, config_dir()))
    groups = make_groups(configs, max_members=4096)
    assert len(configs) == 128 and sorted(map(len, groups)) == [16] * 8
    for group in groups:
        for key in ("data.batch_size", "trainer.precision", "model.bias"):
            assert len({str(_select(configs[i], key)) for i in group}) == 1, key
        varied = {(_select(configs[i], "optimizer.lr"), configs[i].seed) for i in group}
        assert len(varied) == 4
    assert sorted(map(len, make_groups(configs, max_members=5))) == sorted([1, 5, 5, 5] * 8)


def _select(cfg, key):
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, key)


def test_diverging_and_failing_members_and_step_precise_divergence(tmp_path):
    folder, alone = tmp_path / "sweep", tmp_path / "alone"
    args = [*PLAIN_RUN[:-2], "seed=5", "trainer.max_epochs=3", "trainer.log_every_n_steps=1"]
    args += ["callbacks.last_checkpoint.min_interval_s=0", *HOOK_LOG]
    twin = start([*args, "optimizer.lr=30", f"hydra.sweep.dir={alone}"], REPO)
    args += [*STACKED, "optimizer.lr=0.01,0.02,30"]
    args += ["+callbacks.fail._target_=faulty.FailForLr", "+callbacks.fail.lr=0.02"]
    code, out, err = finish(start([*args, f"hydra.sweep.dir={folder}"], REPO))
    assert code == 1, (out, err)  # a failed job makes the sweep exit 1
    assert finish(twin)[0] == 0
    # the diverged member's last.ckpt is its basic-launcher twin's: its own epoch and step
    member, single = (
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)
        for d in (folder / "lr=30", alone / "job0")
    )
    assert (member["epoch"], member["global_step"]) == (single["epoch"], single["global_step"])
    assert member["global_step"] < 3 * 13  # stopped in its first epoch, unlike the group
    hooks = (alone / "job0" / "hooks.txt").read_text()  # its callbacks' calls: its single run's
    assert (folder / "lr=30" / "hooks.txt").read_text() == hooks
    for key, value in single["state_dict"].items():
        torch.testing.assert_close(member["state_dict"][key], value, rtol=1e-6, atol=1e-6)
    assert "1 of 3 jobs failed" in out
    done = results(folder)
    assert done["lr=0.01"]["status"] == "ok" and done["lr=0.01"]["epochs"] == 3
    assert done["lr=0.02"]["status"] == "failed"
    assert "failing on purpose at lr=0.02" in done["lr=0.02"]["message"]
    diverged = done["lr=30"]
    assert diverged["status"] == "diverged"
    data = gaussian(n_samples=203, n_features=3, seed=5)
    losses, params, _, _ = plain_minibatch_sgd(data.x.float(), data.y.float(), 30.0, 16, 3, 5)
    first = next(i for i, v in enumerate(losses) if not v <= 1e6 * losses[0])
    assert diverged["diverged_at_step"] == first
    assert diverged["last_finite_loss"] == pytest.approx(losses[first - 1], rel=1e-5)
    torch.testing.assert_close(
        torch.tensor([*diverged["weights"], diverged["bias"]]),
        torch.tensor(params[first - 1]),
        rtol=1e-5,
        atol=1e-6,
    )
    assert all(math.isfinite(v) for v in (diverged["train_loss"], *diverged["weights"]))


def test_groups_in_parallel_worker_processes_equal_single_runs(tmp_path, train_in):
    folder = tmp_path / "sweep"
    args = [*STACKED, "hydra.launcher.n_jobs=2", "optimizer.lr=0.01,0.1", "data.batch_size=16,32"]
    code, out, err = finish(start([*args, *TINY, f"hydra.sweep.dir={folder}"], REPO))
    assert code == 0, (out, err)
    done = results(folder)
    assert len(done) == 4
    for job in ("lr=0.01,batch_size=32", "lr=0.1,batch_size=16"):
        member = done[job]
        overrides = [f"optimizer.lr={member['lr']}", f"data.batch_size={member['batch_size']}"]
        alone = train_in([*overrides, *TINY], name=job)
        assert member["stacked_members"] == 2
        torch.testing.assert_close(
            torch.tensor(member["weights"]), torch.tensor(alone["weights"]), rtol=1e-6, atol=1e-6
        )


def test_killed_group_resumes_to_the_uninterrupted_result(tmp_path):
    """Member 0 diverges in its first epoch: the group resumes at the step of the others."""
    args = [*STACKED, "optimizer.lr=30,0.01,0.1", "seed=0,1", "data.n_samples=2000"]
    args += ["trainer.max_epochs=30", "callbacks.figures.enabled=false"]
    args += ["callbacks.last_checkpoint.min_interval_s=0"]
    whole = start([*args, f"hydra.sweep.dir={tmp_path / 'whole'}"], REPO)
    killed_dir = tmp_path / "killed"
    killed = start([*args, f"hydra.sweep.dir={killed_dir}"], REPO)
    checkpoints = [
        killed_dir / f"lr={lr},seed={s}" / "checkpoints" / "last.ckpt"
        for lr in ("30", "0.01", "0.1")
        for s in (0, 1)
    ]
    deadline = time.monotonic() + 120
    while not all(c.is_file() for c in checkpoints):
        assert killed.poll() is None and time.monotonic() < deadline, killed.communicate()
        time.sleep(0.05)
    time.sleep(0.3)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not list(killed_dir.glob("*/results.json")), "killed before the end"
    expected, got = resume_beside(whole, args, killed_dir)
    assert set(got) == set(expected)
    assert {job: m["status"] for job, m in got.items()} == {
        job: "diverged" if job.startswith("lr=30,") else "ok" for job in expected
    }
    for job, member in got.items():
        assert member["weights"] == expected[job]["weights"], job  # bit for bit
        assert member["steps"] == expected[job]["steps"]


def test_64_true_parameters_start_from_exact_float64_values(tmp_path):
    cfg = compose_config(
        ["trainer.precision=64-true", "model.init={weight:[0.1,0.2,0.3,0.4,0.5],bias:0.1}"],
        tmp_path,
    )
    _, module = build(cfg)
    assert module.model.w.dtype == torch.float64
    assert module.model.w.tolist() == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert module.model.b.item() == 0.1


def test_cached_composition_equals_hydras_for_every_job():
    """``JobComposer`` gives each job exactly the config Hydra composes for it."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from linlab.sweeps.compose import JobComposer

    search_path = create_automatic_config_search_path(None, None, str(config_dir()))
    GlobalHydra.instance().clear()
    hydra = Hydra.create_main_hydra2(task_name="train", config_search_path=search_path)
    overrides = ["optimizer=adam", "data.noise=0.3", "hydra/launcher=stacked"]
    master = hydra.compose_config("train", overrides, run_mode=RunMode.MULTIRUN)
    composer = JobComposer(hydra.config_loader, master)
    jobs = [
        ["optimizer=adam", f"optimizer.lr={lr}", f"seed={seed}", f"data.batch_size={batch}"]
        for lr in (0.01, 0.1)
        for seed in (0, 1)
        for batch in (8, 16)
    ] + [["optimizer=sgd", "optimizer.lr=0.5", "seed=3", "data.batch_size=8"]]
    try:
        for job in jobs:
            expected = hydra.config_loader.load_sweep_config(master, job)
            got = composer.compose(job)
            assert OmegaConf.to_container(got) == OmegaConf.to_container(expected), job
        assert len(composer.composed) == 2  # one Hydra composition per structure
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adam_members_with_a_scheduler_follow_their_separate_runs(tmp_path, train_in, optimizer):
    """Per-member betas, weight decay and learning rates in param groups, one cosine schedule
    stepping every group from its own base lr: each member equals its run alone."""
    tiny = ["data.n_samples=200", "trainer.max_epochs=3", "callbacks=none", "logger=none"]
    base = [f"optimizer={optimizer}", "scheduler=cosine", *tiny]
    members = [
        [*base, "optimizer.lr=0.05", "optimizer.betas=[0.8,0.99]", "seed=0"],
        [*base, "optimizer.lr=0.01", "optimizer.weight_decay=0.1", "seed=1"],
    ]
    stacked, _ = train_group_run(members, tmp_path)
    for k, overrides in enumerate(members):
        alone = train_in(overrides, name=f"alone{k}")
        assert stacked[k]["stacked_members"] == 2
        for key in ("weights", "bias", "val_loss"):
            torch.testing.assert_close(
                torch.tensor(stacked[k][key]), torch.tensor(alone[key]), rtol=1e-6, atol=1e-6
            )


def test_a_rerun_stacked_sweep_trains_only_what_did_not_finish(tmp_path):
    """The same stacked sweep into its folder again: finished members are kept, the failed
    one trains again (as with the basic launcher, ``linlab.folders``)."""
    folder = tmp_path / "sweep"
    args = [*STACKED, "optimizer.lr=0.01,0.02", *TINY, f"hydra.sweep.dir={folder}"]
    fail = ["+callbacks.fail._target_=faulty.FailOnceForLr", "+callbacks.fail.lr=0.02"]
    fail += [f"+callbacks.fail.marker={tmp_path / 'failed-once'}"]
    code, out, err = finish(start([*args, *fail], REPO))
    assert code == 1, (out, err)
    assert job_places(out) == {"lr=0.01": "1/2", "lr=0.02": "2/2"}, out
    first = results(folder)
    assert first["lr=0.01"]["status"] == "ok" and first["lr=0.02"]["status"] == "failed"
    kept = (folder / "lr=0.01" / "results.json").read_bytes()
    code, out, err = finish(start([*args, *fail], REPO))  # the same command
    assert code == 0, (out, err)
    assert job_places(out) == {"lr=0.01": "1/2", "lr=0.02": "2/2"}, out  # the kept one first
    again = results(folder)
    assert (folder / "lr=0.01" / "results.json").read_bytes() == kept  # not retrained
    assert again["lr=0.02"]["status"] == "ok"


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_bad_group_size_is_refused_before_anything_runs(value):
    from linlab.checks.preflight import problem

    argv = ["-m", "hydra/launcher=stacked", f"hydra.launcher.max_members={value}", "seed=0,1"]
    message = problem(argv, config_dir())
    assert message is not None and f"hydra.launcher.max_members={value} is not allowed" in message


def test_a_shared_hydra_node_reads_as_hydras_own_copy(tmp_path):
    """``make_current`` (no copy of the ``hydra`` node) stores what ``set_config`` stores:
    the same YAML, ``HydraConfig.get()`` and ``${hydra:...}`` answers, the node read-only."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from linlab.sweeps.current_job import make_current

    cfgs = []
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        for _ in range(2):
            cfg = compose("train", ["optimizer=adam", "seed=2"], return_hydra_config=True)
            with open_dict(cfg):
                cfg.hydra.runtime.output_dir = str(tmp_path)
                cfg.hydra.job.num = 7
            cfgs.append(cfg)
    HydraConfig.instance().set_config(cfgs[0])
    copied = HydraConfig.instance().cfg
    dirpath = OmegaConf.select(cfgs[0], "callbacks.last_checkpoint.dirpath")
    shared = make_current(cfgs[1])
    assert HydraConfig.instance().cfg is shared
    assert OmegaConf.to_yaml(shared) == OmegaConf.to_yaml(copied)
    assert HydraConfig.get().runtime.choices.optimizer == "adam"
    assert OmegaConf.select(cfgs[1], "callbacks.last_checkpoint.dirpath") == dirpath
    assert dirpath == f"{tmp_path}/checkpoints"
    assert shared.hydra is cfgs[1].hydra and OmegaConf.is_readonly(cfgs[1].hydra)
    assert shared.hydra._get_parent() is cfgs[1]


@pytest.mark.parametrize(
    ("lr", "more"),
    [
        ("0.25", []),
        ("${callbacks.figures.resolution}", []),  # resolves in the whole config only
        ("0.25", ["data.weights=[1,2.5,3,4,5]", "+model.extra={a: 1, b: [x]}"]),
        ("0.25", ["+module.later=???"]),  # selects None
        ("0.25", ["+data.other=${seed}"]),
        ("0.25", ["+trainer.plugins.0.extra=1"]),  # a key through a list
    ],
)
def test_a_sweeps_summary_reads_a_jobs_hparams_as_its_whole_config_gives_them(tmp_path, lr, more):
    """The summary reads only the values it needs unless one interpolates or is missing: the
    HParams equal those of ``OmegaConf.load`` of the whole saved config."""
    from hydra import compose, initialize_config_dir

    from linlab.results import save_config
    from linlab.sweeps.hparams import _job_session, hparams_from

    task = [f"optimizer.lr={lr}", "data.noise=0.5", "report.value=train_loss", *more]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", task, return_hydra_config=True)
    hydra_dir = tmp_path / ".hydra"
    save_config(
        OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), "config.yaml", hydra_dir
    )
    save_config(OmegaConf.masked_copy(cfg, "hydra"), "hydra.yaml", hydra_dir)
    whole = OmegaConf.load(hydra_dir / "config.yaml")
    choices = dict(cfg.hydra.runtime.choices)
    expected = hparams_from(whole, choices, task, "running")
    hparams, _ = _job_session(tmp_path)
    assert hparams == expected
    assert hparams["optimizer.lr"] == (0.25 if lr == "0.25" else 41.0)
    assert {override.lstrip("+").partition("=")[0] for override in more} <= set(hparams)


def test_a_groups_saved_configs_are_hydras_own_files_byte_for_byte(tmp_path):
    """``GroupConfigs`` (an entry's YAML reused where it equals the one saved before, at any
    depth) writes each member's three ``.hydra/`` files as Hydra's ``_save_config`` writes
    them, also where members' values are equal as numbers but not as YAML (1, 1.0, true),
    deep down, or where a mapping becomes empty, a list or a deeper mapping."""
    from hydra import compose, initialize_config_dir
    from hydra.core.utils import _save_config

    from linlab.results import GroupConfigs

    members = [["data.noise=1"], ["data.noise=1.0", "seed=3"], ["data.noise=true"]]
    members += [["optimizer.lr=0.5", "hydra.job.name=other", "trainer.max_epochs=1"]]
    deep = "callbacks.last_checkpoint.min_interval_s"  # three keys down: 2 and 2.0 dump apart
    members += [[f"{deep}=2", "+hydra.job.env_set.A=1"], [f"{deep}=2.0", "data.weights=[1,2]"]]
    members += [["callbacks=none", "+hydra.job.env_set.A=true"], ["+data.extra={a: {b: 1}}"]]
    saved = GroupConfigs()
    for k, overrides in enumerate(members):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("train", overrides, return_hydra_config=True)
        files = {
            "config.yaml": OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]),
            "hydra.yaml": OmegaConf.masked_copy(cfg, "hydra"),
            "overrides.yaml": cfg.hydra.overrides.task,
        }
        for name, node in files.items():
            _save_config(node, name, tmp_path / f"hydra{k}")
            saved.save(node, name, tmp_path / f"group{k}")
            expected = (tmp_path / f"hydra{k}" / name).read_bytes()
            assert (tmp_path / f"group{k}" / name).read_bytes() == expected, (k, name)


def test_members_share_one_dataset_exactly_when_their_resolved_data_settings_agree(tmp_path):
    """``shared_data`` (plain settings read from the nodes, a list setting through
    ``to_container``) agrees with comparing ``to_container(resolve=True)``."""
    from linlab.train import shared_data

    members = [[], ["optimizer.lr=0.5"], ["seed=1"], ["data.seed=0"], ["data.noise=0.10"]]
    members += [["data.noise=0.2"], ["data.weights=[1,2,3,4,5]"], ["data.weights=[1,2,3,4,6]"]]
    cfgs = [compose_config(overrides, tmp_path) for overrides in members]
    answers = set()
    for a in cfgs:
        for b in cfgs:
            data = [OmegaConf.to_container(cfg.data, resolve=True) for cfg in (a, b)]
            answers.add(shared_data([a, b]))
            assert shared_data([a, b]) == (data[0] == data[1])
    assert answers == {True, False}


def test_a_sweeps_summary_takes_what_the_launcher_wrote_unless_it_changed(
    tmp_path,
):
    """The summary takes a job's group choices, overrides and config values from the files the
    stacked launcher wrote in this process (``remember_saved_job``), and reads the files when
    they changed since: both give the HParams that reading the files gives."""
    from hydra import compose, initialize_config_dir
    from hydra.core.utils import _save_config

    from linlab.results import GroupConfigs
    from linlab.sweeps.hparams import _job_session, hparams_from, remember_saved_job

    def composed(overrides):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("train", overrides, return_hydra_config=True)
        task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        return task, OmegaConf.masked_copy(cfg, "hydra")

    def from_files(overrides):
        saved = OmegaConf.load(tmp_path / ".hydra" / "hydra.yaml").hydra
        whole = OmegaConf.load(tmp_path / ".hydra" / "config.yaml")
        assert OmegaConf.to_container(saved.overrides.task) == overrides  # as written
        return hparams_from(whole, saved.runtime.choices, overrides, "running")

    first = ["optimizer.lr=0.25", "data.noise=0.5", "+model.extra=${seed}"]
    saved, hydra_dir = GroupConfigs(), tmp_path / ".hydra"

    def written(overrides):
        task, hydra_node = composed(overrides)
        return saved.save(hydra_node, "hydra.yaml", hydra_dir), saved.save(
            task, "config.yaml", hydra_dir
        )

    for overrides in (first, first[:2]):  # the whole config read, and the values kept
        remember_saved_job(hydra_dir, *written(overrides))
        assert _job_session(tmp_path)[0] == from_files(overrides)
    remember_saved_job(hydra_dir, *written(first[:2]))
    second = ["optimizer=adam", "optimizer.lr=0.5", "+model.extra=1"]
    task, hydra_node = composed(second)  # another launcher writes the job again
    _save_config(hydra_node, "hydra.yaml", hydra_dir)
    _save_config(task, "config.yaml", hydra_dir)
    hparams = _job_session(tmp_path)[0]
    assert hparams == from_files(second)
    assert hparams["optimizer"] == "adam" and hparams["model.extra"] == 1.0


def test_a_members_task_config_holds_its_jobs_nodes_and_reads_as_run_jobs_copy(tmp_path):
    """``task_view`` (no copy of the job's nodes) gives the task what ``run_job``'s masked copy
    gives it: the same YAML and resolved values; a top-level value the task sets (a drawn
    seed) stays out of the job's config, whose nodes keep it as their parent."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from linlab.sweeps.current_job import make_current, task_view

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", ["optimizer=adam", "seed=null"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path)
    make_current(cfg)
    job_yaml = OmegaConf.to_yaml(cfg)
    copied = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    view = task_view(cfg)
    assert OmegaConf.to_yaml(view) == OmegaConf.to_yaml(copied)
    assert OmegaConf.to_container(view, resolve=True) == OmegaConf.to_container(
        copied, resolve=True
    )
    assert view.callbacks.last_checkpoint.dirpath == f"{tmp_path}/checkpoints"
    assert view.model is cfg.model and view.optimizer is cfg.optimizer  # held, not copied
    assert cfg.model._get_parent() is cfg
    view.seed = 5
    assert cfg.seed is None and OmegaConf.to_yaml(cfg) == job_yaml


def test_a_groups_events_thread_writes_every_members_scalars_in_batches(tmp_path):
    """More events than the writer lets wait (``LIMIT``), through one thread, read back by
    linlab's reader (which checks each record's CRC-32C): each member's own values and steps,
    all of them on disk after a flush, before the files are closed."""
    from linlab.logger import TensorBoardLogger
    from linlab.scalars import read_scalars
    from linlab.stacking.event_writer import LIMIT, one_writer_thread

    members, rows = 3, LIMIT // 3 + 100
    loggers = [TensorBoardLogger(save_dir=str(tmp_path / f"m{k}")) for k in range(members)]
    one_writer_thread(loggers)
    for step in range(rows):
        for k, logger in enumerate(loggers):
            logger.log_metrics({"loss/train": k + step / rows}, step=step)
    loggers[1].experiment.flush()
    expected = {
        k: torch.tensor([k + step / rows for step in range(rows)], dtype=torch.float32).tolist()
        for k in range(members)
    }
    flushed = read_scalars(loggers[1].log_dir)["loss/train"]
    assert list(flushed) == list(range(rows)) and list(flushed.values()) == expected[1]
    for logger in loggers:
        logger.finalize("success")
    for k, logger in enumerate(loggers):
        curve = read_scalars(logger.log_dir)["loss/train"]
        assert list(curve) == list(range(rows)) and list(curve.values()) == expected[k], k


def test_a_members_checkpoint_holds_its_own_entries_of_the_groups_state_dict():
    """Member 1's entries are not member 10's or 11's (``model.members.1.`` is a prefix of
    neither); each member's state dict is its entries, renamed, in the group's order."""
    from linlab.stacking.checkpoints import member_checkpoint, member_state_dicts

    n = 12
    state_dict = {f"model.members.{k}.{name}": torch.tensor([k]) for k in range(n) for name in "wb"}
    full = {"epoch": 2, "global_step": 9, "state_dict": state_dict}
    full["linlab_members"] = [{"stopped_step": None} for _ in range(n)]
    split = member_state_dicts(state_dict, n)
    for k in (1, 10, 11):
        member = member_checkpoint(full, k, n, split[k])
        assert list(member["state_dict"]) == ["model.w", "model.b"]
        assert all(int(v) == k for v in member["state_dict"].values())
        assert (member["epoch"], member["global_step"]) == (2, 9)


@pytest.mark.parametrize("model", ["linear", "linear_no_bias", "softmax"])
def test_stacked_members_flat_parameters_are_each_members_own(model):
    from linlab.models import LinearRegression, SoftmaxRegression
    from linlab.params import flat_values
    from linlab.stacking.models import StackedModels

    make = {
        "linear": lambda: LinearRegression(3),
        "linear_no_bias": lambda: LinearRegression(3, bias=False),
        "softmax": lambda: SoftmaxRegression(3, 4),
    }[model]
    members = [make() for _ in range(5)]
    expected = torch.stack([flat_values(m) for m in members])
    assert torch.equal(StackedModels(members).flat_values(), expected)


def test_a_groups_event_records_are_tensorboards_own_framing():
    """Length, checksums and data as TensorBoard's ``RecordWriter`` frames them, for records
    empty, short, and longer than the checksum table (4096 bytes)."""
    import io

    from tensorboard.summary.writer.record_writer import RecordWriter

    from linlab.stacking.event_writer import tfrecords

    generator = torch.Generator().manual_seed(0)
    sizes = [0, 1, 8, 200, 4095, 4096, 4097, 9000]
    datas = [bytes(torch.randint(0, 256, (n,), generator=generator).tolist()) for n in sizes]
    for data, framed in zip(datas, tfrecords(datas), strict=True):
        expected = io.BytesIO()
        RecordWriter(expected).write(data)
        assert framed == expected.getvalue(), len(data)


def test_a_threadless_writers_events_file_is_what_tensorboards_own_writer_writes(tmp_path):
    """``ThreadlessSummaryWriter`` with a ``DirectWriter`` (a run's HParams session), with a
    group's thread, and made after that thread stopped: the same records in the same order as
    torch's ``SummaryWriter`` (its own thread), in a file named as TensorBoard names it."""
    import functools
    import re

    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from torch.utils.tensorboard import SummaryWriter

    from linlab.stacking.event_writer import (
        DirectWriter,
        GroupWriterThread,
        ThreadlessSummaryWriter,
    )

    thread = GroupWriterThread(flush_secs=60.0)
    thread.start()
    writers = {
        "own": SummaryWriter,
        "direct": functools.partial(ThreadlessSummaryWriter, DirectWriter),
        "group": functools.partial(ThreadlessSummaryWriter, thread.member_writer),
    }

    def write(name, make):
        with make(log_dir=str(tmp_path / name)) as writer:
            writer.add_scalar("loss", 1.5, 3)
            writer.add_text("results", "| key | value |", 4)
            writer.flush()
            writer.add_scalar("loss", 0.25, 5)

    for name, make in writers.items():
        write(name, make)
    assert not thread.is_alive()  # its only writer closed: one made now is TensorBoard's own
    write("reopened", writers["group"])
    records = {}
    for name in (*writers, "reopened"):
        (path,) = (tmp_path / name).iterdir()
        assert re.fullmatch(
            rf"events\.out\.tfevents\.\d{{10}}\.{re.escape(socket.gethostname())}\.\d+\.\d+",
            path.name,
        )
        events = list(EventFileLoader(str(path)).Load())
        for event in events:
            event.wall_time = 0
        records[name] = [event.SerializeToString() for event in events]
    assert len(records["own"]) == 4
    assert len(records) == 4 and all(got == records["own"] for got in records.values())


def test_a_member_closing_its_events_file_leaves_the_groups_periodic_flush_working(tmp_path):
    """A member's writer closes its file (its logger finalized) while the group's thread still
    counts that file among those written since its last flush: the thread's flush, every
    ``flush_secs``, passes the closed file by, and the other members go on writing (it raised
    "File already closed" to every member once, failing a whole group)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    from linlab.stacking.event_writer import GroupWriterThread, ThreadlessSummaryWriter

    thread = GroupWriterThread(flush_secs=0.5)
    thread.start()
    first, second = (
        ThreadlessSummaryWriter(thread.member_writer, log_dir=str(tmp_path / name))
        for name in ("first", "second")
    )
    first.add_scalar("loss", 1.0, 1)
    second.add_scalar("loss", 2.0, 1)
    first.close()  # both files written, neither flushed by the thread yet
    time.sleep(1.2)  # the thread's periodic flush has come
    second.add_scalar("loss", 3.0, 2)
    second.close()
    assert thread.exception is None and not thread.is_alive()
    for name, expected in (("first", [1.0]), ("second", [2.0, 3.0])):
        (path,) = (tmp_path / name).iterdir()
        events = [e for e in EventFileLoader(str(path)).Load() if e.summary.value]
        assert [e.summary.value[0].tensor.float_val[0] for e in events] == expected, name


def test_a_members_loggers_and_callbacks_are_what_hydras_instantiate_builds(tmp_path):
    """``instantiate_node`` (plain values where Hydra would pass plain values) builds each
    logger and callback node of a member as Hydra's ``instantiate`` does: same class, same
    attributes (a list argument still goes through Hydra, as its ``ListConfig``)."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from omegaconf import open_dict

    from linlab.sweeps.current_job import make_current
    from linlab.train import instantiate_node

    overrides = ["callbacks.figures.surface_params=[w0,w1]", "callbacks.theory.enabled=false"]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path / "job")
    make_current(cfg)
    nodes = [(node, {}) for node in cfg.callbacks.values()]
    nodes += [(node, {"save_dir": str(tmp_path)}) for node in cfg.logger.values()]
    assert len(nodes) >= 6
    for node, extra in nodes:
        built, expected = instantiate_node(node, **extra), instantiate(node, **extra)
        assert type(built) is type(expected), node._target_
        assert attributes(built) == attributes(expected), node._target_
    checkpoints = instantiate_node(cfg.callbacks.last_checkpoint)
    assert checkpoints.dirpath == str(tmp_path / "job" / "checkpoints")
    for name in ("data", "model", "loss", "optimizer"):  # a run's own nodes
        torch.manual_seed(0)
        built = instantiate_node(cfg[name])
        torch.manual_seed(0)
        expected = instantiate(cfg[name])
        if name == "optimizer":  # Hydra's partial
            assert (built.func, built.args, built.keywords) == (
                expected.func,
                expected.args,
                expected.keywords,
            )
            assert built.keywords == {"lr": 0.01, **SGD_DEFAULTS}
            continue
        assert type(built) is type(expected) and attributes(built) == attributes(expected), name
    # another member of the group, with the trees OmegaConf parsed for the first member's
    # interpolations (``linlab.interpolation_parses``): its own values
    interpolation_parses.remember()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        other = compose("train", [*overrides, "seed=7"], return_hydra_config=True)
    with open_dict(other):
        other.hydra.runtime.output_dir = str(tmp_path / "other")
    make_current(other)
    for node, extra in nodes:
        instantiate_node(node, **extra)
    reused = interpolation_parses._parse.cache_info().hits
    for group in ("callbacks", "logger"):
        for name, node in other[group].items():
            extra = {"save_dir": str(tmp_path / "other")} if group == "logger" else {}
            built, expected = instantiate_node(node, **extra), instantiate(node, **extra)
            assert type(built) is type(expected), name
            assert attributes(built) == attributes(expected), name
    checkpoints = instantiate_node(other.callbacks.last_checkpoint)
    assert checkpoints.dirpath == str(tmp_path / "other" / "checkpoints")
    assert interpolation_parses._parse.cache_info().hits > reused


SGD_DEFAULTS = {"momentum": 0.0, "weight_decay": 0.0}


CLOCK_READINGS = ("saved_at", "event_start")  # time.monotonic() when the object was made


def attributes(thing: object) -> dict[str, str]:
    """An object's attributes by their type and text, objects held by it by their own."""
    shown = {name: value for name, value in vars(thing).items() if name not in CLOCK_READINGS}
    return {
        name: f"{type(v).__name__} {attributes(v) if hasattr(v, '__dict__') else repr(v)}"
        for name, v in shown.items()
    }


def _near_float32_midpoints(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Floats a, b in [1, 2) whose product is 1 + e, 0 < |e| < 2⁻²⁹: 1 + 2⁻²⁴·a·b lies within
    2⁻⁵³ of a float32 midpoint, where float64 then float32 rounds differently from once."""
    a = (1 + torch.rand(200_000, generator=torch.Generator().manual_seed(0))).float().double()
    b = (1 / a).float().double()
    error = a * b - 1
    keep = (error != 0) & (error.abs() < 2**-29)
    return a[keep][:n].float(), b[keep][:n].float()


def test_a_groups_plain_sgd_step_is_each_members_torch_step_bit_for_bit():
    """``plain_sgd.step`` against each member's own ``torch.optim.SGD``: equal bits over
    steps of gradients of many magnitudes, at values where rounding twice would differ from
    torch's once (w = 1, lr·g = -2⁻²⁴·a·b), and for a member whose gradient is None."""
    from linlab.models import LinearRegression
    from linlab.params import flat_values
    from linlab.stacking import plain_sgd
    from linlab.stacking.models import StackedModels

    a, b = _near_float32_midpoints(48)
    lrs = [*b.tolist(), *(10 ** torch.linspace(-4, 0, 16)).tolist()]
    k = len(lrs)
    alone = [LinearRegression(4, init="normal", init_std=1.0) for _ in range(k)]
    for m in alone[: len(a)]:
        m.load_state_dict({"w": torch.ones(4), "b": torch.ones(())})
    members = [copy.deepcopy(m) for m in alone]
    group = StackedModels(members)
    optimizers = [torch.optim.SGD(m.parameters(), lr=lr) for m, lr in zip(alone, lrs, strict=True)]
    stacked = torch.optim.SGD(
        [{"params": list(m.parameters()), "lr": lr} for m, lr in zip(members, lrs, strict=True)]
    )
    generator = torch.Generator().manual_seed(1)
    for step in range(5):
        grads = torch.randn(k, 5, generator=generator) * 10.0 ** torch.randint(-8, 3, (k, 1))
        if step == 0:
            grads[: len(a)] = (a * -(2**-24)).unsqueeze(1)
        if step == 2:  # member 3 stops: its parameters require no gradient, get none
            for p, q in zip(members[3].parameters(), alone[3].parameters(), strict=True):
                p.requires_grad_(False)
                q.grad = None
        for i, twin in enumerate(alone):
            if i != 3 or step < 2:
                twin.w.grad, twin.b.grad = grads[i, :4].clone(), grads[i, 4].clone()
        for optimizer in optimizers:
            optimizer.step()
        assert plain_sgd.step(stacked, group.columns(), [grads[:, :4].clone(), grads[:, 4]])
        bits = [p.detach().view(torch.int32) for m in members for p in m.parameters()]
        expected = [p.detach().view(torch.int32) for m in alone for p in m.parameters()]
        assert all(torch.equal(x, y) for x, y in zip(bits, expected, strict=True)), step
    assert torch.equal(group.flat_values(), torch.stack([flat_values(m) for m in alone]))
    stacked.param_groups[5]["momentum"] = 0.5  # not plain SGD: torch's own step is kept
    assert not plain_sgd.step(stacked, group.columns(), [grads[:, :4].clone(), grads[:, 4]])


def _stacked_through_each_members_parameters(members: list, x: torch.Tensor) -> torch.Tensor:
    """(K, B, ...) predictions from the members' own parameters stacked, so that autograd
    reaches each member's parameters (the same products as ``StackedModels.forward``)."""
    names = [name for name, _ in members[0].named_parameters()]
    params = {n: torch.stack([dict(m.named_parameters())[n] for m in members]) for n in names}
    if "b" in params and params["b"].dim() == 1:  # linear: one (B, d) @ (d, K) product
        return (x @ params["w"].T).T + params["b"].unsqueeze(-1)

    def one(p: dict, inputs: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(members[0], p, (inputs,))

    return torch.vmap(one, in_dims=(0, None))(params, x)


@pytest.mark.parametrize("model", ["linear", "softmax"])
def test_a_groups_one_backward_pass_gives_each_member_its_own_gradient(model):
    """``take_gradients`` after the group's backward pass: row k is, bit for bit, the
    gradient autograd gives member k's own parameters through the same products; then
    ``give_gradients`` hands each member its rows, none to a member that requires none."""
    from linlab.losses import CrossEntropyLoss, MSELoss
    from linlab.models import LinearRegression, SoftmaxRegression
    from linlab.stacking.models import StackedModels

    torch.manual_seed(0)
    make, loss = {
        "linear": (lambda: LinearRegression(6, init="normal", init_std=1.0), MSELoss()),
        "softmax": (lambda: SoftmaxRegression(6, 3), CrossEntropyLoss()),
    }[model]
    alone = [make() for _ in range(9)]
    group = StackedModels([copy.deepcopy(m) for m in alone])
    x = torch.randn(32, 6)
    y = (torch.randn(32) if model == "linear" else torch.randint(0, 3, (32,))).float()
    loss.per_sample(_stacked_through_each_members_parameters(alone, x), y).mean(-1).sum().backward()
    loss.per_sample(group(x), y).mean(-1).sum().backward()
    grads = group.take_gradients()
    expected = [[p.grad for p in m.parameters()] for m in alone]
    for k in range(len(alone)):
        assert all(torch.equal(g[k], e) for g, e in zip(grads, expected[k], strict=True)), k
    assert all(g is None for g in group.take_gradients())  # handed over once
    for p in group.members[4].parameters():
        p.requires_grad_(False)
    group.give_gradients(grads)
    for k, (member, own) in enumerate(zip(group.members, expected, strict=True)):
        got = [p.grad for p in member.parameters()]
        assert all(g is None for g in got) if k == 4 else all(map(torch.equal, got, own)), k


@pytest.mark.parametrize("kill_at", ["written", "renamed"])
def test_a_group_killed_inside_its_save_resumes_every_member_from_one_step(tmp_path, kill_at):
    """A group's save writes its members' checkpoints all or none (``GroupSave``). Killed
    inside its second save, after the first member's file was written (the save is dropped:
    every member resumes from the first) or after the first was renamed onto ``last.ckpt``
    (the resume finishes the renames: every member from the second), the group resumes to
    the uninterrupted run's weights, bit for bit. Without it the members resumed an epoch
    apart at the furthest one's step."""
    args = [*STACKED, "optimizer.lr=0.01,0.1", "seed=0,1", "data.n_samples=400"]
    args += ["trainer.max_epochs=4", "callbacks.figures.enabled=false"]
    args += ["callbacks.last_checkpoint.min_interval_s=0"]
    whole = start([*args, f"hydra.sweep.dir={tmp_path / 'whole'}"], REPO)
    killed_dir = tmp_path / "killed"
    members = 4
    code = "import kill_switch, runpy; runpy.run_module('linlab.train', run_name='__main__')"
    killed = subprocess.run(
        [sys.executable, "-c", code, "-m", *args, f"hydra.sweep.dir={killed_dir}"],
        cwd=REPO,
        env={
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": f"{SRC}{os.pathsep}{TESTS}",
            "LINLAB_KILL_AT": f"{kill_at}:{members + 2}",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == 9, killed.stderr[-2000:]
    assert not list(killed_dir.glob("*/results.json")), "killed before the end"
    expected, got = resume_beside(whole, args, killed_dir)
    assert len(got) == members and set(got) == set(expected)
    for job, member in got.items():
        assert member["weights"] == expected[job]["weights"], job  # bit for bit
        assert member["steps"] == expected[job]["steps"], job
    assert not list(killed_dir.glob("*/checkpoints/*.next")), "an unfinished save was left"
