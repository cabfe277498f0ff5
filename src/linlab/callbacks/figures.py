"""Lightning callback: draw a run's figures, log them to TensorBoard and save them as PNG.

``figures/fit`` (data and fitted line, or predicted against true), ``figures/loss_surface``
(loss contours over two parameters with the descent path, or loss against the single
parameter) and ``figures/curves`` (loss and parameters against epoch). Drawn at the end of fit
into ``<run folder>/figures/<name>.png``, and every ``every_n_epochs`` epochs into
``<name>_epoch<E>.png`` when asked. ``enabled=false`` turns it off (sweeps).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure
from matplotlib.image import imsave
from torch import Tensor, nn
from torch.func import functional_call

from linlab import plots, tags, theory
from linlab.params import flat_values
from linlab.unwritten import not_written

log = logging.getLogger("linlab")


class FigureLogger(L.Callback):
    """Draws the tutorial pictures for a run.

    Args:
        enabled: False draws nothing.
        every_n_epochs: also draw every k epochs (0: only at the end of fit).
        surface_params: the two parameter names the loss surface spans, e.g. ``[w0, w1]``;
            None: both parameters of a 2-parameter model, else the first two. The others are
            held at their final values.
        resolution: grid points per axis of the loss surface.
        max_samples: the surface's loss is evaluated on, and the fit figure shows, at most
            this many training samples (the first ones).
        folder: sub-folder of the run folder for the PNG files.
    """

    def __init__(
        self,
        enabled: bool = True,
        every_n_epochs: int = 0,
        surface_params: list[str] | None = None,
        resolution: int = 41,
        max_samples: int = 10_000,
        folder: str = "figures",
    ) -> None:
        check_settings(every_n_epochs, surface_params, resolution, max_samples, folder)
        self.enabled = enabled
        self.every_n_epochs = every_n_epochs
        self.surface_params = list(surface_params) if surface_params else None
        self.resolution = resolution
        self.max_samples = max_samples
        self.folder = folder
        self.epochs: list[int] = []
        self.snapshots: list[Tensor] = []  # flat parameters after each recorded epoch
        self.train_losses: list[float] = []  # their exact training losses, filled when drawing
        self.val: tuple[list[int], list[float]] = ([], [])

    def check_module(self, pl_module: L.LightningModule) -> None:
        """``surface_params`` must name two of the module's parameters (the config check
        calls this too, on the module built small)."""
        names = getattr(pl_module, "param_names", None)
        chosen = self.surface_params if self.enabled and names is not None else None
        if chosen is not None and set(chosen) - set(names):
            raise ValueError(
                f"callbacks.figures.surface_params={chosen} is not allowed; allowed: two of "
                f"this model's parameters: {', '.join(names)}"
            )

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled and "train" not in getattr(trainer.datamodule, "splits", {}):
            log.info("figures: off, the datamodule has no `splits` (LinearDataModule has)")
            self.enabled = False
        self.check_module(pl_module)
        if self.enabled:
            self._record(trainer, pl_module, trainer.current_epoch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled:
            return
        epoch = trainer.current_epoch + 1
        self._record(trainer, pl_module, epoch)
        if self.every_n_epochs and epoch % self.every_n_epochs == 0:
            self.draw(trainer, pl_module, suffix=f"_epoch{epoch}")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled:  # while model and data are still on the same device
            self._fill_train_losses(trainer, pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled:
            self.draw(trainer, pl_module)

    @torch.no_grad()
    def _record(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> None:
        """Epoch E: the parameters after E epochs, and the validation loss.

        Their exact training loss (a pass over the whole split, costing more than the rest of
        an epoch's bookkeeping) is computed for all recorded epochs at once, when drawing.
        """
        self.epochs.append(epoch)
        self.snapshots.append(flat_values(pl_module.model))
        val = trainer.callback_metrics.get(tags.VAL_LOSS)
        if val is not None and len(self.epochs) > 1:
            self.val[0].append(epoch)
            self.val[1].append(float(val))

    def _fill_train_losses(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pending = self.snapshots[len(self.train_losses) :]
        if pending:
            x, y = self._train_split(trainer)
            flats = torch.stack(pending).to(x.device)
            self.train_losses += losses_at(pl_module.model, pl_module.loss_fn, flats, x, y)

    @staticmethod
    def _train_split(trainer: L.Trainer) -> tuple[Tensor, Tensor]:
        return trainer.datamodule.splits["train"]

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule, suffix: str = "") -> None:
        """Draw and write each figure; one that cannot be drawn or written is a warning
        naming it (a run is never failed by its pictures), and leaves no partial file."""
        if not trainer.is_global_zero:
            return
        try:
            self._fill_train_losses(trainer, pl_module)
        except Exception as error:
            not_written(f"figures{suffix} (training losses)", error)
            return
        drawers = {
            "fit": lambda: self._fit(trainer, pl_module),
            "loss_surface": lambda: self._surface(trainer, pl_module),
            "curves": lambda: self._curves(trainer, pl_module),
        }
        folder = Path(trainer.default_root_dir) / self.folder
        for name, draw in drawers.items():
            path = folder / f"{name}{suffix}.png"
            try:
                pixels = plots.render(draw())
                save_png(path, pixels)
            except Exception as error:
                not_written(str(path), error)
                continue
            for logger in trainer.loggers:
                if isinstance(logger, TensorBoardLogger):
                    try:
                        logger.experiment.add_image(
                            tags.plot(name), pixels, trainer.global_step, dataformats="HWC"
                        )
                    except Exception as error:
                        not_written(f"TensorBoard image {tags.plot(name)}", error)

    @torch.no_grad()
    def _fit(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Figure:
        # after fit Lightning has moved the model back to the CPU; the data may be on a GPU
        x, y = (t[: self.max_samples].to(pl_module.device) for t in self._train_split(trainer))
        pred = pl_module.model(x)
        data = getattr(trainer.datamodule, "data", None)
        truth = None
        if data is not None and data.true_weights is not None:
            truth = (data.true_weights, data.true_bias or 0.0)
        return plots.fit_figure(*(_numpy(t) for t in (x, y, pred)), truth=truth)

    def _curves(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Figure:
        losses = {"train": (self.epochs, self.train_losses)}
        if self.val[0]:
            losses["val"] = self.val
        params = None
        if pl_module.track_params:
            columns = torch.stack(self.snapshots).double().cpu().T
            params = dict(zip(pl_module.param_names, columns.tolist(), strict=True))
        return plots.curves_figure(self.epochs, losses, params, true_values(trainer.datamodule))

    @torch.no_grad()
    def _surface(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Figure:
        names = pl_module.param_names
        chosen = self.surface_params or names[:2]
        index = [names.index(n) for n in chosen]
        final = flat_values(pl_module.model).double().cpu()
        path = np.array([p for _, _, p in pl_module.trajectory]).reshape(-1, len(names))
        # θ* lies on the plotted plane only when no other parameter is held fixed
        optimum = self._optimum(trainer, pl_module) if len(index) == len(names) else None
        loss = _LossOnGrid(pl_module, *self._train_split(trainer), self.max_samples)
        axes = [
            _axis(path[:, i], final[i].item(), None if optimum is None else optimum[i])
            for i in index
        ]
        axes = [np.linspace(lo, hi, self.resolution) for lo, hi in axes]
        if len(index) == 1:
            return plots.loss_curve_figure(
                axes[0],
                loss(final, index, axes[0]),
                chosen[0],
                path[:, index[0]],
                loss(final, index, path[:, index]),
                None if optimum is None else optimum[index[0]],
            )
        grid_a, grid_b = np.meshgrid(*axes)
        points = np.stack([grid_a.ravel(), grid_b.ravel()], axis=1)
        z = loss(final, index, points).reshape(grid_a.shape)
        note = "" if len(names) == 2 else " (other parameters at their final values)"
        return plots.surface_figure(
            grid_a,
            grid_b,
            z,
            (chosen[0], chosen[1]),
            path[:, index],
            None if optimum is None else [optimum[i] for i in index],
            note,
        )

    @staticmethod
    def _optimum(trainer: L.Trainer, pl_module: L.LightningModule) -> list[float] | None:
        """θ* in ``param_names`` order, for a linear model with a quadratic loss."""
        model = pl_module.model
        if not (hasattr(model, "w") and getattr(pl_module.loss_fn, "quadratic", False)):
            return None
        w_opt, b_opt = theory.least_squares(
            *FigureLogger._train_split(trainer), getattr(model, "b", None) is not None
        )
        return w_opt.tolist() + ([] if b_opt is None else [float(b_opt)])


class _LossOnGrid:
    """L(θ) on the training split (float64, CPU) at many θ that differ from ``base`` in a few
    flat entries; vectorised with ``torch.vmap`` over ``chunk`` points at a time."""

    def __init__(self, pl_module: L.LightningModule, x: Tensor, y: Tensor, max_samples: int):
        self.model, self.loss_fn = pl_module.model, pl_module.loss_fn
        self.x = x[:max_samples].double().cpu()
        self.y = y[:max_samples].double().cpu()

    def __call__(
        self, base: Tensor, index: list[int], values: np.ndarray, chunk: int = 256
    ) -> np.ndarray:
        if len(values) == 0:
            return np.zeros(0)
        flats = base.double().cpu().repeat(len(values), 1)
        flats[:, index] = torch.as_tensor(values, dtype=torch.float64).reshape(len(values), -1)
        return np.array(losses_at(self.model, self.loss_fn, flats, self.x, self.y, chunk))


@torch.no_grad()
def losses_at(
    model: nn.Module, loss_fn: nn.Module, flats: Tensor, x: Tensor, y: Tensor, chunk: int = 256
) -> list[float]:
    """The loss on ``(x, y)`` at each row of ``flats`` (flat parameter vectors, in
    ``named_parameters`` order), vectorised with ``torch.vmap`` over at most ``chunk`` rows and
    about 2**24 predictions at a time."""
    shapes = [(name, p.shape) for name, p in model.named_parameters()]

    def loss_at(flat: Tensor) -> Tensor:
        params, offset = {}, 0
        for name, shape in shapes:
            params[name] = flat[offset : offset + shape.numel()].view(shape)
            offset += shape.numel()
        return loss_fn(functional_call(model, params, (x,)), y)

    rows = max(1, min(chunk, 2**24 // max(1, y.numel())))
    batched = torch.vmap(loss_at)
    return torch.cat([batched(part) for part in flats.split(rows)]).tolist()


def check_settings(
    every_n_epochs: Any,
    surface_params: Any,
    resolution: Any,
    max_samples: Any,
    folder: Any,
) -> None:
    """Refuse settings no figure can be drawn with, in the config check's words
    (``callbacks.figures.<key>=<value> is not allowed; allowed: ...``)."""
    rules = (
        ("every_n_epochs", every_n_epochs, _is_int(every_n_epochs, 0), "an integer >= 0"),
        ("resolution", resolution, _is_int(resolution, 2), "an integer >= 2"),
        ("max_samples", max_samples, _is_int(max_samples, 1), "an integer >= 1"),
        ("folder", folder, isinstance(folder, str) and folder.strip() != "", "a folder name"),
        (
            "surface_params",
            surface_params,
            surface_params is None
            or (
                not isinstance(surface_params, str)
                and len(list(surface_params)) == 2
                and all(isinstance(p, str) for p in surface_params)
            ),
            "null or two parameter names, e.g. [w0, w1]",
        ),
    )
    for key, value, ok, allowed in rules:
        if not ok:
            raise ValueError(f"callbacks.figures.{key}={value} is not allowed; allowed: {allowed}")


def _is_int(value: Any, lowest: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= lowest


def save_png(path: Path, pixels: np.ndarray) -> None:
    """Write a PNG through a temporary file and a rename: never a partial or empty file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        imsave(partial, pixels, format="png")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def true_values(datamodule: L.LightningDataModule) -> dict[str, float] | None:
    """The data's true parameters by scalar name (``w0``, ``w1``, ..., ``b``), if it has them."""
    data = getattr(datamodule, "data", None)
    if data is None or data.true_weights is None:
        return None
    truth = {f"w{i}": float(w) for i, w in enumerate(data.true_weights)}
    if data.true_bias is not None:
        truth["b"] = float(data.true_bias)
    return truth


def _axis(path: np.ndarray, final: float, optimum: float | None) -> tuple[float, float]:
    """A range holding the path, the final value and the optimum, with a margin around them."""
    points = [*path.tolist(), final] + ([] if optimum is None else [optimum])
    points = [p for p in points if np.isfinite(p)] or [0.0]
    lo, hi = min(points), max(points)
    margin = max(0.25 * (hi - lo), 1.0)
    return lo - margin, hi + margin


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()
