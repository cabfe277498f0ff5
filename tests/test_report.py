"""``linlab-report`` on sweep folders written here (job folders as Hydra and linlab leave them):
the figure chosen from what varied, the sweep's ``report.value``, numeric order."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import metadata

from linlab import tags
from linlab.report.cli import main
from linlab.sweeps.hparams import write_experiment

FEATURES = (300, 10, 100, 25, 50)  # string order would be 10, 100, 25, 300, 50


def write_sweep(root: Path, jobs: dict[str, dict], value: str | None = None) -> Path:
    """A sweep folder: per job ``.hydra/overrides.yaml`` and (if given) ``results.json``;
    ``multirun.yaml`` with the sweep's ``report.value``."""
    root.mkdir()
    config = {"report": {"value": value}} if value else {}
    OmegaConf.save(OmegaConf.create(config), root / "multirun.yaml")
    for name, (overrides, results) in jobs.items():
        hydra_dir = root / name / ".hydra"
        hydra_dir.mkdir(parents=True)
        OmegaConf.save(OmegaConf.create(overrides), hydra_dir / "overrides.yaml")
        job_config = OmegaConf.from_dotlist(overrides)  # the job's config, as Hydra saves it
        OmegaConf.save(OmegaConf.merge(config, job_config), hydra_dir / "config.yaml")
        hydra = {"hydra": {"overrides": {"task": overrides}, "runtime": {"choices": {}}}}
        OmegaConf.save(OmegaConf.create(hydra), hydra_dir / "hydra.yaml")
        if results is not None:
            (root / name / "results.json").write_text(json.dumps(results))
    return root


def risk(d: int, seed: int) -> float:
    return 1.0 / (1.0 + abs(d - 100)) + 0.001 * seed


@pytest.fixture
def double_descent(tmp_path) -> Path:
    """All ok, no validation split, the value named by the preset."""
    jobs = {}
    for d in FEATURES:
        for seed in (0, 1):
            results = {"status": "ok", "val_loss": None, "train_loss": 0.1,
                       "theory": {"excess_population_risk": risk(d, seed)}}  # fmt: skip
            jobs[f"n_features={d},seed={seed}"] = (
                [f"data.n_features={d}", f"seed={seed}"],
                results,
            )
    return write_sweep(tmp_path / "sweep", jobs, "excess_population_risk")


def test_the_sweeps_value_ranks_names_the_best_and_picks_a_line_plot(double_descent, capsys):
    main([str(double_descent)])
    out = capsys.readouterr().out
    best = min(((d, s) for d in FEATURES for s in (0, 1)), key=lambda p: risk(*p))
    name = f"n_features={best[0]},seed={best[1]}"
    assert f"best: {name} (excess_population_risk {risk(*best):.6g})" in out
    assert "figures: final excess population risk over data.n_features" in out
    rows = list(csv.DictReader((double_descent / "report.csv").open()))
    by_value = sorted(((d, s) for d in FEATURES for s in (0, 1)), key=lambda p: risk(*p))
    assert [r["job"] for r in rows] == [f"n_features={d},seed={s}" for d, s in by_value]
    assert [float(r["excess_population_risk"]) for r in rows] == [risk(*p) for p in by_value]
    assert (double_descent / "report_line.png").read_bytes()[:4] == b"\x89PNG"
    assert not (double_descent / "report_heatmap.png").exists()
    # over seeds: one row per number of features, ranked by the mean risk
    over = out.split("over seeds: excess_population_risk")[1].splitlines()[3:8]
    means = sorted(FEATURES, key=lambda d: risk(d, 0) + risk(d, 1))
    assert [int(line.split()[0]) for line in over] == means


def test_jobs_without_the_value_are_listed_in_numeric_order(tmp_path, capsys):
    jobs = {f"n_features={d}": ([f"data.n_features={d}"], None) for d in FEATURES}
    folder = write_sweep(tmp_path / "sweep", jobs)  # every job still running
    main([str(folder)])
    table = capsys.readouterr().out.split("\n\n")[1].splitlines()[1:]
    assert [int(line.split()[1]) for line in table] == sorted(FEATURES)


def test_a_value_no_job_recorded_is_refused_before_anything_is_written(double_descent, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(double_descent), "--value", "val_accuracy"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "val_accuracy" in err and "excess_population_risk" in err
    assert not list(double_descent.glob("report*"))


def test_the_sweeps_hparams_experiment_names_its_value_first_and_what_varied(double_descent):
    write_experiment(double_descent, "excess_population_risk")
    events = EventMultiplexer().AddRunsFromDirectory(str(double_descent))
    events.Reload()
    content = events.PluginRunToTagToContent(metadata.PLUGIN_NAME)["."]
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    metrics = [m.display_name for m in experiment.metric_infos]
    assert metrics == ["final/excess_population_risk", "final/train_loss"]  # what the jobs have
    tag_names = [m.name.tag for m in experiment.metric_infos]
    assert tag_names == [
        tags.value("excess_population_risk"),
        tags.value("train_loss"),
    ]  # their scalars
    differs = {h.name for h in experiment.hparam_infos if h.differs}
    assert differs == {"data.n_features", "seed"}
    features = next(h for h in experiment.hparam_infos if h.name == "data.n_features")
    domain = features.domain_interval
    assert (domain.min_value, domain.max_value) == (min(FEATURES), max(FEATURES))


def test_an_older_runs_loss_tags_are_read_under_todays_names(tmp_path):
    """A run written before the loss tags moved under ``loss/``, then resumed by today's
    linlab: its curve is one curve, its steps in order."""
    from torch.utils.tensorboard import SummaryWriter

    from linlab.report.figures import val_curve
    from linlab.report.jobs import Job
    from linlab.scalars import read_scalars

    folder = tmp_path / "lr=0.1"
    with SummaryWriter(str(folder), filename_suffix=".old") as writer:
        for step, value in [(10, 0.5), (20, 0.25)]:
            writer.add_scalar("val/loss", value, step)
            writer.add_scalar("train/loss", 2 * value, step)
    with SummaryWriter(str(folder), filename_suffix=".resumed") as writer:
        writer.add_scalar(tags.VAL_LOSS, 0.125, 30)
    curves = read_scalars(folder)
    assert curves == {
        tags.VAL_LOSS: {10: 0.5, 20: 0.25, 30: 0.125},
        tags.TRAIN_LOSS: {10: 1.0, 20: 0.5},
    }
    assert val_curve(Job(folder, {"optimizer.lr": 0.1}, {"status": "ok"})) == [0.5, 0.25, 0.125]


def test_a_large_sweep_prints_its_best_rows_and_writes_every_row(tmp_path, capsys):
    """40 lrs × 2 seeds: the console shows the 30 best jobs and the 30 best settings and says
    where the rest are; report.csv and report.md hold every job and every setting."""
    lrs = [float(f"{0.001 * 1.2**i:.4g}") for i in range(40)]  # as the console shows them

    def loss(lr: float, seed: int) -> float:
        return (math.log(lr) - math.log(0.05)) ** 2 + 0.01 * seed

    jobs = {
        f"lr={lr},seed={seed}": (
            [f"optimizer.lr={lr}", f"seed={seed}"],
            {"status": "ok", "val_loss": loss(lr, seed)},
        )
        for lr in lrs
        for seed in (0, 1)
    }
    folder = write_sweep(tmp_path / "sweep", jobs)
    main([str(folder)])
    out = capsys.readouterr().out
    by_loss = sorted(jobs, key=lambda name: jobs[name][1]["val_loss"])
    table = out.split("\n\n")[1].splitlines()
    assert [line.split()[0] for line in table[1:31]] == by_loss[:30]
    assert table[31:] == [f"... 50 more jobs in {folder / 'report.csv'}"]
    assert [r["job"] for r in csv.DictReader((folder / "report.csv").open())] == by_loss
    over = out.split("per setting\n\n")[1].split("\n\n")[0].splitlines()
    by_mean = sorted(lrs, key=lambda lr: loss(lr, 0) + loss(lr, 1))
    assert [float(line.split()[0]) for line in over[1:31]] == by_mean[:30]
    assert over[31:] == [f"... 10 more settings in {folder / 'report.md'}"]
    over_md = (folder / "report.md").read_text().split("## over seeds")[1]
    rows = [line.split("|")[1] for line in over_md.splitlines() if line.startswith("| ")]
    assert sorted(map(float, rows[1:])) == lrs  # after the header row


def test_a_killed_sweep_of_many_jobs_names_the_first_100_problems_and_writes_all(tmp_path, capsys):
    """120 job folders without results.json and no live process (a stacked sweep killed after
    making its members' folders): 100 problem lines, one line for the rest, all in report.md."""
    jobs = {f"lr={i}": ([f"optimizer.lr={i}"], None) for i in range(1, 121)}
    folder = write_sweep(tmp_path / "sweep", jobs)
    main([str(folder)])
    out = capsys.readouterr().out
    reason = "no results.json and no live process: stopped before writing it"
    named = [line.split(":")[0] for line in out.splitlines() if line.endswith(reason)]
    assert len(named) == 100 and set(named) < set(jobs)
    assert f"... 20 more jobs with a problem in {folder / 'report.md'}" in out.splitlines()
    listed = (folder / "report.md").read_text().split("## Jobs with a problem")[1]
    assert sorted(line[2:].split(":")[0] for line in listed.strip().splitlines()) == sorted(jobs)


def test_curves_of_hundreds_of_settings_show_an_even_spread_and_the_best(tmp_path):
    """101 lrs (one more than CURVES_MAX): 25 curves, the first and last lr among them, evenly
    spaced in lr order, the best drawn thick and named in the legend; the title says so."""
    from test_figure_layout import assert_readable, draw_quietly, make_job

    from linlab.report.figures import CURVES_MAX, curves_figure

    lrs = [float(f"{10 ** (-3 + 3 * i / CURVES_MAX):.5g}") for i in range(CURVES_MAX + 1)]
    best = lrs[42]  # not on the even spread of 24 over 101 (every 100/23th)
    jobs = [
        make_job(tmp_path, str(i), lr, 16, "ok", [1.0, 0.01 if lr == best else 0.5 + lr])
        for i, lr in enumerate(lrs)
    ]
    drawn = draw_quietly(lambda: curves_figure(jobs, []))
    assert_readable(drawn)
    ax = drawn[0].axes[0]
    lines = [line for line in ax.get_lines() if line.get_marker() == "."]
    shown = [float(line.get_label().split("=")[1].split(",")[0]) for line in lines]
    assert len(lines) == 25 and shown == sorted(shown)
    assert shown[0] == lrs[0] and shown[-1] == lrs[-1] and best in shown
    gaps = {b - a for a, b in itertools.pairwise(lrs.index(lr) for lr in shown if lr != best)}
    assert max(gaps) - min(gaps) <= 1  # evenly spaced
    (thick,) = [line for line in lines if line.get_label().startswith("best: ")]
    assert thick.get_ydata()[-1] == pytest.approx(0.01)
    assert thick.get_label() in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_title().endswith(
        f"25 of {CURVES_MAX + 1} settings: evenly spaced in lr, and the best"
    )
    assert not ax.collections  # no bands: means only
