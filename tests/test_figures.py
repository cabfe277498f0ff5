"""Every figure lands in the TensorBoard event file as an image and in the run folder as PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from linlab import tags
from linlab.callbacks.figures import losses_at
from linlab.losses import MSELoss
from linlab.models import LinearRegression

FIGURES = ("fit", "loss_surface", "curves")


def images(run_dir):
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    return {tag: events.Images(tag) for tag in events.Tags()["images"]}


def test_cost_surface_figures_at_the_end_and_every_k_epochs(train_in, tmp_path):
    train_in(["experiment=cost_surface", "callbacks.figures.every_n_epochs=8"])
    run_dir = tmp_path / "run"
    logged = images(run_dir)
    assert set(logged) == {tags.plot(name) for name in FIGURES}
    for name in FIGURES:
        # after epoch 8, and at the end of fit
        assert [e.step for e in logged[tags.plot(name)]] == [8, 15]
        final = logged[tags.plot(name)][-1]
        decoded = imread(io.BytesIO(final.encoded_image_string), format="png")
        assert decoded.shape[:2] == (final.height, final.width) and final.width >= 400
        png = imread(run_dir / "figures" / f"{name}.png")
        assert png.shape[:2] == (final.height, final.width)
        assert np.allclose(png[..., :3], decoded[..., :3], atol=1 / 255)
        assert png[..., :3].std() > 0.05  # something was drawn
        for epoch in (8,):
            assert (run_dir / "figures" / f"{name}_epoch{epoch}.png").is_file()


@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=multi_feature"],  # predicted-vs-true, surface over (w0, w1)
        ["experiment=minibatch_eye3", "callbacks.figures.surface_params=[w2,b]"],
    ],
)
def test_multi_feature_figures(train_in, tmp_path, overrides):
    train_in(overrides)
    assert set(images(tmp_path / "run")) == {tags.plot(name) for name in FIGURES}
    for name in FIGURES:
        assert (tmp_path / "run" / "figures" / f"{name}.png").stat().st_size > 10_000


def test_figures_off_switch_and_bad_surface_params(train_in, tmp_path):
    train_in(["experiment=line_1d", "callbacks.figures.enabled=false"])
    assert images(tmp_path / "run") == {}
    assert not (tmp_path / "run" / "figures").exists()
    with pytest.raises(ValueError, match=r"callbacks\.figures\.surface_params=\['w0', 'w9'\]"):
        train_in(["experiment=multi_feature", "callbacks.figures.surface_params=[w0,w9]"], "bad")


@pytest.mark.parametrize("n", [300, 70_000])  # 70k: several vmap chunks of ~2**24 predictions
def test_curve_losses_equal_the_loss_at_each_recorded_parameter_vector(n):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, generator=gen), torch.randn(n, generator=gen)
    flats = torch.randn(500, 4, generator=gen)  # rows of (w0, w1, w2, b)
    losses = losses_at(LinearRegression(3), MSELoss(), flats, x, y)
    expected = [((x @ f[:3] + f[3] - y) ** 2).mean().item() for f in flats]
    assert losses == pytest.approx(expected, rel=1e-5)
