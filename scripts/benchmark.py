"""linlab against a plain PyTorch loop: epoch time, per-job cost, vectorised sweep, streaming;
and how fast ``linlab-train`` answers ``--help`` and refuses a bad command line.

    OMP_PROC_BIND=true OMP_PLACES="{0},{1}" PYTHONPATH=src python scripts/benchmark.py
    PYTHONPATH=src python scripts/benchmark.py --quick            # 2-3 minutes
    PYTHONPATH=src python scripts/benchmark.py --only streaming   # one part
    PYTHONPATH=src python scripts/benchmark.py --only progress    # the live progress line

linlab runs its *default* batch-run configuration (``conf/train.yaml`` through Hydra's compose
and ``linlab.train.train``: TensorBoard on, ``loss/train`` and ``params/*`` logged every
``trainer.log_every_n_steps``, validation every epoch, the spaced last checkpoint, no progress bar).
The plain loop trains the same model on the same training split with the same SGD settings,
slicing a shuffled index tensor per minibatch. The two alternate in this one process, epoch
by epoch timings are taken with a callback, and the table reports medians. Threads are pinned
(``OMP_PROC_BIND``/``OMP_PLACES``, set before torch loads) because an unpinned 2-core VM can
pack both OpenMP threads on one core and run many times slower.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_PROC_BIND", "true")
os.environ.setdefault("OMP_PLACES", "{0},{1}")
# the timed commands run in a scratch folder: a relative PYTHONPATH=src must still find this tree
os.environ["PYTHONPATH"] = os.pathsep.join(
    os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
)

import argparse
import contextlib
import io
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from rich.console import Console

from linlab.data.batches import EpochPermutation
from linlab.data.datamodule import LinearDataModule
from linlab.models import LinearRegression
from linlab.progress import LiveProgress
from linlab.train import config_dir, quiet_lightning, train

SIZES = [  # (n_samples, n_features, batch_size); --quick takes a tenth of the samples
    (100_000, 10, 32),
    (100_000, 10, 1024),
    (1_000_000, 100, 1024),
]
TARGETS = {32: 1.5, 1024: 1.3}
LR = 0.01
# what the console script ``linlab-train`` (entry point ``linlab.cli:console``) runs
CONSOLE_SCRIPT = (
    "import sys; from linlab.cli import console; sys.argv[0] = 'linlab-train'; console()"
)
COMMAND_LINES = [  # (what, arguments, expected exit code, target seconds or None)
    ("--help", ["--help"], 0, 1.0),
    ("group typo (data=gausian)", ["data=gausian"], 2, 1.0),
    # the value layer: plain Python on the composed config
    ("value rule (optimizer.lr=-1)", ["optimizer.lr=-1"], 2, 1.0),
    ("value rule (data.batch_size=701)", ["data.batch_size=701"], 2, 1.0),
    ("value type from source (model.bias=maybe)", ["model.bias=maybe"], 2, 1.0),
    ("deleted node (~trainer)", ["~trainer"], 2, 1.0),
    ("empty Hydra path (hydra.run.dir=)", ["hydra.run.dir="], 2, 1.0),
    # the dry build: torch, Lightning only for the groups that are Lightning classes
    ("dry build (model._target_=torch.nn.Identity)", ["model._target_=torch.nn.Identity"], 2, 2.5),
    (
        "dry build (+optimizer.amsgrad=maybe)",
        ["optimizer=adam", "+optimizer.amsgrad=maybe"],
        2,
        2.5,
    ),
    # the machine and Lightning's registries: Lightning is loaded (no target)
    ("Lightning names (trainer.strategy=foo)", ["trainer.strategy=foo"], 2, None),
    ("machine (trainer.accelerator=gpu)", ["trainer.accelerator=gpu"], 2, None),
]


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "MISSED"


def size_label(n: int, d: int, batch: int) -> str:
    return f"n={n:,}, d={d}, batch {batch}"


class EpochClock(L.Callback):
    """Wall time between consecutive epoch starts: everything an epoch costs, hooks included."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.starts.append(time.perf_counter())

    def epoch_times(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:], strict=False)]


CLOCK: EpochClock | None = None


def make_clock() -> EpochClock:
    """Hydra target for the benchmark's callback (kept in a global to read it after the run)."""
    global CLOCK
    CLOCK = EpochClock()
    return CLOCK


def compose_config(overrides: list[str], run_dir: Path):
    """The config ``linlab-train`` builds for these overrides (as tests/conftest.py does)."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    return cfg


def linlab_run(overrides: list[str], workdir: Path, clock: bool = True) -> tuple[dict, list[float]]:
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    extra = [f"+callbacks.epoch_clock._target_={__name__}.make_clock"] if clock else []
    results = train(compose_config([*overrides, *extra], run_dir), run_dir)
    return results, (CLOCK.epoch_times() if clock else [])


def data_overrides(n: int, d: int, batch: int) -> list[str]:
    return [f"data.n_samples={n}", f"data.n_features={d}", f"data.batch_size={batch}"]


def training_split(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The same training split linlab's default config trains on."""
    dm = LinearDataModule(
        generator="gaussian",
        n_features=d,
        n_samples=n,
        seed=seed,
        val_fraction=0.2,
        test_fraction=0.1,
    )
    dm.setup()
    return dm.splits["train"]


def plain_loop(x, y, batch: int, epochs: int, lr: float = LR, seed: int = 0) -> list[float]:
    """The textbook loop over shuffled index slices; returns each epoch's wall time."""
    torch.manual_seed(seed)
    model = LinearRegression(x.shape[1])
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    order = EpochPermutation(len(y), seed, shuffle=True)
    times = []
    for epoch in range(epochs):
        started = time.perf_counter()
        order.set_epoch(epoch)
        perm = order.indices()
        for i in range(0, len(y), batch):
            idx = perm[i : i + batch]
            loss = ((model(x[idx]) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - started)
    return times


def epoch_ratios(n: int, d: int, batch: int, epochs: int, rounds: int, workdir: Path) -> dict:
    """Alternate plain and linlab ``rounds`` times; medians of their epoch times (first dropped)."""
    x, y = training_split(n, d)
    plain, linlab = [], []
    for _ in range(rounds):
        plain += plain_loop(x, y, batch, epochs)[1:]
        overrides = [*data_overrides(n, d, batch), f"trainer.max_epochs={epochs}"]
        linlab += linlab_run(overrides, workdir)[1][1:]
    p, q = statistics.median(plain), statistics.median(linlab)
    return {
        "plain_epoch_s": p,
        "linlab_epoch_s": q,
        "ratio": q / p,
        "plain_all": plain,
        "linlab_all": linlab,
    }


def per_job_cost(jobs: int, workdir: Path) -> dict:
    """What each job of an in-process multirun costs on a tiny problem (n=200, 2 epochs):
    compose the config, build data, module, trainer and logger, fit, write results.json."""
    walls = []
    for seed in range(jobs):
        started = time.perf_counter()
        overrides = ["data.n_samples=200", "trainer.max_epochs=2", f"seed={seed}"]
        linlab_run(overrides, workdir, clock=False)
        walls.append(time.perf_counter() - started)
    return {"jobs": jobs, "walls_s": walls, "per_job_s": statistics.median(walls[1:])}


def run_command(args: list[str], workdir: Path) -> dict:
    """``linlab-train <args>`` in a fresh process: wall time of the whole command, peak RSS.
    The process gets this one's environment: 2 OpenMP threads pinned (module docstring)."""
    report = (
        "import atexit, sys, runpy\n"
        "def peak():\n"
        "    status = open('/proc/self/status').read()\n"
        "    print('VmHWM', status.split('VmHWM:')[1].split()[0], file=sys.stderr)\n"
        "atexit.register(peak)\n"
        "sys.argv = ['linlab-train', *sys.argv[1:]]\n"
        "runpy.run_module('linlab.train', run_name='__main__')\n"
    )
    proc, wall = timed_process(["-c", report, *args], workdir, f"linlab-train {' '.join(args)}")
    peak_kib = int(proc.stderr.rsplit("VmHWM", 1)[1].split()[0])
    return {"wall_s": wall, "peak_rss_mib": peak_kib / 1024}


def timed_process(
    args: list[str], workdir: Path, what: str
) -> tuple[subprocess.CompletedProcess, float]:
    """``python <args>`` in a fresh process with this one's environment: the finished process
    and the whole command's wall time; ``what`` names it when it fails."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args], cwd=workdir, capture_output=True, text=True, env=dict(os.environ)
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-2000:]}")
    return proc, wall


# a second training job on the machine: torch multiplying 256x256 matrices on its own threads
# (a shell busy-loop does not show the slowdown of tiny multi-threaded products; this does)
BUSY_TORCH = (
    "import torch\n"
    "torch.set_num_threads(2)\n"
    "a = torch.randn(256, 256)\n"
    "while True:\n"
    "    a = torch.tanh(a @ a)\n"
)


@contextlib.contextmanager
def beside_busy_torch(busy: bool):
    """Nothing, or another torch process multiplying matrices for the duration."""
    if not busy:
        yield
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    process = subprocess.Popen([sys.executable, "-c", BUSY_TORCH], env=env)
    try:
        time.sleep(2)  # torch loaded, multiplying
        yield
    finally:
        process.terminate()
        process.wait()


def lrs(count: int, low: float = 1e-3, high: float = 1.0) -> str:
    """``count`` log-spaced learning rates from ``low`` to ``high``, comma-separated."""
    ratio = (high / low) ** (1 / max(count - 1, 1))
    return ",".join(f"{low * ratio**i:.4g}" for i in range(count))


SWEEP_REPEATS = 3  # one run and each stacked sweep, alternating; medians compared
SWEEP_GRIDS = {  # name: (overrides, target ratio of the stacked sweep to one run, or None)
    "2 lrs (shared data)": (["optimizer.lr=0.01,0.1"], None),
    "64 jobs: 16 lrs x 4 seeds": ([f"optimizer.lr={lrs(16)}", "seed=0,1,2,3"], 1.5),
    "64 jobs: 64 lrs, one seed (shared data)": ([f"optimizer.lr={lrs(64)}"], 1.5),
}


def stacked_sweeps(quick: bool, workdir: Path, largest: int) -> dict:
    """``hydra/launcher=stacked`` against one ``linlab-train`` and the basic launcher, every
    grid of ``SWEEP_GRIDS`` quiet and beside a busy torch process; 1024 members sharing one
    data draw (n=1000, d=5) in one group; a ``largest``-job sweep (10,000: 2,500 lrs x 4
    seeds; 0: none) and ``linlab-report`` reading it. One run and the stacked sweeps run
    ``SWEEP_REPEATS`` times, alternating (one run, each grid, again), and the ratios are of
    their medians: a single command's wall time on a shared machine varies by a tenth."""
    repeats = 1 if quick else SWEEP_REPEATS
    report: dict = {"grids": {}, "repeats": repeats}
    for busy in (False, True):
        condition = "busy" if busy else "quiet"
        grids = [
            (i, name, grid)
            for i, (name, (grid, _)) in enumerate(SWEEP_GRIDS.items())
            if not (quick and i > 0 and busy)
        ]
        with beside_busy_torch(busy):
            ones, stacked = [], {name: [] for _, name, _ in grids}
            for r in range(repeats):
                one_dir = workdir / f"one-{condition}-{r}"
                ones.append(run_command([f"hydra.run.dir={one_dir}"], workdir))
                for i, name, grid in grids:
                    folder = workdir / f"stacked-{condition}-{i}-{r}"
                    args = ["-m", *grid, "hydra/launcher=stacked", f"hydra.sweep.dir={folder}"]
                    stacked[name].append(run_command(args, workdir))
            one = report[f"one_run_{condition}"] = median_run(ones)
            for i, name, grid in grids:
                folder = workdir / f"basic-{condition}-{i}"
                args = ["-m", *grid, "hydra/launcher=basic", f"hydra.sweep.dir={folder}"]
                row = {"stacked": median_run(stacked[name]), "basic": run_command(args, workdir)}
                row["ratio"] = row["stacked"]["wall_s"] / one["wall_s"]
                row["vs_basic"] = row["stacked"]["wall_s"] / row["basic"]["wall_s"]
                report["grids"][f"{name}, {condition}"] = row
    one = report["one_run_quiet"]
    members = 256 if quick else 1024
    many = ",".join(f"{0.1 * (i + 1) / members:.6g}" for i in range(members))
    big = run_command(
        [
            "-m",
            "hydra/launcher=stacked",
            f"optimizer.lr={many}",
            "data.n_samples=1000",
            f"hydra.sweep.dir={workdir / f'stacked{members}'}",
        ],
        workdir,
    )
    report |= {
        "members": members,
        "stacked_many": big,
        "ratio_many": big["wall_s"] / one["wall_s"],
        "rss_ratio_many": big["peak_rss_mib"] / one["peak_rss_mib"],
    }
    if not quick and largest:
        report |= largest_sweep(largest, workdir)
    return report


def median_run(runs: list[dict]) -> dict:
    """The median wall time and peak RSS of repeated commands, with every wall time."""
    return {
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs),
        "walls_s": [r["wall_s"] for r in runs],
    }


def largest_sweep(jobs: int, workdir: Path) -> dict:
    """A ``jobs``-job stacked sweep (``jobs // 4`` log-spaced lrs x 4 seeds, n=100, 2 epochs):
    its wall time and peak RSS, then ``linlab-report`` on its folder in a fresh process (the
    whole command's wall time) and the line where the report says how many jobs it read."""
    folder = workdir / f"stacked{jobs}"
    args = ["-m", "hydra/launcher=stacked", f"optimizer.lr={lrs(jobs // 4)}", "seed=0,1,2,3"]
    args += ["data.n_samples=100", "trainer.max_epochs=2", f"hydra.sweep.dir={folder}"]
    sweep = run_command(args, workdir)
    what = f"linlab-report {folder}"
    proc, seconds = timed_process(["-m", "linlab.report.cli", str(folder)], workdir, what)
    read = proc.stdout.splitlines()[0]  # sweep <folder>: N jobs (N ok)
    return {"largest": jobs, "sweep_10000": sweep, "report_10000_s": seconds, "report_read": read}


def print_sweeps(s: dict) -> None:
    """Every target of the sweep part, with ``ok``/``MISSED``."""
    for condition in ("quiet", "busy"):
        print(f"one run, {condition}: {_walls(s[f'one_run_{condition}'])}", flush=True)
    for name, row in s["grids"].items():
        target = SWEEP_GRIDS[name.rsplit(", ", 1)[0]][1]
        basic = row["basic"]["wall_s"]
        line = (
            f"{name}: stacked {_walls(row['stacked'])}, basic {basic:.1f} s, "
            f"stacked/basic {row['vs_basic']:.2f} (target <= 1) {verdict(row['vs_basic'], 1)}"
        )
        if target is not None:
            line += f"; stacked/one run {row['ratio']:.2f} (target <= {target}) "
            line += verdict(row["ratio"], target)
        print(line, flush=True)
    one = s["one_run_quiet"]
    print(
        f"stacked group of {s['members']} members (n=1000, d=5): "
        f"{s['stacked_many']['wall_s']:.1f} s, ratio {s['ratio_many']:.2f} (target <= 10) "
        f"{verdict(s['ratio_many'], 10)}; peak RSS {s['stacked_many']['peak_rss_mib']:.0f} "
        f"MiB vs {one['peak_rss_mib']:.0f} MiB, ratio {s['rss_ratio_many']:.2f} "
        f"(target <= 1.5) {verdict(s['rss_ratio_many'], 1.5)}",
        flush=True,
    )
    if "sweep_10000" in s:
        seconds = s["report_10000_s"]
        jobs = s["largest"]
        verdict_10000 = verdict(seconds, 30) if jobs >= 10_000 else "(not the 10,000-job target)"
        print(
            f"{jobs:,}-job stacked sweep ({jobs // 4:,} lrs x 4 seeds, n=100): finished in "
            f"{s['sweep_10000']['wall_s']:.0f} s, peak RSS "
            f"{s['sweep_10000']['peak_rss_mib']:.0f} MiB; linlab-report read it in "
            f"{seconds:.1f} s (target <= 30 for 10,000 jobs) {verdict_10000} "
            f"[{s['report_read'].split(': ', 1)[-1]}]",
            flush=True,
        )


def _walls(run: dict) -> str:
    """``6.7 s`` or, repeated, ``6.7 s (median of 6.9, 6.7, 6.6)``."""
    walls = run.get("walls_s", [])
    each = f" (median of {', '.join(f'{w:.1f}' for w in walls)})" if len(walls) > 1 else ""
    return f"{run['wall_s']:.1f} s{each}"


def streaming_child(n: int, workdir: Path) -> None:
    """Run in a fresh process: train on n streamed samples, print wall time and peak RSS."""
    overrides = [
        "data.streaming=true",
        "data.val_fraction=0",
        "data.test_fraction=0",
        f"data.n_samples={n}",
        "data.batch_size=1024",
        "trainer.max_epochs=1",
    ]
    results, _ = linlab_run(overrides, workdir, clock=False)
    wall = results["wall_time_s"]  # the fit itself, without start-up
    print(json.dumps({"n": n, "wall_s": wall, "peak_rss_mib": peak_rss_kib() / 1024}))


def peak_rss_kib() -> int:
    """This process image's peak RSS: ``VmHWM`` restarts at exec, while Linux carries
    ``ru_maxrss`` over from the parent that forked us (a 5 GB benchmark process, say)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def streaming(sizes: list[int], workdir: Path) -> dict:
    runs = []
    for n in sizes:
        args = [sys.executable, __file__, "--streaming-child", str(n), "--workdir", str(workdir)]
        out = subprocess.run(args, check=True, capture_output=True, text=True, env=os.environ)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    small, large = runs[0], runs[-1]
    return {
        "runs": runs,
        "rss_ratio": large["peak_rss_mib"] / small["peak_rss_mib"],
        "time_per_sample_ratio": (large["wall_s"] / large["n"]) / (small["wall_s"] / small["n"]),
    }


class EpochCpuClock(EpochClock):
    """CPU seconds of this process (every thread, the drawing one too) between epoch starts:
    steadier than wall time on a shared machine."""

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.starts.append(time.process_time())

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.starts.append(time.process_time())


CPU_CLOCK: EpochCpuClock | None = None


def make_cpu_clock() -> EpochCpuClock:
    global CPU_CLOCK
    CPU_CLOCK = EpochCpuClock()
    return CPU_CLOCK


def progress_display_cost(n: int, d: int, batch: int, epochs: int, rounds: int, workdir: Path):
    """Epoch wall and CPU time of the default run with and without the live progress line of
    an interactive run (``linlab.progress``), alternated; the line is drawn as to a terminal
    (rich's ``FORCE_COLOR``) into /dev/null, four times a second from its thread."""
    overrides = [
        *data_overrides(n, d, batch),
        f"trainer.max_epochs={epochs}",
        f"+callbacks.cpu_clock._target_={__name__}.make_cpu_clock",
    ]
    times: dict[str, list[float]] = {"off": [], "on": [], "off_cpu": [], "on_cpu": []}
    for round_ in range(rounds):
        for mode in ("off", "on") if round_ % 2 == 0 else ("on", "off"):  # neither always first
            shown = [f"trainer.enable_progress_bar={mode == 'on'}"]
            drawing = drawn_as_on_a_terminal() if mode == "on" else contextlib.nullcontext()
            with drawing:
                times[mode] += linlab_run([*overrides, *shown], workdir)[1][1:]
            times[f"{mode}_cpu"] += CPU_CLOCK.epoch_times()[1:]
    medians = {k: statistics.median(v) for k, v in times.items()}
    frame = progress_frame_s()
    return {
        "frame_s": frame,
        "frames_share": frame * LiveProgress().refresh_per_second,
        "off_epoch_s": medians["off"],
        "on_epoch_s": medians["on"],
        "cost": medians["on"] / medians["off"] - 1,
        "off_epoch_cpu_s": medians["off_cpu"],
        "on_epoch_cpu_s": medians["on_cpu"],
        "cpu_cost": medians["on_cpu"] / medians["off_cpu"] - 1,
        "all": times,
    }


def progress_frame_s(frames: int = 500) -> float:
    """Seconds to build and write one frame of the progress line (mid-run state, as drawn on a
    200-column terminal): the drawing thread's work per refresh."""
    trainer = SimpleNamespace(
        global_step=17_000, current_epoch=40, max_epochs=2000, callback_metrics={}
    )
    line = LiveProgress(Console(file=io.StringIO(), force_terminal=True, width=200))
    line.trainer_ref, line.steps_per_epoch, line.started = trainer, 438, time.perf_counter()
    line.losses = {"train loss": 0.01, "val loss": 0.0106}
    started = time.perf_counter()
    for _ in range(frames):
        line.console.print(line.render())
    return (time.perf_counter() - started) / frames


@contextlib.contextmanager
def drawn_as_on_a_terminal():
    previous = os.environ.get("FORCE_COLOR")
    os.environ["FORCE_COLOR"] = "1"
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
            yield
    finally:
        if previous is None:
            del os.environ["FORCE_COLOR"]
        else:
            os.environ["FORCE_COLOR"] = previous


def command_line_times(repeats: int, workdir: Path) -> dict:
    """Wall time of a fresh ``linlab-train`` process for each of ``COMMAND_LINES`` (median)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    times = {}
    baselines = [
        ("import torch", ["import torch"], 0, None),
        ("import lightning.pytorch", ["import lightning.pytorch"], 0, None),
    ]
    for what, args, code, target in baselines + COMMAND_LINES:
        script = [] if what.startswith("import ") else [CONSOLE_SCRIPT]
        walls = []
        for _ in range(repeats):
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", *script, *args],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
            )
            walls.append(time.perf_counter() - started)
            if proc.returncode != code:
                raise RuntimeError(f"linlab-train {' '.join(args)} exited {proc.returncode}")
        times[what] = {
            "args": args,
            "walls_s": walls,
            "median_s": statistics.median(walls),
            "target_s": target,
        }
    return times


# The console script with clocks around its phases, for the default run's breakdown: each
# module in PHASES gets its functions wrapped as soon as it is imported (an import hook, so
# nothing loads earlier than it does in linlab-train); the seconds go to $LINLAB_PHASES.
# torch, then torch._dynamo (the first optimiser), then Lightning: their times add up.
TIMED_CONSOLE_SCRIPT = """
import atexit, collections, functools, importlib.machinery, json, os, sys, time
START = time.perf_counter()
SPENT = collections.defaultdict(float)
PHASES = {
    "torch": [],
    "torch._dynamo": [],
    "lightning": [],
    "linlab.cli": ["check_command_line", "run_checked"],
    "linlab.checks.preflight": ["_compose"],
    "hydra._internal.hydra": ["Hydra.compose_config"],
    "linlab.train": ["train_group", "build", "build_trainer"],
    "linlab.faults": ["fit"],
    "linlab.callbacks.figures": ["FigureLogger.draw"],
}
def clocked(name, function):
    @functools.wraps(function)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - started
    return timed
class Hook:
    def find_spec(self, name, path, target=None):
        if name not in PHASES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        load = spec.loader.exec_module
        def exec_module(module):
            started = time.perf_counter()
            load(module)
            SPENT[f"import {name}"] += time.perf_counter() - started
            for dotted in PHASES[name]:
                owner, _, attr = dotted.rpartition(".")
                holder = getattr(module, owner) if owner else module
                setattr(holder, attr, clocked(f"{name}.{dotted}", getattr(holder, attr)))
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, Hook())
def write():
    SPENT["main"] = time.perf_counter() - START
    with open(os.environ["LINLAB_PHASES"], "w") as f:
        json.dump(SPENT, f)
atexit.register(write)
from linlab.cli import console
sys.argv[0] = "linlab-train"
console()
"""


def default_run_times(repeats: int, workdir: Path) -> dict:
    """The default ``linlab-train`` (no arguments): wall time, when its first console line
    appears, the fit's own wall time from its results.json (medians), and the seconds of
    each phase (``TIMED_CONSOLE_SCRIPT``: the clocks cost a few milliseconds). Each run
    follows a ``python -c "import lightning.pytorch"`` of its own, so that on a busy machine
    the target's baseline is taken under the same load."""
    rows, phases = [], []
    for index in range(repeats):
        folder = workdir / f"default_run_{index}"
        spent = workdir / f"default_run_{index}.json"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "LINLAB_PHASES": str(spent)}
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import lightning.pytorch"],
            env=env,
            check=True,
            capture_output=True,
        )
        lightning = time.perf_counter() - started
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", TIMED_CONSOLE_SCRIPT, f"hydra.run.dir={folder}"],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        first = None
        for _ in proc.stdout:
            first = first if first is not None else time.perf_counter() - started
        if proc.wait():
            raise RuntimeError(f"the default linlab-train exited {proc.returncode}")
        wall = time.perf_counter() - started
        fit = json.loads((folder / "results.json").read_text())["wall_time_s"]
        rows.append(
            {
                "wall_s": wall,
                "first_line_s": first,
                "fit_s": fit,
                "lightning_s": lightning,
                "beyond_lightning_s": wall - lightning,
            }
        )
        phases.append(json.loads(spent.read_text()))
    medians = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    phase = {key: statistics.median(p.get(key, 0.0) for p in phases) for key in phases[0]}
    return medians | {"runs": rows, "phases": phase}


def print_breakdown(run: dict) -> None:
    """Where the default run's wall time goes, in the order it happens."""
    p = {key.removeprefix("linlab."): value for key, value in run["phases"].items()}
    checks, imported, job = (
        p["cli.check_command_line"],
        p["import linlab.train"],
        p["cli.run_checked"],
    )
    fit, figures = p["faults.fit"], p["callbacks.figures.FigureLogger.draw"]
    build = p["train.build"] + p["train.build_trainer"]
    heavy = p["import torch"] + p["import torch._dynamo"] + p["import lightning"]
    composed_first = p["checks.preflight._compose"]
    rows = [
        (
            "python start and end, linlab.cli and Hydra imported",
            run["wall_s"] - checks - imported - job,
        ),
        ("checks (composition, values, dry build, machine)", checks - heavy),
        ("  of which Hydra's composition", composed_first),
        ("import torch, torch._dynamo, Lightning (dry build)", heavy),
        ("import linlab.train (TensorBoard, ...)", imported),
        ("Hydra's job: folder, .hydra/, logs (composed once)", job - p["train.train_group"]),
        (
            "  of which Hydra's composition",
            max(0.0, p["hydra._internal.hydra.Hydra.compose_config"] - composed_first),
        ),
        ("build data, model, trainer", build),
        ("fit: training", fit - figures),
        ("fit: figures at the end", figures),
        ("results.json, HParams summary", p["train.train_group"] - fit - build),
    ]
    for what, seconds in rows:
        print(f"    {what:<56s} {seconds:6.2f} s", flush=True)


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "threads": torch.get_num_threads(),
        "OMP_PLACES": os.environ.get("OMP_PLACES"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller problems, 2-3 minutes")
    parts_all = ["startup", "epochs", "jobs", "sweep", "streaming", "progress"]
    parser.add_argument("--only", choices=parts_all, action="append")
    parser.add_argument(
        "--largest-sweep", type=int, default=10_000, help="jobs of the largest sweep (0: none)"
    )
    parser.add_argument("--out", default="outputs/benchmark.json")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--streaming-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_lightning()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="linlab-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.streaming_child:
        streaming_child(args.streaming_child, workdir)
        return
    parts = set(args.only or parts_all)
    report: dict = {"machine": machine(), "quick": args.quick}
    if "startup" in parts:
        report["startup"] = command_line_times(2 if args.quick else 5, workdir)
        for what, row in report["startup"].items():
            if what.startswith("import "):
                continue
            median, target = row["median_s"], row["target_s"]
            goal = "(no target)" if target is None else f"(target <= {target:g} s) "
            goal += "" if target is None else verdict(median, target)
            print(f"linlab-train {what}: {median:.2f} s {goal}", flush=True)
        lightning_s = report["startup"]["import lightning.pytorch"]["median_s"]
        print(
            f"  baseline python -c 'import lightning.pytorch': {lightning_s:.2f} s; "
            f"import torch: {report['startup']['import torch']['median_s']:.2f} s",
            flush=True,
        )
        report["default_run"] = run = default_run_times(3 if args.quick else 5, workdir)
        lightning_s = run["lightning_s"]
        target = lightning_s + 1.0
        print(
            f"default linlab-train: wall {run['wall_s']:.2f} s (target <= import lightning.pytorch "
            f"+ 1.0 = {target:.2f} s, the import timed before each run) "
            f"{verdict(run['wall_s'], target)}; wall minus that import, run by run: median "
            f"{run['beyond_lightning_s']:.2f} s (target <= 1.0) "
            f"{verdict(run['beyond_lightning_s'], 1.0)}; first console line at "
            f"{run['first_line_s']:.2f} s (target <= 1 s) {verdict(run['first_line_s'], 1.0)}; "
            f"fit (results.json wall_time_s) {run['fit_s']:.2f} s",
            flush=True,
        )
        print_breakdown(run)
    if "epochs" in parts:
        report["epochs"] = {}
        for n, d, batch in SIZES:
            n = n // 10 if args.quick else n
            label = size_label(n, d, batch)
            epochs, rounds = (3, 2) if args.quick else (5, 3)
            row = epoch_ratios(n, d, batch, epochs, rounds, workdir)
            report["epochs"][label] = {"n": n, "target": TARGETS[batch], **row}
            print(
                f"{label:28s} plain {row['plain_epoch_s'] * 1e3:8.2f} ms  "
                f"linlab {row['linlab_epoch_s'] * 1e3:8.2f} ms  ratio {row['ratio']:.2f}  "
                f"(target <= {TARGETS[batch]}) {verdict(row['ratio'], TARGETS[batch])}",
                flush=True,
            )
    if "jobs" in parts:
        report["jobs"] = per_job_cost(6 if args.quick else 12, workdir)
        per_job = report["jobs"]["per_job_s"]
        print(
            f"in-process multirun: {per_job:.3f} s per job (target <= 0.5) {verdict(per_job, 0.5)}",
            flush=True,
        )
    if "sweep" in parts:
        report["sweep"] = stacked_sweeps(args.quick, workdir, args.largest_sweep)
        print_sweeps(report["sweep"])
    if "streaming" in parts:
        sizes = [10**5, 10**7] if args.quick else [10**6, 10**8]
        report["streaming"] = streaming(sizes, workdir)
        s = report["streaming"]
        for r in s["runs"]:
            rss = r["peak_rss_mib"]
            print(f"streaming n={r['n']:.0e}: fit {r['wall_s']:.2f} s, peak RSS {rss:.0f} MiB")
        rss, per_sample = s["rss_ratio"], s["time_per_sample_ratio"]
        print(
            f"streaming: peak RSS ratio {rss:.3f} (target <= 1.10) {verdict(rss, 1.10)}, "
            f"time per sample ratio {per_sample:.2f} (linear: target <= 1.10) "
            f"{verdict(per_sample, 1.10)}",
            flush=True,
        )
    if "progress" in parts:
        n = 10_000 if args.quick else 100_000
        report["progress"] = progress_display_cost(n, 10, 32, 5, 2 if args.quick else 3, workdir)
        s = report["progress"]
        print(
            f"progress line, n={n}, batch 32: epoch {s['off_epoch_s'] * 1e3:.1f} ms off, "
            f"{s['on_epoch_s'] * 1e3:.1f} ms on: wall {s['cost']:+.1%}, "
            f"CPU {s['cpu_cost']:+.1%}; a frame {s['frame_s'] * 1e3:.2f} ms, "
            f"{s['frames_share']:.2%} of each second (target < 2%)",
            flush=True,
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
