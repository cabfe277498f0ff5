"""Distributed data parallel for Hydra jobs, single runs and multiruns alike.

    linlab-train trainer=ddp_cpu                                  # 2 CPU processes, gloo
    linlab-train -m trainer=ddp_cpu optimizer.lr=0.01,0.1         # DDP inside a sweep
    linlab-train trainer=ddp trainer.devices=4                    # 4 GPUs, nccl

Lightning's script launcher starts ranks 1..N-1 by re-running ``sys.argv``. Inside a Hydra
multirun that command is the whole sweep (``-m a=1,2``), so every child starts its own sweep
in its own folders, and the rank-0 job's leftover ``LOCAL_RANK``/``WORLD_SIZE`` variables and
process group break the next job. ``HydraJobDDPStrategy`` instead starts each child on *this
job's* saved config (``.hydra/config.yaml``) in *this job's* folder, with nothing written by
the children, and gives the process back clean at the end of ``fit``.

Gradients are averaged explicitly, once per minibatch (``average_gradients``): the module takes
one optimiser step per minibatch of a chunk, i.e. several backward passes per DDP forward,
which DDP's reducer does not allow, and ``gradient=analytic`` never runs autograd at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.strategies.launchers.subprocess_script import _launch_process_observer
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from torch import Tensor

from linlab import interrupts

_LAUNCH_VARS = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
_CHILD_EXIT_TIMEOUT_S = 120


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def mean_over_ranks(values: Tensor) -> Tensor:
    """(1/W) Σ_r values_r: the minibatch losses of equal shards averaged into the whole's."""
    if _world_size() == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / _world_size()


def average_gradients(parameters: Iterable[Tensor]) -> None:
    """g ← (1/W) Σ_r g_r over the W ranks; nothing to do in a single process.

    Every rank holds the mean-loss gradient of an equal shard of the same minibatch, so the
    average is exactly the gradient of the whole minibatch's mean loss. One more element
    carries whether any rank received Ctrl-C or SIGTERM, so that all of them stop after the
    same minibatch (``linlab.interrupts``).
    """
    if _world_size() == 1:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    signalled = torch.tensor(
        [float(interrupts.STATE.received)], dtype=grads[0].dtype, device=grads[0].device
    )
    flat = mean_over_ranks(torch.cat([*(g.reshape(-1) for g in grads), signalled]))
    if flat[-1] > 0:
        interrupts.STATE.stop = True
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


SCRIPT_LAUNCHER_IN_MULTIRUN = (
    "trainer.strategy={strategy} inside a multirun re-runs the whole sweep in every process; "
    "use trainer=ddp_cpu or trainer=ddp (linlab.ddp.HydraJobDDPStrategy) instead"
)


def refuse_script_launcher_in_multirun(strategy: Any) -> None:
    """Lightning's own script launcher re-runs the sweep in every child: say what works instead."""
    launcher = getattr(strategy, "launcher", None)
    if (
        isinstance(launcher, _SubprocessScriptLauncher)
        and not isinstance(launcher, HydraJobLauncher)
        and not launcher.cluster_environment.creates_processes_externally
        and HydraConfig.initialized()
        and HydraConfig.get().mode == RunMode.MULTIRUN
    ):
        raise ValueError(SCRIPT_LAUNCHER_IN_MULTIRUN.format(strategy="ddp"))


def relaunches_command_line(kind: Any, settings: dict[str, Any]) -> bool:
    """Whether the strategy class ``kind``, built with ``settings``, starts its processes with
    Lightning's script launcher (``refuse_script_launcher_in_multirun``), not as this job's."""
    return (
        isinstance(kind, type)
        and issubclass(kind, DDPStrategy)
        and not issubclass(kind, HydraJobDDPStrategy)
        and settings.get("start_method", "popen") == "popen"
    )


def child_command(local_rank: int, seed: str | None) -> list[str]:
    """Rank ``local_rank`` of this Hydra job: its saved config, its folder, nothing written."""
    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    saved = job_dir / str(hydra_cfg.output_subdir) / "config.yaml"
    if hydra_cfg.output_subdir is None or not saved.is_file():
        raise ValueError(
            f"DDP starts its other processes from the job's saved config {saved}, which is "
            "missing; leave hydra.output_subdir at its default"
        )
    command = [sys.executable, "-m", "linlab.train", "--config-path", str(saved.parent)]
    command += ["--config-name", "config", f'hydra.run.dir="{job_dir}"']
    command += ["hydra.output_subdir=null", "hydra/job_logging=stdout"]
    command += [f"hydra.job.name={hydra_cfg.job.name}_rank{local_rank}"]
    if seed is not None:
        command.append(f"seed={seed}")  # a drawn seed (seed=null) must be the same on every rank
    return command


class HydraJobLauncher(_SubprocessScriptLauncher):
    """Starts ranks 1..N-1 of the current Hydra job with ``child_command``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._saved_env: dict[str, str | None] = {}

    def _call_children_scripts(self) -> None:
        self._check_can_spawn_children()
        self._saved_env = {name: os.environ.get(name) for name in _LAUNCH_VARS}
        env = self.cluster_environment
        os.environ.update(
            MASTER_ADDR=env.main_address,
            MASTER_PORT=str(env.main_port),
            NODE_RANK=str(env.node_rank()),
            LOCAL_RANK=str(env.local_rank()),
            WORLD_SIZE=str(self.num_processes * self.num_nodes),
        )
        cwd = HydraConfig.get().runtime.cwd
        for local_rank in range(1, self.num_processes):
            command = child_command(local_rank, os.environ.get("PL_GLOBAL_SEED"))
            child_env = {**os.environ, "LOCAL_RANK": str(local_rank)}
            self.procs.append(subprocess.Popen(command, env=child_env, cwd=cwd))
        _launch_process_observer(self.procs)

    def launch(self, function: Any, *args: Any, trainer: Any = None, **kwargs: Any) -> Any:
        self.cluster_environment.validate_settings(
            num_devices=self.num_processes, num_nodes=self.num_nodes
        )
        if not self.cluster_environment.creates_processes_externally:
            self._call_children_scripts()
        return function(*args, **kwargs)

    def release(self) -> None:
        """Wait for the children and restore the environment, ready for the sweep's next job."""
        for proc in self.procs:
            proc.wait(timeout=_CHILD_EXIT_TIMEOUT_S)
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}


class HydraJobDDPStrategy(DDPStrategy):
    """DDP whose processes all belong to one Hydra job; see the module docstring.

    DDP's own gradient hooks are switched off (the module calls ``average_gradients`` once
    per minibatch); DDP still broadcasts rank 0's initial parameters to every rank.

    Args:
        collective_timeout_s: a collective that waits longer than this for the other ranks
            fails the job (torch.distributed's default is 30 minutes; here ranks that stop
            agreeing end the job with an error naming the timeout, not a silent hang).
        **kwargs: ``DDPStrategy``'s arguments.
    """

    def __init__(self, collective_timeout_s: float = 120.0, **kwargs: Any) -> None:
        super().__init__(timeout=timedelta(seconds=collective_timeout_s), **kwargs)

    def _configure_launcher(self) -> None:
        assert self.cluster_environment is not None
        self._launcher = HydraJobLauncher(
            self.cluster_environment, self.num_processes, self.num_nodes
        )

    def configure_ddp(self) -> None:
        super().configure_ddp()
        self.model.require_backward_grad_sync = False

    def teardown(self) -> None:
        """End the process group on every rank, so that the sweep's next job can start its own."""
        super().teardown()
        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
        if isinstance(self._launcher, HydraJobLauncher):
            self._launcher.release()
