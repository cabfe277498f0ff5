"""Shared helpers: compose the real configs in-process, or run the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from linlab.train import config_dir, quiet_lightning, train, train_group

REPO = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false"]

torch.set_num_threads(1)
quiet_lightning()


@pytest.fixture
def hydra_default_version_base():
    """Hydra's own suites run its test apps with no version base chosen (Hydra 1.1's default:
    jobs change directory); importing ``linlab.train`` chose 1.3 for the whole process."""
    from hydra.version import VersionBase, __compat_version__

    base = VersionBase.instance()
    saved = base.getbase()
    base.setbase(__compat_version__)
    yield
    base.setbase(saved)


def compose_config(overrides: list[str], run_dir: Path):
    """The config `linlab-train` would build for these overrides, with its Hydra node set."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[*QUIET, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    return cfg


def train_run(overrides: list[str], run_dir: Path) -> dict:
    """Train in this process exactly as the CLI does; return results.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    results = train(compose_config(overrides, run_dir), run_dir)
    assert json.loads((run_dir / "results.json").read_text())["status"] == results["status"]
    return results


def train_group_run(members: list[list[str]], parent: Path) -> tuple[list[dict], list[Path]]:
    """Train these runs as one stacked group in this process, each in ``parent/member<k>``;
    their results and folders."""
    dirs = [parent / f"member{k}" for k in range(len(members))]
    cfgs = [compose_config(m, d) for m, d in zip(members, dirs, strict=True)]
    for d in dirs:
        d.mkdir()
    return train_group(cfgs, dirs), dirs


def run_cli(args: list[str], cwd: Path, env: dict | None = None, check: bool = True):
    """Run ``python -m linlab.train`` as a user would; returns the CompletedProcess."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "linlab.train", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def train_in(tmp_path):
    """``train_in(overrides, name="run")`` → results of an in-process run under tmp_path."""

    def _train(overrides: list[str], name: str = "run") -> dict:
        return train_run(overrides, tmp_path / name)

    return _train
