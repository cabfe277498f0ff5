"""A stacked group's checkpoint cut into one checkpoint per member, and put back together.

Member k's slice is exactly what its separate run saves: ``model.*`` from
``model.members.<k>.*``, param group k of the optimiser (and its state), entry k of the
scheduler's per-group lists, member k's callbacks and its ``linlab`` state; the loops' progress
is the group's. A member that stopped (diverged, pruned) keeps its own ``epoch`` and
``global_step``, those of its single run where it stopped (``member_progress``). So
``<job>/checkpoints/last.ckpt`` of a stacked member resumes as a single run (``ckpt_path=last``)
too, and a killed group resumes from its members' files, at the step of a member still training.

The members' files of one save are written all or none (:class:`GroupSave`): a kill between
two members' saves would leave them an epoch apart, and the group would resume the members
behind at the others' step.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from linlab.results import write_json_atomic

MEMBER_PREFIX = "model.members."
NEXT = ".next"  # a member's checkpoint written, waiting for the group's commit
COMMIT = "group-commit.json"  # beside the first member's checkpoints: the saves being renamed
SHARED = ("epoch", "global_step", "pytorch-lightning_version", "loops", "hyper_parameters")


def member_progress(epoch: int, global_step: int, state: dict[str, Any]) -> tuple[int, int]:
    """Member's ``(epoch, global_step)`` at the group's: a stopped member's single run ended at
    ``stopped_step``, and counts the epoch it stopped in as done once that epoch has ended
    (``stopped_epoch`` is that epoch + 1)."""
    if state.get("stopped_step") is None:
        return epoch, global_step
    return min(epoch, state["stopped_epoch"]), state["stopped_step"]


def member_state_dicts(state_dict: dict[str, Any], n_members: int) -> list[dict[str, Any]]:
    """Each member's ``model.*`` entries (``model.members.<k>.*`` renamed), in one pass over
    the group's state dict: a member's save need not scan the other members' entries. Each
    is a copy: a member's parameter is a row of one tensor of all members' (see
    ``linlab.stacking.models``), and ``torch.save`` of a row writes the whole tensor."""
    members: list[dict[str, Any]] = [{} for _ in range(n_members)]
    for key, value in state_dict.items():
        if key.startswith(MEMBER_PREFIX):
            index, _, name = key.removeprefix(MEMBER_PREFIX).partition(".")
            members[int(index)]["model." + name] = (
                value.clone() if isinstance(value, torch.Tensor) else value
            )
    return members


def member_checkpoint(
    full: dict[str, Any], k: int, n_members: int, state_dict: dict[str, Any]
) -> dict[str, Any]:
    """Member ``k``'s checkpoint from the group's (see the module docstring); ``state_dict`` is
    its entry of ``member_state_dicts(full["state_dict"], n_members)``."""
    member = {key: full[key] for key in SHARED if key in full}
    if "epoch" in full:
        progress = member_progress(full["epoch"], full["global_step"], full["linlab_members"][k])
        member["epoch"], member["global_step"] = progress
    member["state_dict"] = state_dict
    member["optimizer_states"] = [_optimizer_slice(s, k) for s in full.get("optimizer_states", [])]
    member["lr_schedulers"] = [
        _scheduler_slice(s, k, n_members) for s in full.get("lr_schedulers", [])
    ]
    member["callbacks"] = full.get("callbacks", {}).get("members", [{}] * n_members)[k]
    member["linlab"] = full["linlab_members"][k]
    return member


def merge_checkpoints(members: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The group's checkpoint from its members' (the inverse of ``member_checkpoint``): the
    shared progress is that of a member furthest on, which is one still training if any is."""
    furthest = max(members, key=lambda m: (m.get("global_step", 0), m.get("epoch", 0)))
    group = {key: furthest[key] for key in SHARED if key in furthest}
    group["state_dict"] = {
        f"{MEMBER_PREFIX}{k}." + key.removeprefix("model."): value
        for k, m in enumerate(members)
        for key, value in m["state_dict"].items()
    }
    group["optimizer_states"] = [
        _merge_optimizers([m["optimizer_states"][i] for m in members])
        for i in range(len(members[0].get("optimizer_states", [])))
    ]
    group["lr_schedulers"] = [
        _merge_schedulers([m["lr_schedulers"][i] for m in members])
        for i in range(len(members[0].get("lr_schedulers", [])))
    ]
    group["callbacks"] = {"members": [m.get("callbacks", {}) for m in members]}
    group["linlab"] = members[0]["linlab"]
    group["linlab_members"] = [m["linlab"] for m in members]
    return group


def _optimizer_slice(state: dict[str, Any], k: int) -> dict[str, Any]:
    group = copy.copy(state["param_groups"][k])
    ids = group["params"]
    group["params"] = list(range(len(ids)))
    return {
        "state": {new: state["state"][old] for new, old in enumerate(ids) if old in state["state"]},
        "param_groups": [group],
    }


def _merge_optimizers(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"state": {}, "param_groups": []}
    offset = 0
    for state in states:
        for group in state["param_groups"]:
            ids = group["params"]
            merged["param_groups"].append({**group, "params": [offset + i for i in ids]})
            merged["state"] |= {offset + i: v for i, v in state["state"].items()}
            offset += len(ids)
    return merged


def _scheduler_slice(state: dict[str, Any], k: int, n_members: int) -> dict[str, Any]:
    """Per-group entries (``base_lrs``, ``_last_lr``, ...) are lists of one value per group."""
    return {
        key: [value[k]] if isinstance(value, list) and len(value) == n_members else value
        for key, value in state.items()
    }


def _merge_schedulers(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: [s[key][0] for s in states] if isinstance(value, list) and len(value) == 1 else value
        for key, value in states[0].items()
    }


def merged_resume_checkpoint(ckpt_path: str, run_dirs: Sequence[Path]) -> Path:
    """``ckpt_path=last`` for a group: the members' ``last.ckpt`` merged into one file that
    Lightning resumes from (``checkpoints/group-resume.ckpt`` in the first member's folder)."""
    if ckpt_path != "last":
        raise ValueError(
            f"ckpt_path={ckpt_path} names one file, but a stacked group resumes each member "
            "from its own folder: use ckpt_path=last"
        )
    settle(run_dirs)
    files = [Path(d) / "checkpoints" / "last.ckpt" for d in run_dirs]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"ckpt_path=last: no checkpoint at {', '.join(missing)}")
    members = [torch.load(f, map_location="cpu", weights_only=True) for f in files]
    merged = files[0].with_name("group-resume.ckpt")
    torch.save(merge_checkpoints(members), merged)
    return merged


class GroupSave:
    """The members' checkpoints of one hook, saved all or none, as a journal does: each is
    written beside its file (``last.ckpt.next``, itself written atomically); once all are, a
    record of them is written, then each is renamed onto its file and the record removed. A
    kill before the record leaves every member's previous checkpoint; a kill after it is
    finished by :func:`settle` before the group resumes."""

    def __init__(self, record: Path) -> None:
        self.record = record
        self.saves: list[Path] | None = None  # collected from ``start`` to ``commit``

    def start(self) -> None:
        self.saves = []

    def abandon(self) -> None:
        """Collect no more; what was written waits beside its file until ``settle`` drops it."""
        self.saves = None

    def target(self, path: str | Path) -> Path:
        """Where a member's checkpoint for ``path`` is written: beside it until the commit
        while collecting, else in place (a save outside a dispatched hook)."""
        if self.saves is None:
            return Path(path)
        self.saves.append(Path(path))
        return Path(f"{path}{NEXT}")

    def commit(self) -> None:
        saved = dict.fromkeys(self.saves or [])  # a file saved twice in one hook: its last save
        self.saves = None
        written = [p for p in saved if Path(f"{p}{NEXT}").is_file()]  # (not on a full disk)
        if not written:
            return
        write_json_atomic(self.record, {"renames": [str(p) for p in written]})
        for path in written:
            os.replace(f"{path}{NEXT}", path)
        self.record.unlink()


def settle(run_dirs: Sequence[Path]) -> None:
    """Before a group resumes: finish the renames of a save whose record was written, and
    drop the checkpoints of a save that never got that far (the members keep the previous)."""
    for run_dir in run_dirs:
        record = Path(run_dir) / "checkpoints" / COMMIT
        if record.is_file():
            for path in json.loads(record.read_text())["renames"]:
                if Path(f"{path}{NEXT}").is_file():
                    os.replace(f"{path}{NEXT}", path)
            record.unlink()
    for run_dir in run_dirs:
        for unfinished in (Path(run_dir) / "checkpoints").glob(f"*{NEXT}"):
            unfinished.unlink()
