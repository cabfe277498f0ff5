"""Each member of a stacked group seen as a run of its own, by the callbacks built for it.

A single run's callbacks (checkpoints, Ctrl-C, theory metrics, figures, a user's own) read
``trainer.datamodule``, ``trainer.loggers``, ``trainer.default_root_dir``,
``pl_module.model``, ``pl_module.status`` and save with ``trainer.save_checkpoint``.
``PerMemberCallbacks`` holds the callbacks built from each member's config and calls them
with a ``MemberTrainer`` and a ``MemberView`` that answer those for member k (its data, its
TensorBoard run, its folder, its model and status, its slice of the checkpoint); everything
else is the group's trainer and module. So every callback works per member unchanged.

A member that stopped (diverged, pruned) sees what its single run saw: its own ``global_step``
and ``current_epoch``, the end of the step (``on_train_batch_end``) and of the epoch it stopped
in, then only the end of training; its ``last.ckpt`` saves follow a clock of their own from
then on.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch

from linlab import tags
from linlab.callbacks.last_checkpoint import LastCheckpoint
from linlab.module import STOPPED, RegressionModule
from linlab.stacking.checkpoints import (
    COMMIT,
    GroupSave,
    member_checkpoint,
    member_progress,
    member_state_dicts,
)

log = logging.getLogger("linlab")
_MEMBER_FIELDS = ("status", "first_loss", "trajectory", "diverged_at_step", "val_loss")
# hooks of steps and epochs that a stopped member's run no longer takes
_STEP_HOOKS = ("on_train_batch_start", "on_train_batch_end", "on_train_epoch_start")
# hooks of the end of an epoch: a stopped member's run still ends the epoch it stopped in
_EPOCH_END_HOOKS = (
    "on_train_epoch_end",
    "on_validation_start",
    "on_validation_end",
    "on_validation_epoch_start",
    "on_validation_epoch_end",
)


class MemberView:
    """``pl_module`` as member k's callbacks see it."""

    def __init__(self, module: RegressionModule, k: int) -> None:
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_k", k)

    @property
    def model(self) -> torch.nn.Module:
        return self._module.member_model(self._k)

    def __getattr__(self, name: str) -> Any:
        if name in _MEMBER_FIELDS:
            return getattr(self._module.states[self._k], name)
        return getattr(self._module, name)

    def __setattr__(self, name: str, value: Any) -> None:
        target = self._module.states[self._k] if name in _MEMBER_FIELDS else self._module
        setattr(target, name, value)


class MemberTrainer:
    """``trainer`` as member k's callbacks see it."""

    def __init__(self, group: PerMemberCallbacks, trainer: L.Trainer, k: int) -> None:
        object.__setattr__(self, "_group", group)
        object.__setattr__(self, "_trainer", trainer)
        object.__setattr__(self, "_k", k)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trainer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "should_stop":
            if value:  # a callback stops its member (e.g. pruning); the group goes on
                self._group.module.stop_member(self._k)
            return
        setattr(self._trainer, name, value)

    @property
    def datamodule(self) -> Any:
        return self._group.datamodules[self._k]

    @property
    def current_epoch(self) -> int:
        return self._progress()[0]

    @property
    def global_step(self) -> int:
        return self._progress()[1]

    def _progress(self) -> tuple[int, int]:
        state = vars(self._group.module.states[self._k])
        return member_progress(self._trainer.current_epoch, self._trainer.global_step, state)

    @property
    def loggers(self) -> list[Any]:
        return self._group.module.loggers_of(self._k)

    @property
    def logger(self) -> Any:
        return next(iter(self.loggers), None)

    @property
    def default_root_dir(self) -> str:
        return str(self._group.run_dirs[self._k])

    @property
    def callback_metrics(self) -> dict[str, torch.Tensor]:
        value = self._group.module.states[self._k].val_loss
        return {} if value is None else {tags.VAL_LOSS: torch.tensor(value)}

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Each optimiser as member k's run has it: param group k alone."""
        views = []
        for optimizer in self._trainer.optimizers:
            view = object.__new__(type(optimizer))
            group = optimizer.param_groups[self._k]
            view.__dict__ = {**optimizer.__dict__, "param_groups": [group]}
            views.append(view)
        return views

    def save_checkpoint(
        self, filepath: str | Path, weights_only: bool = False, storage_options: Any = None
    ) -> None:
        full, state_dicts = self._group.full_checkpoint(weights_only)
        n_members = len(self._group.run_dirs)
        member = member_checkpoint(full, self._k, n_members, state_dicts[self._k])
        target = self._group.group_save.target(filepath)
        self._trainer.strategy.checkpoint_io.save_checkpoint(member, target, storage_options)


class PerMemberCallbacks(L.Callback):
    """Calls member k's callbacks with member k's trainer and module for every hook."""

    def __init__(
        self,
        callbacks: Sequence[Sequence[L.Callback]],
        module: RegressionModule,
        datamodules: Sequence[Any],
        run_dirs: Sequence[Path],
    ) -> None:
        self.callbacks = [list(c) for c in callbacks]
        spacing = [c for member in self.callbacks for c in member if isinstance(c, LastCheckpoint)]
        self.clock = spacing[0].clock if spacing else None
        for callback in spacing:  # one decision for all: their checkpoints hold the same step
            callback.clock = self.clock
        self.module, self.datamodules, self.run_dirs = module, list(datamodules), list(run_dirs)
        self._dump: dict[tuple[int, bool], tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        self._hook_positions: dict[str, list[tuple[int, ...]]] = {}
        self._member_views: tuple[L.Trainer, list[tuple[MemberTrainer, MemberView]]] | None = None
        self.group_save = GroupSave(Path(self.run_dirs[0]) / "checkpoints" / COMMIT)

    @property
    def state_key(self) -> str:
        return "members"

    def full_checkpoint(self, weights_only: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The group's checkpoint and its members' state dicts, made once per hook and shared
        by the members' saves."""
        key = (self.module.global_step, weights_only)
        if key not in self._dump:
            full = self.module.trainer._checkpoint_connector.dump_checkpoint(weights_only)
            self._dump = {key: (full, member_state_dicts(full["state_dict"], len(self.run_dirs)))}
        return self._dump[key]

    def _dispatch(
        self, hook: str, trainer: L.Trainer, pl_module: Any, *args: Any, **kwargs: Any
    ) -> None:
        """Member k's callbacks; one that raises fails member k alone and the others go on.

        Only the methods that override ``L.Callback``'s (which do nothing) are called: a hook
        that none of them takes costs no pass over the members, but a member stopped since the
        last hook still takes its own clock then (``_own_clock``), as at its turn in a pass.
        """
        self._dump = {}
        takers = self._takers(hook)
        if not takers:
            for k, state in enumerate(self.module.states):
                if state.status in STOPPED and state.status != "failed":
                    self._own_clock(k)
            return
        views = self._views(trainer)
        epoch = trainer.current_epoch
        self.group_save.start()  # the members' saves of this hook: all or none
        try:
            self._call_members(hook, takers, views, epoch, *args, **kwargs)
        except BaseException:
            self.group_save.abandon()
            raise
        self.group_save.commit()

    def _call_members(
        self,
        hook: str,
        takers: list[tuple[int, ...]],
        views: list[tuple[MemberTrainer, MemberView]],
        epoch: int,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        for k, positions in enumerate(takers):
            if not self._receives(k, hook, epoch) or not positions:
                continue
            member_trainer, member = views[k]
            callbacks = self.callbacks[k]
            try:
                for i in positions:
                    getattr(callbacks[i], hook)(member_trainer, member, *args, **kwargs)
            except Exception as error:
                if hook == "on_exception":
                    raise
                self._fail(k, error)

    def _takers(self, hook: str) -> list[tuple[int, ...]]:
        """Per member, the positions of its callbacks whose class overrides ``hook`` (found
        once, one tuple shared by members with the same classes: nothing long-lived per
        member); empty when no member's callback does."""
        if hook not in self._hook_positions:
            base = getattr(L.Callback, hook)
            shared: dict[tuple[type, ...], tuple[int, ...]] = {}
            positions = []
            for callbacks in self.callbacks:
                classes = tuple(type(c) for c in callbacks)
                if classes not in shared:
                    overriding = (i for i, c in enumerate(classes) if getattr(c, hook) is not base)
                    shared[classes] = tuple(overriding)
                positions.append(shared[classes])
            self._hook_positions[hook] = positions if any(positions) else []
        return self._hook_positions[hook]

    def _views(self, trainer: L.Trainer) -> list[tuple[MemberTrainer, MemberView]]:
        """Each member's trainer and module, made once per trainer (they hold no state)."""
        if self._member_views is None or self._member_views[0] is not trainer:
            views = [
                (MemberTrainer(self, trainer, k), MemberView(self.module, k))
                for k in range(len(self.callbacks))
            ]
            self._member_views = (trainer, views)
        return self._member_views[1]

    def _receives(self, k: int, hook: str, epoch: int) -> bool:
        """Whether member k's run still gets ``hook`` (a failed member's callbacks are done)."""
        state = self.module.states[k]
        if state.status not in STOPPED:
            return True
        if state.status == "failed":
            return False
        self._own_clock(k)
        if hook in _STEP_HOOKS:  # but the step it stopped in ends for its run too
            return hook == "on_train_batch_end" and self.module.global_step == state.stopped_step
        return hook not in _EPOCH_END_HOOKS or epoch < state.stopped_epoch

    def _own_clock(self, k: int) -> None:
        """A stopped member's saves are its own run's: at its own step, on its own clock
        (taken at its first hook after it stopped, before the others' saves of that epoch)."""
        for callback in self.callbacks[k]:
            if isinstance(callback, LastCheckpoint) and callback.clock is self.clock:
                callback.clock = copy.copy(self.clock)

    def _fail(self, k: int, error: Exception) -> None:
        state = self.module.states[k]
        state.status, state.message = "failed", f"{type(error).__name__}: {error}"
        log.error("member %s failed: %s", self.run_dirs[k].name, state.message)
        self.module.stop_member(k)

    def state_dict(self) -> list[dict[str, Any]]:
        return [{c.state_key: c.state_dict() for c in callbacks} for callbacks in self.callbacks]

    def load_state_dict(self, state_dict: list[dict[str, Any]]) -> None:
        for callbacks, states in zip(self.callbacks, state_dict, strict=True):
            for callback in callbacks:
                if callback.state_key in states:
                    callback.load_state_dict(states[callback.state_key])

    def results(self, k: int) -> dict[str, Any]:
        """What member k's callbacks add to its ``results.json``."""
        merged: dict[str, Any] = {}
        for callback in self.callbacks[k]:
            if hasattr(callback, "results"):
                merged |= callback.results()
        return merged


_HOOKS = (
    "setup",
    "teardown",
    "on_fit_start",
    "on_fit_end",
    "on_train_start",
    "on_train_end",
    "on_train_epoch_start",
    "on_train_epoch_end",
    "on_train_batch_start",
    "on_train_batch_end",
    "on_validation_start",
    "on_validation_end",
    "on_validation_epoch_start",
    "on_validation_epoch_end",
    "on_exception",
)


def _forwarding(hook: str):
    def forward(
        self: PerMemberCallbacks, trainer: L.Trainer, pl_module: Any, *args: Any, **kwargs: Any
    ) -> None:
        self._dispatch(hook, trainer, pl_module, *args, **kwargs)

    forward.__name__ = hook
    return forward


for _hook in _HOOKS:
    setattr(PerMemberCallbacks, _hook, _forwarding(_hook))
