"""Optimisers and schedulers from the config step exactly as the same torch objects in a loop."""

from __future__ import annotations

import pytest
import torch

from linlab.data.synthetic import gaussian


def plain_loop(make_optimizer, make_scheduler, epochs: int, batch_size: int) -> torch.Tensor:
    """Minibatches in data order (no shuffle), zero start, MSE."""
    data = gaussian(n_samples=40, n_features=3, noise=0.1, seed=5)
    x, y = data.x.float(), data.y.float()
    w = torch.zeros(3, requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    optimizer = make_optimizer([w, b])
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    for _ in range(epochs):
        for start in range(0, len(y), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            optimizer.zero_grad()
            ((xb @ w + b - yb) ** 2).mean().backward()
            optimizer.step()
        if scheduler:
            scheduler.step()
    return torch.cat([w.detach(), b.detach().view(1)])


COMMON = [
    "data=gaussian",
    "data.n_samples=40",
    "data.n_features=3",
    "data.val_fraction=0",
    "data.test_fraction=0",
    "data.shuffle=false",
    "data.batch_size=16",
    "model.init=zeros",
    "seed=5",
    "trainer.max_epochs=6",
]


@pytest.mark.parametrize(
    ("overrides", "make_optimizer", "make_scheduler"),
    [
        (
            [
                "optimizer=sgd",
                "optimizer.lr=0.1",
                "optimizer.momentum=0.9",
                "scheduler=step",
                "scheduler.step_size=2",
            ],
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
            lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
        ),
        (
            ["optimizer=adam", "optimizer.lr=0.05"],
            lambda p: torch.optim.Adam(p, lr=0.05),
            None,
        ),
        (
            ["optimizer=adamw", "optimizer.lr=0.05", "scheduler=cosine"],
            lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.01),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=6),
        ),
    ],
    ids=["sgd-momentum-step", "adam", "adamw-cosine"],
)
def test_configured_optimizer_matches_loop(train_in, overrides, make_optimizer, make_scheduler):
    results = train_in([*COMMON, *overrides])
    expected = plain_loop(make_optimizer, make_scheduler, epochs=6, batch_size=16)
    got = torch.tensor([*results["weights"], results["bias"]], dtype=torch.float32)
    assert torch.allclose(got, expected, atol=1e-6), (got, expected)
