"""Every TensorBoard scalar tag linlab writes, named in one place.

TensorBoard's Scalars and Time Series tabs put a tag in the group named by its part before the
first ``/`` and order groups and charts by the tags' natural sort (its ``compareTagNames``:
``/`` and numbers before letters). Nothing a writer can set changes that order (pinned cards
live in the browser, a custom-scalars layout is a tab of its own), so the names carry it:

=====================  =====================================================================
``loss/train``         training loss at θ_s, every ``trainer.log_every_n_steps`` steps
``loss/train_epoch``   mean training loss of each epoch's steps
``loss/val``           validation loss after each validation
``params/<name>``      the parameters (models with at most ``log_params_limit`` scalars)
``theory/<name>``      theory metrics (``linlab.callbacks.theory_metrics``)
``train|val/<name>``   a classifier's ``accuracy`` and ``margin`` on a split
``value/<key>``        the final values, one point at the last step (the HParams metrics)
``plots/<name>``       images of the run's figures (``figures/<name>.png``)
=====================  =====================================================================

``loss`` sorts before every other group, so a run opens on its loss curves (the Time Series
tab, TensorBoard's default, sorts images in with the charts: ``plots`` comes after ``loss``),
and ``value`` sorts last, so the one-point charts come after every curve. Runs written
before the loss tags moved under ``loss/`` are read under today's names (:func:`current`).
"""

from __future__ import annotations

LOSS_PREFIX = "loss/"
TRAIN_LOSS = "loss/train"
TRAIN_EPOCH_LOSS = "loss/train_epoch"
VAL_LOSS = "loss/val"
PARAMS_PREFIX = "params/"
THEORY_PREFIX = "theory/"
VALUE_PREFIX = "value/"
PLOTS_PREFIX = "plots/"
FORMER = {"train/loss": TRAIN_LOSS, "train/epoch_loss": TRAIN_EPOCH_LOSS, "val/loss": VAL_LOSS}


def param(name: str) -> str:
    """``params/w0``: the tag of one scalar parameter."""
    return PARAMS_PREFIX + name


def theory(name: str) -> str:
    """``theory/excess_loss``: the tag of one theory metric."""
    return THEORY_PREFIX + name


def split_metric(split: str, name: str) -> str:
    """``val/accuracy``: a classifier's metric on one split."""
    return f"{split}/{name}"


def value(key: str) -> str:
    """``value/val_loss``: the scalar of a final value (a results.json key)."""
    return VALUE_PREFIX + key


def plot(name: str) -> str:
    """``plots/fit``: the TensorBoard image of one of the run's figures (``figures/fit.png``)."""
    return PLOTS_PREFIX + name


def is_loss(tag: str) -> bool:
    """Whether a tag is one of the loss curves."""
    return tag.startswith(LOSS_PREFIX)


def current(tag: str) -> str:
    """A tag under today's name: an older run's ``val/loss`` reads as ``loss/val``."""
    return FORMER.get(tag, tag)
