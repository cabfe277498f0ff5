"""Time linlab's training loop in several precisions, next to a plain PyTorch loop.

    python scripts/bench_precision.py --n 10000000 --d 1024                 # on a GPU
    python scripts/bench_precision.py --n 20000 --d 64 --accelerator cpu    # a quick check

The data are drawn on the device in float32 (10M x 1024 is 40 GB: too big to make on the host
in float64 and copy), so only the training loop is timed: one warm-up epoch, then ``--epochs``
timed epochs of minibatch SGD. ``plain`` is the same loop without Lightning, under the same
autocast (and a GradScaler for 16-mixed).

``of bound`` is the memory-bandwidth bound over the measured epoch time: an epoch must read the
float32 data at least once, n * d * 4 bytes, and the device copies memory at most at the rate a
large device-to-device copy reaches (measured here, counting bytes read and written).
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import lightning as L
import torch

from linlab.data.batches import TensorBatches
from linlab.losses import MSELoss
from linlab.models import LinearRegression
from linlab.module import RegressionModule
from linlab.train import quiet_lightning

AUTOCAST = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}


def make_data(n: int, d: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, d, device=device, generator=gen)
    beta = torch.randn(d, device=device, generator=gen)
    return x, x @ beta + 0.1 * torch.randn(n, device=device, generator=gen)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def copy_bandwidth(device: str, gib: int = 2) -> float:
    """Bytes per second a large copy moves on the device (read + write), best of five."""
    src = torch.empty(gib * 2**30, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(5):
        sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() / best


def time_linlab(x, y, args, precision: str) -> tuple[float, float]:
    module = RegressionModule(
        LinearRegression(x.shape[1], init="zeros"),
        MSELoss(),
        partial(torch.optim.SGD, lr=args.lr),
        log_params_limit=0,
    )
    batches = TensorBatches(x, y, batch_size=args.batch_size, shuffle=True, chunk_batches=64)
    trainer = L.Trainer(
        accelerator=args.accelerator,
        devices=1,
        precision=precision,
        max_epochs=1 + args.epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=10**9,
    )
    timer = EpochTimer(x.device.type)
    trainer.callbacks.append(timer)
    trainer.fit(module, train_dataloaders=batches)
    with torch.no_grad():
        loss = float(MSELoss()(module.model.to(x.device, x.dtype)(x[:100_000]), y[:100_000]))
    return timer.seconds_after_warmup() / args.epochs, loss


class EpochTimer(L.Callback):
    def __init__(self, device: str) -> None:
        self.device, self.starts = device, []

    def on_train_epoch_start(self, trainer, module) -> None:
        sync(self.device)
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer, module) -> None:
        sync(self.device)
        self.starts.append(time.perf_counter())

    def seconds_after_warmup(self) -> float:
        return self.starts[-1] - self.starts[1]


def time_plain(x, y, args, precision: str) -> float:
    """w -= lr * grad per minibatch, the same shuffled order, autocast as the precision says."""
    device = x.device.type
    w = torch.zeros(x.shape[1], device=x.device, requires_grad=True)
    b = torch.zeros((), device=x.device, requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=args.lr)
    scaler = torch.amp.GradScaler(device, enabled=precision == "16-mixed")
    dtype = AUTOCAST.get(precision)
    for epoch in range(1 + args.epochs):
        if epoch == 1:
            sync(device)
            start = time.perf_counter()
        order = torch.randperm(len(y), device=x.device)
        for i in range(0, len(y) - args.batch_size + 1, args.batch_size):
            index = order[i : i + args.batch_size]
            with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = MSELoss()(x[index] @ w + b, y[index])
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    sync(device)
    return (time.perf_counter() - start) / args.epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--d", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--accelerator", default="gpu")
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed", "16-mixed"])
    args = parser.parse_args()
    quiet_lightning()
    device = "cuda" if args.accelerator == "gpu" else args.accelerator
    x, y = make_data(args.n, args.d, device)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"# {name}, torch {torch.__version__}, lightning {L.__version__}")
    bandwidth = copy_bandwidth(device)
    bound_s = args.n * args.d * 4 / bandwidth
    print(f"# n={args.n} d={args.d} batch={args.batch_size} epochs={args.epochs} (+1 warm-up)")
    print(f"# copy bandwidth {bandwidth / 1e12:.2f} TB/s; reading the data once: {bound_s:.4f} s")
    print("precision    linlab s/epoch  plain s/epoch  linlab/plain  Msamples/s  of bound  loss")
    for precision in args.precisions:
        linlab_s, loss = time_linlab(x, y, args, precision)
        plain_s = time_plain(x, y, args, precision)
        print(
            f"{precision:<12} {linlab_s:>14.3f} {plain_s:>14.3f} {linlab_s / plain_s:>13.2f}"
            f" {args.n / linlab_s / 1e6:>11.1f} {bound_s / linlab_s:>9.0%}  {loss:.4g}"
        )


if __name__ == "__main__":
    main()
