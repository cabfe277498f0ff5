"""The report's Optuna view of a study's sweep folder: best trial, history, importances.

``linlab-report <sweep dir>`` calls :func:`optuna_view`; for a folder a search wrote (its
``multirun.yaml`` names ``hydra/sweeper=optuna``) it loads the study from its storage and
writes Optuna's own matplotlib figures beside the report: ``optuna_history.png`` (each
trial's objective and the best so far) and ``optuna_importances.png`` (how much each searched
key explains the objective; Optuna's default PED-ANOVA evaluator, from 2 finished trials on).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from linlab.search import settings, study

HISTORY_FILE = "optuna_history.png"
IMPORTANCES_FILE = "optuna_importances.png"


def optuna_view(sweep_dir: Path) -> list[str]:
    """Console lines of the view (none for a folder without a study); writes its PNGs."""
    sweeper = _sweeper_config(sweep_dir)
    if sweeper is None:
        return []
    try:
        import optuna
    except ImportError:
        return ["optuna: this folder holds a study; pip install 'linlab[search]' to read it"]
    storage = settings.storage_url(sweeper.get("storage"), sweep_dir)
    try:
        the_study = optuna.load_study(study_name=sweeper.study_name, storage=storage)
    except (KeyError, ValueError) as error:  # no study of that name (yet)
        return [f"optuna: no study {sweeper.study_name} in {storage} ({error})"]
    objectives = list(sweeper.objectives)
    lines = ["optuna: " + study.describe(the_study, objectives, sweep_dir)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        lines += _figures(optuna, the_study, objectives, sweep_dir)
    return lines


def _figures(optuna: Any, the_study: Any, objectives: list[str], sweep_dir: Path) -> list[str]:
    from optuna.trial import TrialState

    plots = optuna.visualization.matplotlib
    name = objectives[0]
    target = (lambda t: t.values[0]) if len(objectives) > 1 else None
    complete = the_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    written = [sweep_dir / HISTORY_FILE]
    history = plots.plot_optimization_history(the_study, target=target, target_name=name)
    if all(t.values[0] > 0 for t in complete):
        history.set_yscale("log")  # losses span decades
    _save(history, written[0])
    if len(complete) >= 2 and complete[0].params:
        written.append(sweep_dir / IMPORTANCES_FILE)
        axes = plots.plot_param_importances(the_study, target=target, target_name=name)
        _save(axes, written[1])
    return ["wrote " + ", ".join(map(str, written))]


def _save(axes: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure = axes.figure
    figure.set_size_inches(7, 4.5)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _sweeper_config(sweep_dir: Path) -> Any:
    """``hydra.sweeper`` of the sweep folder if it was a search, else None."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return None
    sweeper = OmegaConf.select(OmegaConf.load(path), "hydra.sweeper")
    return sweeper if settings.is_search(sweeper) else None
