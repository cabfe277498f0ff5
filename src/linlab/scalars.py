"""The one reader of a run folder's TensorBoard scalars, under today's tag names."""

from __future__ import annotations

from pathlib import Path

from linlab import tags


def read_scalars(folder: str | Path) -> dict[str, dict[int, float]]:
    """Every scalar tag of the event files directly in ``folder``: ``{tag: {step: value}}``.

    Steps are in increasing order; a step written twice (a resumed run) keeps its last value.
    Tags an older linlab wrote (``val/loss``) come under today's names (``loss/val``).
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not Path(folder).is_dir():  # a job not started yet
        return {}
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    curves: dict[str, dict[int, float]] = {}
    for tag in events.Tags()["scalars"]:
        curve = curves.setdefault(tags.current(tag), {})
        curve.update((e.step, e.value) for e in events.Scalars(tag))
    return {tag: dict(sorted(curve.items())) for tag, curve in curves.items()}
