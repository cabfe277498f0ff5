"""TensorBoard opens a run on its training loss: the default tab and the Scalars tab, drawn
by a real headless chromium from a real TensorBoard server."""

from __future__ import annotations

import pytest
from browser import browser_available, card_groups, chart_titles, tab_pages
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from linlab import tags


@pytest.mark.skipif(not browser_available(), reason="needs chromium and chromedriver")
def test_the_default_and_scalars_tabs_open_on_the_training_loss(train_in, tmp_path):
    train_in(["trainer.max_epochs=2", "callbacks.figures.enabled=true"])
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    scalars, images = events.Tags()["scalars"], events.Tags()["images"]
    assert {tags.TRAIN_LOSS, tags.VAL_LOSS, tags.param("b")} <= set(scalars) and images
    pages = tab_pages(
        tmp_path / "run",
        {"": lambda texts: bool(chart_titles(texts)), "scalars": lambda texts: "tag:" in texts},
    )
    default, scalars_tab = (chart_titles(pages[tab][0]) for tab in ("", "scalars"))
    assert default[0] == tags.TRAIN_LOSS, default  # the Time Series tab
    assert set(default) <= {*scalars, *images}, default  # (it draws cards as they scroll in)
    groups = card_groups(pages[""][0])  # its images sort in with the charts
    assert groups[0] == "loss" and set(groups) == {t.split("/")[0] for t in [*scalars, *images]}
    assert scalars_tab[0] == tags.TRAIN_LOSS, scalars_tab
    assert set(scalars_tab) <= set(scalars)
