"""``results.json``: the machine-readable record of one run, written atomically, read checked.

Every reader (``linlab-report``, ``linlab.load_sweep``, a sweep's console and its resume) reads
through :func:`read_results_if_any`, which hands back a record whose known keys have the types
the run writes (:data:`SCHEMA`), or ``{"status": "unreadable", "message": <why>}``: a value of
the wrong type is never shown, compared or computed with.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from omegaconf._utils import OmegaConfDumper, get_omega_conf_dumper, get_yaml_loader
from yaml.cyaml import CEmitter, CParser

from linlab.config_values import unresolved

RESULTS_FILE = "results.json"
TIMING_KEYS = ("wall_time_s",)
UNREADABLE = "unreadable"
FINISHED = ("ok", "diverged", "pruned")  # a run that ended by itself: a result to keep
STATUSES = (*FINISHED, "failed", "interrupted")  # what a run writes


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(map(_number, value))


def _theory(value: Any) -> bool:
    return isinstance(value, dict) and all(
        _number(v) or isinstance(v, bool) or v is None or _numbers(v) for v in value.values()
    )


_NUMBER = ("a number or null", _number)  # NaN too: the parameters of a NaN start
_INTEGER = ("an integer or null", _integer)


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


_TEXT = ("a string or null", _is_text)
SCHEMA: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "status": (", ".join(STATUSES), lambda v: isinstance(v, str) and v in STATUSES),
    **dict.fromkeys(("train_loss", "val_loss", "test_loss", "last_finite_loss"), _NUMBER),
    **dict.fromkeys(("bias", "true_bias", "lr", "noise", "wall_time_s"), _NUMBER),
    **dict.fromkeys(("param_distance", "target_val_loss"), _NUMBER),
    **dict.fromkeys(("epochs", "steps", "diverged_at_step", "steps_to_target"), _INTEGER),
    **dict.fromkeys(("batch_size", "seed", "n_samples", "n_features", "max_epochs"), _INTEGER),
    **dict.fromkeys(("message", "precision", "accelerator", "optimizer", "model"), _TEXT),
    **dict.fromkeys(("loss", "data"), _TEXT),
    **dict.fromkeys(("weights", "true_weights"), ("a list of numbers or null", _numbers)),
    "theory": ("an object of numbers and lists of numbers", _theory),
    "warnings": ("a list of strings", lambda v: isinstance(v, list) and all(map(_is_text, v))),
}


def type_problem(results: dict[str, Any]) -> str | None:
    """The first key of :data:`SCHEMA` whose value has the wrong type, said in one line."""
    if "status" not in results:
        return "has no status"
    for key, (allowed, fits) in SCHEMA.items():
        value = results.get(key)
        if key in results and (key == "status" or value is not None) and not fits(value):
            shown = json.dumps(value, allow_nan=True)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            return f"{key} is {shown}; allowed: {allowed}"
    return None


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file beside ``path`` and rename it: readers never see half a file.

    ``mkstemp`` makes the file 0600; it gets the mode a plain ``open`` would give (0666 less
    the umask), so a colleague who can read the folder can read the results too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "w") as f:  # one write: ``json.dump`` writes each token
            f.write(json.dumps(data, indent=2, allow_nan=True) + "\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process's umask, from ``/proc`` where there is one (``os.umask`` can only swap it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_results(run_dir: Path | str) -> dict[str, Any]:
    return json.loads((Path(run_dir) / RESULTS_FILE).read_text())


def read_results_if_any(run_dir: Path | str) -> dict[str, Any]:
    """``results.json`` of a job that may still be running (or never started): ``{}`` then.

    A file that exists but cannot be used (no permission, broken JSON, not a JSON object, a
    value of the wrong type) reads as ``{"status": "unreadable", "message": <why>}``: it is
    neither running nor a result.
    """
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        return {}
    try:
        results = read_results(run_dir)
    except (OSError, ValueError) as error:
        return {"status": UNREADABLE, "message": f"{path}: {type(error).__name__}: {error}"}
    if not isinstance(results, dict):
        kind = "null" if results is None else type(results).__name__
        return {"status": UNREADABLE, "message": f"{path}: holds a {kind}, not a JSON object"}
    if (problem := type_problem(results)) is not None:
        return {"status": UNREADABLE, "message": f"{path}: {problem}"}
    return results


class _SavedConfigLoader(CParser, get_yaml_loader()):  # type: ignore[misc]
    """OmegaConf's YAML rules (``1e-3`` is a float, no duplicate keys, no timestamps) on
    libyaml's C parser instead of PyYAML's pure-Python one."""

    def __init__(self, stream: Any) -> None:
        CParser.__init__(self, stream)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


def read_saved_config(path: Path) -> Any:
    """A YAML file a run saved (``.hydra/*.yaml``) as the plain values ``OmegaConf.load``
    would wrap (``OmegaConf.create`` of it is ``OmegaConf.load(path)``); ``{}`` when empty.
    A sweep's summary and ``linlab-report`` read one per job, 10,000 in a large sweep."""
    with open(path, encoding="utf-8") as f:
        loaded = yaml.load(f, Loader=_SavedConfigLoader)
    return {} if loaded is None else loaded


class _SavedConfigDumper(CEmitter, OmegaConfDumper):
    """OmegaConf's YAML writer (``OmegaConf.to_yaml``: its quoting of strings) on libyaml's C
    emitter, which writes the same text as the pure-Python one: 1024 members save 3072 files."""

    def __init__(self, stream: Any, **options: Any) -> None:
        emitter = ("canonical", "indent", "width", "allow_unicode", "line_break", "encoding")
        emitter += ("explicit_start", "explicit_end", "version", "tags")
        CEmitter.__init__(self, stream, **{k: options.get(k) for k in emitter})
        representer = ("default_style", "default_flow_style", "sort_keys")
        yaml.representer.Representer.__init__(self, **{k: options[k] for k in representer})
        yaml.resolver.Resolver.__init__(self)


def save_config(cfg: Any, filename: str, output_dir: Path) -> None:
    """Hydra's ``_save_config`` (``.hydra/config.yaml`` and the others), byte for byte."""
    GroupConfigs().save(cfg, filename, output_dir)


class GroupConfigs:
    """``save_config`` for the members of a stacked group, whose configs differ in a few values
    (``seed``, ``optimizer.lr``; in ``hydra``: ``job.id``, ``runtime.output_dir``, the
    overrides): each entry (a key and its value, at any depth) is dumped once where it equals
    the same entry saved before, compared by ``repr`` (``1``, ``1.0`` and ``true`` dump apart);
    a mapping that differs is its key's line and its entries, each reused where it is equal.
    The YAML dump is ~2 ms a file, three files a member. An entry dumped alone at its place
    (its parents' keys above it) reads as in the whole file, so the entries join to the whole;
    a mapping is split only under a key whose line is the key alone (as it was dumped before:
    not quoted, not a ``?`` complex key), so that each parent is one line to drop."""

    def __init__(self) -> None:
        self._first: dict[tuple[Any, ...], tuple[str, str]] = {}  # path -> (repr, text)

    def save(self, cfg: Any, filename: str, output_dir: Path) -> Any:
        """Write the file; return the plain values written (what reading it back gives)."""
        container = unresolved(cfg, enum_to_str=True)  # ``to_container``'s, ~6x faster
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / filename).write_text(self._text(filename, container), encoding="utf-8")
        return container

    def _text(self, filename: str, container: Any) -> str:
        if not isinstance(container, dict) or not container:
            return _dump(container)
        return "".join(self._entry((filename,), (), key, v) for key, v in container.items())

    def _entry(self, path: tuple[Any, ...], parents: tuple[str, ...], key: Any, value: Any) -> str:
        """The lines of ``key: value`` at its place under ``parents`` (their lines left out)."""
        path, shown = (*path, key), repr(value)
        first = self._first.get(path)
        if first is not None and first[0] == shown:
            return first[1]
        line = first[1][: first[1].find("\n") + 1] if first is not None else ""
        if isinstance(value, dict) and value and line == f"{'  ' * len(parents)}{key}:\n":
            inner = (*parents, key)  # a mapping under a plain key: its line, then its entries
            return line + "".join(self._entry(path, inner, k, v) for k, v in value.items())
        for parent in reversed((*parents, key)):
            value = {parent: value}
        text = _dump(value).split("\n", len(parents))[-1]  # the parents' lines dropped
        self._first.setdefault(path, (shown, text))
        return text


def _dump(container: Any) -> str:
    get_omega_conf_dumper()  # OmegaConf's string quoting, registered on first use
    return yaml.dump(
        container,
        Dumper=_SavedConfigDumper,
        default_flow_style=False,
        allow_unicode=True,
        sort_keys=False,
        default_style=None,
    )


def param_distance(results: Mapping[str, Any]) -> float | None:
    """‖(w, b) − (w*, b*)‖₂ to the data's true parameters (a missing bias counts as 0).

    None when the data has no true parameters or the model is not weights-and-bias shaped.
    """
    true_w, w = results.get("true_weights"), results.get("weights")
    if true_w is None or w is None or len(true_w) != len(w):
        return None
    squares = sum((a - b) ** 2 for a, b in zip(w, true_w, strict=True))
    if results.get("true_bias") is not None:
        squares += ((results.get("bias") or 0.0) - results["true_bias"]) ** 2
    return math.sqrt(squares)
