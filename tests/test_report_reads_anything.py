"""The report reads any sweep folder without a traceback: a generated set of corruptions.

One real job folder (from ``linlab-train -m``) is copied once per corruption into a sweep
folder with its plan (``sweep.json``); each copy is broken in its own way, and one report reads
them all. Each job must get the status the corruption calls for, the reason where it is
unreadable, no cell showing a value of the wrong type, and "varied" only the key the plan varies.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import QUIET, run_cli

from linlab.report.cli import report
from linlab.report.jobs import load_jobs, ranked, varied_keys
from linlab.report.tables import METRIC_COLUMNS, table_rows
from linlab.run_state import hold_lock

NUMBERS = ("val_loss", "train_loss", "bias", "wall_time_s")
INTEGERS = ("epochs", "steps")
WRONG_NUMBER = ("abc", "nan", [1.0], {"a": 1}, True)
WRONG = {
    **{key: WRONG_NUMBER for key in NUMBERS},
    **{key: (1.5, "3", [2], False) for key in INTEGERS},
    "status": (["ok"], "finished", None, 1, {"ok": True}),
    "message": (3, ["a"]),
    "weights": ("abc", [1.0, "x"], {"0": 1.0}, 2.0),
    "theory": ("abc", [1.0], {"n_train": "x"}),
}


def write(path: Path, text: str | bytes) -> None:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def set_value(key: str, value: object) -> Callable[[Path], None]:
    def corrupt(job: Path) -> None:
        results = json.loads((job / "results.json").read_text())
        results[key] = value
        write(job / "results.json", json.dumps(results))

    return corrupt


def drop_status(job: Path) -> None:
    results = json.loads((job / "results.json").read_text())
    del results["status"]
    write(job / "results.json", json.dumps(results))


def replace_results(text: str | bytes) -> Callable[[Path], None]:
    return lambda job: write(job / "results.json", text)


def truncate_results(job: Path) -> None:
    text = (job / "results.json").read_bytes()
    write(job / "results.json", text[: len(text) // 2])


def results_is_a_folder(job: Path) -> None:
    (job / "results.json").unlink()
    (job / "results.json").mkdir()


def remove_results(job: Path) -> None:
    (job / "results.json").unlink()


def interrupted_without_record(job: Path) -> None:
    (job / "results.json").unlink()
    (job / "checkpoints").mkdir(exist_ok=True)
    write(job / "checkpoints" / "interrupted.ckpt", b"")


def overrides_text(text: str) -> Callable[[Path], None]:
    return lambda job: write(job / ".hydra" / "overrides.yaml", text)


def remove_hydra(job: Path) -> None:
    shutil.rmtree(job / ".hydra")


def garbage_events(job: Path) -> None:
    for events in job.glob("events.*"):
        write(events, events.read_bytes()[:37] + b"\x00garbage" * 50)


# name -> (corruption, expected status, what the job's reason must say)
CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str, str | None]] = {
    f"{key}={json.dumps(bad)}": (set_value(key, bad), "unreadable", f"{key} is ")
    for key, values in WRONG.items()
    for bad in values
}
CORRUPTIONS |= {
    "no status": (drop_status, "unreadable", "has no status"),
    "a list": (replace_results("[1, 2]"), "unreadable", "holds a list"),
    "null": (replace_results("null"), "unreadable", "holds a null"),
    "a number": (replace_results("3"), "unreadable", "holds a int"),
    "empty": (replace_results(""), "unreadable", "JSONDecodeError"),
    "half": (truncate_results, "unreadable", "JSONDecodeError"),
    "binary": (replace_results(b"\xff\xfe\x00\x01"), "unreadable", "results.json"),
    "a folder": (results_is_a_folder, "unreadable", "IsADirectoryError"),
    "removed": (remove_results, "interrupted", "no results.json and no live process"),
    "ctrl-c": (interrupted_without_record, "interrupted", "no results.json"),
    "overrides broken": (overrides_text("[: : ["), "ok", "overrides.yaml"),
    "overrides a dict": (overrides_text("a: 1\n"), "ok", "overrides.yaml"),
    "overrides malformed": (overrides_text("- optimizer.lr==\n"), "ok", "overrides.yaml"),
    "overrides removed": (lambda job: (job / ".hydra" / "overrides.yaml").unlink(), "ok", None),
    "no .hydra": (remove_hydra, "ok", None),
    "events garbage": (garbage_events, "ok", None),
}
ALLOWED = {"ok", "diverged", "failed", "pruned", "interrupted", "pending", "unreadable", "running"}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """One finished job folder of a real sweep."""
    tmp = tmp_path_factory.mktemp("report")
    tiny = [*QUIET, "data.n_samples=100", "trainer.max_epochs=2", "callbacks=none"]
    run_cli(["-m", *tiny, "optimizer.lr=0.01", f"hydra.sweep.dir={tmp / 'real'}"], cwd=tmp)
    (job,) = (p.parent for p in (tmp / "real").glob("*/results.json"))
    assert json.loads((job / "results.json").read_text())["status"] == "ok"
    return job


def job_copy(template: Path, sweep: Path, lr: str) -> Path:
    """``template`` as the job of ``optimizer.lr=<lr>``, as that sweep would have written it."""
    job = sweep / f"lr={lr}"
    shutil.copytree(template, job)
    write(job / ".hydra" / "overrides.yaml", f"- optimizer.lr={lr}\n")
    results = json.loads((job / "results.json").read_text())
    write(job / "results.json", json.dumps({**results, "lr": float(lr)}))
    return job


def test_every_corruption_is_a_status_with_its_reason(template, tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    names = {f"1e-{i + 1:03d}": name for i, name in enumerate(CORRUPTIONS)}
    names["0.5"] = "intact"
    names["0.6"] = "running"  # no results.json while a live process holds the job's lock
    for lr, name in names.items():
        job = job_copy(template, sweep, lr)
        if name in CORRUPTIONS:
            CORRUPTIONS[name][0](job)
    remove_results(sweep / "lr=0.6")
    plan = [{"folder": f"lr={lr}", "overrides": [f"optimizer.lr={lr}"]} for lr in names]
    plan.append({"folder": "lr=0.7", "overrides": ["optimizer.lr=0.7"]})  # not started
    write(sweep / "sweep.json", json.dumps({"jobs": plan}))

    with hold_lock(sweep / "lr=0.6"):
        text = report(sweep)
        jobs = {job.name: job for job in load_jobs(sweep)}
    assert "varied: optimizer.lr\n" in text
    assert jobs["lr=0.5"].status == "ok" and jobs["lr=0.6"].status == "running"
    assert jobs["lr=0.7"].status == "pending"
    for lr, name in names.items():
        job = jobs[f"lr={lr}"]
        assert job.status in ALLOWED
        assert job.overrides == {"optimizer.lr": float(lr)}, name
        if name not in CORRUPTIONS:
            continue
        _, status, reason = CORRUPTIONS[name]
        assert job.status == status, (name, job.results)
        if reason is not None:
            assert reason in (job.problem or ""), (name, job.problem)
            assert f"lr={lr}: " in text, name  # the reason is printed
    unreadable = [j for j in jobs.values() if j.status in ("unreadable", "interrupted")]
    for row in table_rows(ranked(unreadable), ["optimizer.lr"]):
        shown = {c: row[c] for c in METRIC_COLUMNS if c != "status"}
        assert set(shown.values()) == {None}, row  # no value of a broken record is shown
    assert (sweep / "report.md").is_file() and (sweep / "report_curves.png").is_file()


@pytest.mark.parametrize(
    "plan",
    [
        "{",
        "[]",
        json.dumps({"jobs": 3}),
        json.dumps({"jobs": [3, {"folder": 5, "overrides": "x"}]}),
    ],
)
def test_a_broken_plan_still_reads(template, tmp_path, plan):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    for lr in ("0.1", "0.2"):
        job_copy(template, sweep, lr)
    remove_hydra(sweep / "lr=0.2")  # its overrides would have to come from the plan
    write(sweep / "sweep.json", plan)
    jobs = load_jobs(sweep)
    assert {j.name: j.status for j in jobs if j.status != "pending"} == {
        "lr=0.1": "ok",
        "lr=0.2": "ok",
    }
    assert varied_keys(jobs) == []  # only one job's overrides are known: nothing varies
