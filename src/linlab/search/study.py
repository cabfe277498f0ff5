"""Open, resume and feed an Optuna study from the jobs' ``results.json``.

A trial is *finished* once the sweeper has told the study its job's outcome, and records it
in the trial's user attribute ``status`` (``ok``, ``pruned``, ``diverged``, ``failed``):

    ok                  → COMPLETE with the objective values read from results.json
    pruned, diverged    → PRUNED: the samplers that learn from pruned trials (TPE) learn that
                          the region is bad, from the val losses the job reported each epoch
    failed, no result   → FAIL

A trial still RUNNING when a sweep starts belonged to a killed sweep: told from its job's
``results.json`` if the job finished, else lost: marked FAIL with no ``status``, it does not
count towards ``n_trials``, so the study runs a new trial in its place.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

from linlab.search.settings import PRUNERS, SAMPLERS, TRIAL_KEY
from linlab.search.space import Dimension

if TYPE_CHECKING:
    import optuna

log = logging.getLogger("linlab")

STATUS_ATTR = "status"
MESSAGE_ATTR = "message"
LOST_MESSAGE = "the sweep was stopped while this trial ran; the study ran a new trial instead"


def make_sampler(
    name: str, seed: int | None, options: Mapping[str, Any], dimensions: Sequence[Dimension]
) -> optuna.samplers.BaseSampler:
    """The named sampler, seeded; the grid sampler's grid is the space's listed values."""
    import optuna

    cls = getattr(optuna.samplers, SAMPLERS[name])
    kwargs = dict(options)
    if name == "grid":
        kwargs.setdefault("search_space", {d.name: d.grid_values() for d in dimensions})
    if seed is not None and "seed" in inspect.signature(cls).parameters:
        kwargs.setdefault("seed", seed)
    return cls(**kwargs)


def make_pruner(name: str, options: Mapping[str, Any]) -> optuna.pruners.BasePruner:
    import optuna

    return getattr(optuna.pruners, PRUNERS[name])(**dict(options))


def open_study(
    storage: str,
    study_name: str,
    directions: Sequence[str],
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Create the study, or load it to continue it (same storage and name)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=list(directions),
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    wanted = [d.lower() for d in directions]
    found = [d.name.lower() for d in study.directions]
    if found != wanted:
        raise ValueError(
            f"study {study_name} in {storage} has directions {found}, not {wanted}: "
            "use another hydra.sweeper.study_name or hydra.sweep.dir"
        )
    return study


def check_continues(study: optuna.Study, distributions: Mapping[str, Any]) -> None:
    """Refuse a space whose choices differ from those the study already searched a key over
    (Optuna cannot change a categorical's choices within one study)."""
    from optuna.distributions import check_distribution_compatibility

    seen: dict[str, Any] = {}
    for trial in study.get_trials(deepcopy=False):
        seen |= trial.distributions
    for name, distribution in distributions.items():
        if name not in seen:
            continue
        try:
            check_distribution_compatibility(seen[name], distribution)
        except ValueError:
            raise ValueError(
                f"{name}: study {study.study_name} searched it over {seen[name]}, not "
                f"{distribution}; a continued study keeps each key's choices (start a new one "
                "with another hydra.sweep.dir or hydra.sweeper.study_name)"
            ) from None


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials whose outcome the study was told (lost trials excluded)."""
    return [t for t in study.get_trials(deepcopy=False) if STATUS_ATTR in t.user_attrs]


def recover_running_trials(
    study: optuna.Study, sweep_dir: Path, objectives: Sequence[str]
) -> list[int]:
    """Settle the trials a killed sweep left RUNNING; return the numbers of those lost.

    A trial whose job wrote its ``results.json`` before the kill is told from it, like any
    other; one without (it was running) is lost: FAIL, and its folder's ``results.json`` says
    ``interrupted``. Assumes no other process runs trials of this study right now.
    """
    import optuna
    from optuna.trial import TrialState

    # here, not at the top: results imports torch, and Hydra imports this plugin for --help too
    from linlab.results import RESULTS_FILE, read_results_if_any, write_json_atomic

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    folders = trial_folders(sweep_dir, [t.number for t in running])
    lost = []
    for frozen in running:
        folder = folders.get(frozen.number)
        results = read_results_if_any(folder) if folder else {}
        if results.get("status") not in (None, "interrupted"):
            tell(study, optuna.Trial(study, frozen._trial_id), results, objectives)
            continue
        lost.append(frozen.number)
        study.tell(frozen.number, state=TrialState.FAIL)
        if folder and not results:
            record = {TRIAL_KEY: frozen.number, "status": "interrupted", "message": LOST_MESSAGE}
            write_json_atomic(folder / RESULTS_FILE, record)
    return lost


def tell(
    study: optuna.Study, trial: optuna.Trial, results: Mapping[str, Any], objectives: Sequence[str]
) -> str:
    """Tell the study how the trial's job ended (see the module docstring); return its status."""
    from optuna.trial import TrialState

    status = results.get("status") or "failed"
    message = results.get("message") or ("" if results else "the job left no results.json")
    values = [results.get(key) for key in objectives]
    if status == "ok" and not all(_finite(v) for v in values):
        missing = [k for k, v in zip(objectives, values, strict=True) if not _finite(v)]
        status, message = "failed", f"results.json has no finite {', '.join(missing)}"
    trial.set_user_attr(STATUS_ATTR, status)
    if message:
        trial.set_user_attr(MESSAGE_ATTR, message)
    try:
        if status == "ok":
            study.tell(trial, [float(v) for v in values])
        elif status in ("pruned", "diverged"):
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, state=TrialState.FAIL)
    except RuntimeError as error:
        # The grid sampler calls study.stop() once its grid is used up, which only works inside
        # study.optimize(); the trial is stored all the same, and the sweeper stops by count.
        if "Study.stop" not in str(error):
            raise
    return status


def trial_folders(sweep_dir: Path, numbers: Sequence[int] | None = None) -> dict[int, Path]:
    """Job folders of a study's trials, by trial number (from each job's Hydra overrides)."""
    found = {}
    for folder in sorted(p.parent for p in Path(sweep_dir).glob("*/.hydra")):
        number = _trial_number(folder)
        if number is not None and (numbers is None or number in numbers):
            found[number] = folder
    return found


def _trial_number(folder: Path) -> int | None:
    path = folder / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return None
    for override in OmegaConf.load(path):
        key, _, value = str(override).partition("=")
        if key.lstrip("+") == TRIAL_KEY:
            return int(value)
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def best_known(the_study: optuna.Study) -> bool:
    """Whether a trial completed, so the study has a best trial (or a Pareto front)."""
    from optuna.trial import TrialState

    return bool(the_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def describe(the_study: optuna.Study, objectives: Sequence[str], sweep_dir: Path) -> str:
    """``study linlab: 16 trials (12 ok, 4 pruned); best trial 7 (<its folder>): val_loss ..``."""
    counts: dict[str, int] = {}
    for trial in finished(the_study):
        status = trial.user_attrs[STATUS_ATTR]
        counts[status] = counts.get(status, 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    head = f"study {the_study.study_name}: {sum(counts.values())} trials ({tally})"
    if not counts.get("ok"):
        return f"{head}; no trial finished ok"
    best = the_study.best_trials
    if len(objectives) > 1:
        numbers = ", ".join(str(t.number) for t in best)
        return f"{head}; Pareto front of {', '.join(objectives)}: trials {numbers}"
    trial = best[0]
    folder = trial_folders(sweep_dir, [trial.number]).get(trial.number)
    where = f" ({folder.name})" if folder else ""
    return f"{head}; best trial {trial.number}{where}: {objectives[0]} {trial.value:.6g}"
