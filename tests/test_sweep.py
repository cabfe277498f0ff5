"""Real multirun sweeps: folders, results, TensorBoard runs and HParams, launchers, failures.

All sweeps start together (module fixture) so process start-up overlaps; each is tiny.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from browser import browser_available, chart_titles, tab_pages
from hydra import compose, initialize_config_dir
from sweeps import GRID_NAMES, Sweep, finish, hparams_sessions, start_all
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

from linlab import tags
from linlab.report.cli import main
from linlab.report.figures import MARKED, curves_figure, heatmap_figure
from linlab.report.jobs import load_jobs
from linlab.run_state import hold_lock
from linlab.sweeps.hparams import FINAL_METRICS
from linlab.train import config_dir

TIMING = {"wall_time_s"}


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> dict[str, Sweep]:
    started = start_all(tmp_path_factory.mktemp("sweeps"))
    launchers = {"sequential": "BasicLauncher", "joblib": "JoblibLauncher"}
    try:
        return {name: finish(*started[name], launchers.get(name)) for name in started}
    finally:
        for proc, _ in started.values():
            if proc.poll() is None:
                proc.kill()


def without_timing(results: dict) -> dict:
    return {k: v for k, v in results.items() if k not in TIMING}


def test_2x2_multirun_makes_named_jobs_results_and_hparams(sweeps):
    sweep = sweeps["sequential"]
    assert sweep.returncode == 0, sweep.stderr
    assert {p.name for p in sweep.folder.iterdir() if p.is_dir()} == GRID_NAMES
    results = sweep.results()
    assert set(results) == GRID_NAMES
    sessions = hparams_sessions(sweep.folder)
    assert set(sessions) == GRID_NAMES  # one TensorBoard run per job, named by the folder
    for name, session in sessions.items():
        lr, batch_size = re.fullmatch(r"lr=(.+),batch_size=(\d+)", name).groups()
        assert session["optimizer.lr"] == float(lr) == results[name]["lr"]
        # integers as numbers: batch sizes sort 16 < 64 in the dashboard
        assert session["data.batch_size"] == float(batch_size) == results[name]["batch_size"]
        assert session["seed"] == 0 and session["trainer.max_epochs"] == 2
        assert session["Status"] == "ok"
        assert session["optimizer"] == "sgd" and session["model"] == "linear"
        assert math.isclose(session["final/val_loss"], results[name]["val_loss"], rel_tol=1e-6)
        assert math.isclose(session["final/test_loss"], results[name]["test_loss"], rel_tol=1e-6)
        assert "hp_metric" not in session["scalar tags"]
        assert "final/epochs" not in session["scalar tags"]  # one-off: the text tab
        # distance to the true parameters, computed here from results.json
        r = results[name]
        squares = sum((w - t) ** 2 for w, t in zip(r["weights"], r["true_weights"], strict=True))
        distance = math.sqrt(squares + (r["bias"] - r["true_bias"]) ** 2)
        assert math.isclose(session["final/param_distance"], distance, rel_tol=1e-6)


def test_sweep_console_is_a_header_a_line_per_job_and_a_closing_block(sweeps):
    sweep = sweeps["sequential"]
    results = sweep.results()
    shown = sweep.folder.relative_to(sweep.folder.parents[1])  # as Hydra was given it
    lines = sweep.stdout.splitlines()
    assert len(lines) == 1 + 4 + 3, sweep.stdout
    assert lines[0] == f"sweep {shown}: 4 jobs, launcher basic"
    line = re.compile(r"\[(\d)/4\] (\S+)  val_loss (\S+)  ok  [\d.]+ s")
    jobs = [line.fullmatch(text) for text in lines[1:5]]
    assert all(jobs), lines[1:5]
    assert [int(m[1]) for m in jobs] == [1, 2, 3, 4]
    assert {m[2] for m in jobs} == GRID_NAMES
    assert all(float(m[3]) == pytest.approx(results[m[2]]["val_loss"], rel=1e-3) for m in jobs)
    best = min(results, key=lambda name: results[name]["val_loss"])
    assert re.fullmatch(r"done: 4 jobs \(4 ok\) in [\d.]+ s", lines[5])
    assert lines[6] == f"best: {best} (val_loss {results[best]['val_loss']:.6g})"
    assert lines[7] == f"next: linlab-report {shown}"
    assert "#0 :" not in sweep.stderr and "Launching" not in sweep.stderr


def test_two_sweeps_in_the_same_second_get_their_own_folders(sweeps):
    sequential, parallel = sweeps["sequential"], sweeps["joblib"]
    assert sequential.folder.parent == parallel.folder.parent
    id_of = re.compile(r"same-second_([0-9a-f]{6})")
    assert id_of.fullmatch(sequential.folder.name) and id_of.fullmatch(parallel.folder.name)
    assert sequential.folder != parallel.folder
    # every joblib worker agreed on its launch's id: all four jobs in the one folder
    assert len(list(parallel.folder.glob("*/results.json"))) == 4


def test_default_sweep_folder_is_date_time_and_id(sweeps):
    name = sweeps["failing"].folder.name
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_[0-9a-f]{6}", name), name


def test_joblib_two_workers_give_the_sequential_results(sweeps):
    sequential, parallel = sweeps["sequential"], sweeps["joblib"]
    assert parallel.returncode == 0, parallel.stderr
    assert "n_jobs=2" in parallel.stdout + parallel.stderr
    seq, par = sequential.results(), parallel.results()
    assert set(par) == GRID_NAMES
    assert {k: without_timing(v) for k, v in par.items()} == {
        k: without_timing(v) for k, v in seq.items()
    }
    # the jobs ran in worker processes: event files are named ...<host>.<pid>.<n>
    pids = {p.name.split(".")[-2] for p in parallel.folder.glob("*/events.out.tfevents.*")}
    assert len(pids) >= 2
    seq_hp, par_hp = hparams_sessions(sequential.folder), hparams_sessions(parallel.folder)
    for name in GRID_NAMES:
        assert par_hp[name]["final/val_loss"] == seq_hp[name]["final/val_loss"]


def test_submitit_local_runs_the_shipped_slurm_settings(sweeps):
    sweep = sweeps["submitit"]
    assert sweep.returncode == 0, sweep.stderr
    results = sweep.results()
    assert set(results) == {"lr=0.01", "lr=0.1"}
    assert list(sweep.folder.glob(".submitit/*/*_log.out"))
    # the tasks' own lines go to their logs; the launching process prints one per job
    lines = sorted(ln.split()[1] for ln in sweep.stdout.splitlines() if ln.startswith("["))
    assert lines == ["lr=0.01", "lr=0.1"], sweep.stdout
    reference = sweeps["sequential"].results()
    for lr in ("0.01", "0.1"):
        assert without_timing(results[f"lr={lr}"]) == without_timing(
            reference[f"lr={lr},batch_size=16"]
        )


def test_slurm_config_composes_for_the_slurm_launcher():
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", ["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition is None and launcher.array_parallelism == 64
    assert launcher.submitit_folder.endswith("/.submitit/%j")


def test_preset_sweep_over_seed_and_precision(sweeps):
    sweep = sweeps["preset"]
    assert sweep.returncode == 0, sweep.stderr
    results = sweep.results()
    assert len(results) == 3 * 2 * 2  # batch sizes from conf/sweep/lr_batch.yaml
    assert {r["batch_size"] for r in results.values()} == {8, 64, 512}
    assert {(r["seed"], r["precision"]) for r in results.values()} == {
        (s, p) for s in (0, 1) for p in ("32-true", "64-true")
    }
    assert all(r["lr"] == 0.1 and r["status"] == "ok" for r in results.values())
    by = {(r["seed"], r["precision"], r["batch_size"]): r for r in results.values()}
    single, double = by[(0, "32-true", 8)], by[(0, "64-true", 8)]
    assert single["true_weights"] == double["true_weights"]
    assert single["weights"] != double["weights"]  # float64 really ran: not bit-equal
    assert max(abs(a - b) for a, b in zip(single["weights"], double["weights"], strict=True)) < 1e-4
    assert by[(0, "32-true", 8)]["true_weights"] != by[(1, "32-true", 8)]["true_weights"]
    name = next(iter(results))
    assert re.fullmatch(r"(lr=0\.1,batch_size=\d+,seed=\d,precision=\d\d-true)", name), name


def test_failed_and_diverged_jobs_do_not_stop_the_sweep(sweeps):
    sweep = sweeps["failing"]
    results = sweep.results()
    statuses = {name: r["status"] for name, r in results.items()}
    assert statuses == {
        "lr=0.05,batch_size=16": "ok",
        "lr=0.05,batch_size=32": "failed",
        "lr=10000.0,batch_size=16": "diverged",
        "lr=10000.0,batch_size=32": "diverged",
    }
    failed = results["lr=0.05,batch_size=32"]
    assert failed["message"] == "RuntimeError: FragileModule fails at lr=0.05, batch_size=32"
    assert sweep.returncode == 1
    log = sweep.folder / "lr=0.05,batch_size=32" / "train.log"
    shown = log.relative_to(sweep.folder.parents[1])  # as the sweep folder was given: relative
    assert sweep.stdout.strip().splitlines()[-1] == f"1 of 4 jobs failed; logs: {shown}"
    assert "Traceback" in log.read_text() and "Traceback" not in sweep.stdout + sweep.stderr
    sessions = hparams_sessions(sweep.folder)
    assert {name: s["Status"] for name, s in sessions.items()} == statuses
    assert "failed: RuntimeError: FragileModule fails at lr=0.05, batch_size=32" in sweep.stdout


def test_report_on_a_partly_failed_sweep(sweeps, capsys):
    folder = sweeps["failing"].folder
    main([str(folder)])
    out = capsys.readouterr().out
    assert "best: lr=0.05,batch_size=16" in out
    results = sweeps["failing"].results()
    with (folder / "report.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["job"] == "lr=0.05,batch_size=16"
    assert [r["status"] for r in rows] == ["ok", "diverged", "diverged", "failed"]
    for row in rows:
        expected = results[row["job"]]
        for key in ("val_loss", "test_loss", "train_loss", "lr", "wall_time_s"):
            value = expected.get(key)
            assert row[key] == ("" if value is None else repr(value)), (row["job"], key)
        assert row["status"] == expected["status"] and row["batch_size"] == str(
            expected["batch_size"]
        )
    markdown = (folder / "report.md").read_text()
    assert "| job |" in markdown and markdown.count("| lr=") == 4
    assert "report_heatmap.png" in markdown
    for png in ("report_heatmap.png", "report_curves.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the heatmap marks diverged and failed cells with their own colour and hatch
    figure = heatmap_figure(load_jobs(folder), [])
    hatches = {p.get_hatch() for p in figure.axes[0].patches}
    assert {MARKED["diverged"][1], MARKED["failed"][1]} <= hatches
    # and each diverged job's val-loss curve ends in a red cross
    lines = curves_figure(load_jobs(folder), []).axes[0].get_lines()
    crosses = {line.get_label() for line in lines if line.get_marker() == "X"}
    assert crosses == {"lr=10000, batch 16: diverged", "lr=10000, batch 32: diverged"}


def test_report_draws_a_line_per_other_varied_key(sweeps, capsys):
    main([str(sweeps["preset"].folder)])
    out = capsys.readouterr().out
    # batch size is the one numeric key varied besides seed: a line per precision
    assert "figures: final val loss over data.batch_size, one line per trainer.precision" in out
    assert (sweeps["preset"].folder / "report_line.png").is_file()
    assert "over seeds: val_loss" in out
    rows = list(csv.DictReader((sweeps["preset"].folder / "report.csv").open()))
    assert len(rows) == 12


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_report_refuses_bad_input_with_one_line(tmp_path, capsys, make):
    folder = tmp_path / "sweep"
    if make == "empty":
        folder.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main([str(folder)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(folder) in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_tensorboard_server_serves_the_sweeps_hparams_experiment(sweeps, tmp_path):
    """The experiment summary the sweep wrote: final/* metrics only (report.value first), the
    swept keys marked as differing and ticked, batch sizes as numbers."""
    folder = tmp_path / "sweep"
    shutil.copytree(sweeps["sequential"].folder, folder)
    results = sweeps["sequential"].results()
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(folder)]
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/data"
    try:
        deadline, runs = time.monotonic() + 60, []
        while time.monotonic() < deadline and not set(GRID_NAMES) <= set(runs):
            try:
                runs = http_json(f"{base}/runs")
            except OSError:
                time.sleep(0.5)
        assert set(GRID_NAMES) <= set(runs)
        experiment = http_json(f"{base}/plugin/hparams/experiment", {"experimentName": ""})
        infos = {h["name"]: h for h in experiment["hparamInfos"]}
        assert {n for n, h in infos.items() if h.get("differs")} == {
            "optimizer.lr",
            "data.batch_size",
        }
        assert infos["data.batch_size"]["type"] == "DATA_TYPE_FLOAT64"  # 16 < 64 as numbers
        assert infos["data.batch_size"]["domainInterval"] == {"minValue": 16, "maxValue": 64}
        # the dashboard ticks the first five after moving the varying ones first
        # (TensorBoard 2.21's tf-hparams-query-pane: sort by differs, then Math.min(5, n))
        ticked = sorted(experiment["hparamInfos"], key=lambda h: not h.get("differs"))[:5]
        assert {"optimizer.lr", "data.batch_size", "Status"} <= {h["name"] for h in ticked}
        metrics = [m["displayName"] for m in experiment["metricInfos"]]
        assert metrics[0] == "final/val_loss" and set(metrics) <= set(FINAL_METRICS)
        # read from value/* scalars, which sort after the loss curves in the Scalars tab
        tag_names = [m["name"]["tag"] for m in experiment["metricInfos"]]
        assert tag_names == [m.replace("final/", "value/") for m in metrics]
        scalar_tags = {t for tag_names in http_json(f"{base}/plugin/scalars/tags").values()
                       for t in tag_names}  # fmt: skip
        assert {
            tags.param("b"),
            tags.TRAIN_LOSS,
            tags.VAL_LOSS,
        } <= scalar_tags  # scalars, not metrics
        groups = http_json(
            f"{base}/plugin/hparams/session_groups",
            {
                "experimentName": "",
                "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_UNKNOWN"],
                "colParams": [],
                "startIndex": 0,
                "sliceSize": 100,
            },
        )["sessionGroups"]
        assert {g["name"] for g in groups} == GRID_NAMES
        for group in groups:
            expected = results[group["name"]]
            assert group["hparams"]["optimizer.lr"] == expected["lr"]
            assert group["hparams"]["data.batch_size"] == expected["batch_size"]
            val = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
            assert math.isclose(val[tags.value("val_loss")], expected["val_loss"], rel_tol=1e-6)
    finally:
        server.kill()
        server.wait(timeout=10)


@pytest.mark.skipif(not browser_available(), reason="needs chromium and chromedriver")
def test_a_headless_browser_shows_the_hparams_table_and_scalars_opening_on_curves(sweeps):
    """What a person sees: the HParams and Scalars tabs, drawn by chromium from a real
    TensorBoard server."""
    folder = sweeps["sequential"].folder
    events = EventMultiplexer().AddRunsFromDirectory(str(folder))
    events.Reload()
    tag_names = {t for run in events.Runs().values() for t in run["scalars"]}
    groups = {tag.split("/", 1)[0] for tag in tag_names}  # the Scalars tab's chart groups
    pages = tab_pages(
        folder,
        {
            "hparams": lambda texts: set(GRID_NAMES) <= set(texts),
            "scalars": lambda texts: groups <= set(texts),
        },
    )
    texts, png = pages["hparams"]
    assert set(GRID_NAMES) <= set(texts), texts  # one row per job
    header = texts[texts.index("Trial ID") + 2 : texts.index(sorted(GRID_NAMES)[0])]
    assert {"Status", "data.batch_size", "optimizer.lr"} <= set(header[:5])
    assert next(t for t in header if t.startswith("final/")) == "final/val_loss"
    assert not {tags.param("b"), tags.TRAIN_LOSS, tags.VAL_LOSS, "epoch"} & set(
        texts
    )  # no scalar tags
    assert {"16.000", "64.000"} <= set(texts)  # batch sizes as numbers
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    texts, _ = pages["scalars"]
    shown = list(dict.fromkeys(t for t in texts if t in groups))  # group headings, in order
    assert set(shown) == groups and {"loss", "value"} <= groups, texts
    # the loss curves first, the one-point final values last; no final/* charts
    assert shown[0] == "loss" and shown[-1] == "value" and "final" not in texts
    assert chart_titles(texts)[0] == tags.TRAIN_LOSS


def test_report_reads_a_sweep_still_running(sweeps, tmp_path, capsys):
    folder = tmp_path / "running"
    shutil.copytree(sweeps["sequential"].folder, folder)
    (folder / "lr=0.1,batch_size=64" / "results.json").unlink()
    with hold_lock(folder):  # running: a live process holds the sweep folder's lock
        main([str(folder)])
    out = capsys.readouterr().out
    assert "4 jobs (3 ok, 1 running)" in out
    rows = list(csv.DictReader((folder / "report.csv").open()))
    assert rows[-1]["job"] == "lr=0.1,batch_size=64" and rows[-1]["status"] == "running"
