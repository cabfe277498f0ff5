"""What one pass over each minibatch reaches on a GPU: the reference for the bandwidth target.

    python scripts/bench_one_pass_gpu.py                              # n=10M, d=1024, batch 65536
    python scripts/bench_one_pass_gpu.py --n 1000000 --d 256 --batch-size 8192

Minibatch SGD on least squares, ``w -= lr * 2/B * Xᵀ(Xw + b - y)``, as linlab's linear model
and MSE loss train it, but each step reads its B rows once: one Triton kernel gathers the rows
by index (or takes them in storage order), computes the residuals and the per-block partial
gradients, then two sums and the update. Autograd reads a minibatch twice (forward, backward)
and linlab's shuffled chunks add a gather (read + write), so its epoch cannot pass ~25% of the
bound below; this script measures how far a one-pass step gets, eagerly and captured as a CUDA
graph (no per-step launch cost), shuffled and in storage order. ``of bound`` is, as in
``bench_precision.py``, the time to read the float32 data once at the rate of a large
device-to-device copy, over the measured epoch.
"""

from __future__ import annotations

import argparse
import time

import torch
import triton
import triton.language as tl
from bench_precision import copy_bandwidth


@triton.jit
def _least_squares_step(
    X, INDEX, Y, W, B, G, GB, n_rows, D: tl.constexpr, BLOCK_M: tl.constexpr, GATHER: tl.constexpr
):
    """Partial gradients of one block of ``BLOCK_M`` rows: Σ r·x and Σ r, r = x·w + b - y."""
    block = tl.program_id(0)
    offsets = block * BLOCK_M + tl.arange(0, BLOCK_M)
    inside = offsets < n_rows
    if GATHER:
        rows = tl.load(INDEX + offsets, mask=inside, other=0)
    else:  # INDEX holds the first row of the minibatch
        rows = (tl.load(INDEX) + offsets).to(tl.int64)
    columns = tl.arange(0, D)
    x = tl.load(X + rows[:, None] * D + columns[None, :], mask=inside[:, None], other=0.0)
    residual = tl.sum(x * tl.load(W + columns)[None, :], axis=1) + tl.load(B)
    residual = tl.where(inside, residual - tl.load(Y + rows, mask=inside, other=0.0), 0.0)
    tl.store(G + block * D + columns, tl.sum(x * residual[:, None], axis=0))
    tl.store(GB + block, tl.sum(residual))


class OnePassStep:
    """One SGD step on the minibatch held in ``self.index``; call it, or replay its graph."""

    def __init__(self, x, y, w, b, lr: float, batch: int, gather: bool, block_m: int, warps: int):
        self.x, self.y, self.w, self.b, self.lr, self.batch = x, y, w, b, lr, batch
        self.gather, self.block_m, self.warps = gather, block_m, warps
        self.blocks = triton.cdiv(batch, block_m)
        self.index = torch.zeros(batch if gather else 1, dtype=torch.int64, device=x.device)
        self.partial = torch.empty(self.blocks, x.shape[1], device=x.device)
        self.partial_bias = torch.empty(self.blocks, device=x.device)
        self.grad = torch.empty(x.shape[1], device=x.device)
        self.grad_bias = torch.empty((), device=x.device)
        self.graph: torch.cuda.CUDAGraph | None = None

    def __call__(self) -> None:
        _least_squares_step[(self.blocks,)](
            self.x, self.index, self.y, self.w, self.b, self.partial, self.partial_bias,
            self.batch, D=self.x.shape[1], BLOCK_M=self.block_m, GATHER=self.gather,
            num_warps=self.warps,
        )  # fmt: skip
        torch.sum(self.partial, 0, out=self.grad)
        torch.sum(self.partial_bias, 0, out=self.grad_bias)
        self.w.sub_(self.grad, alpha=self.lr * 2 / self.batch)
        self.b.sub_(self.grad_bias, alpha=self.lr * 2 / self.batch)

    def capture(self) -> None:
        """Record one step as a CUDA graph (after warm-up steps on a side stream, as required)."""
        saved = self.w.clone(), self.b.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self()
        self.w.copy_(saved[0])
        self.b.copy_(saved[1])

    def epoch(self) -> None:
        n = self.y.numel()
        steps = n // self.batch
        order = torch.randperm(n, device=self.x.device) if self.gather else None
        starts = torch.arange(steps, device=self.x.device) * self.batch
        for s in range(steps):
            if self.gather:
                self.index.copy_(order[s * self.batch : (s + 1) * self.batch])
            else:
                self.index.copy_(starts[s : s + 1])
            self.graph.replay() if self.graph is not None else self()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--d", type=int, default=1024, help="a power of two (one tile per row)")
    parser.add_argument("--batch-size", type=int, default=65536)
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args()
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(args.n, args.d, device="cuda", generator=gen)
    y = x @ torch.randn(args.d, device="cuda", generator=gen)
    y += 0.1 * torch.randn(args.n, device="cuda", generator=gen)
    bound = args.n * args.d * 4 / copy_bandwidth("cuda")
    versions = f"torch {torch.__version__}, triton {triton.__version__}"
    print(f"# {torch.cuda.get_device_name()}, {versions}")
    print(f"# n={args.n} d={args.d} batch={args.batch_size}; reading the data once: {bound:.4f} s")
    print("order     step     rows/block warps  s/epoch  of bound  loss")
    for graphed in (False, True):
        for gather in (True, False):
            for block_m, warps in ((16, 4), (16, 8), (32, 8)):
                w = torch.zeros(args.d, device="cuda")
                b = torch.zeros((), device="cuda")
                step = OnePassStep(x, y, w, b, args.lr, args.batch_size, gather, block_m, warps)
                if graphed:
                    step.capture()
                step.epoch()  # warm-up (and the kernel's compilation)
                torch.cuda.synchronize()
                start = time.perf_counter()
                step.epoch()
                step.epoch()
                torch.cuda.synchronize()
                seconds = (time.perf_counter() - start) / 2
                loss = float(((x[:100_000] @ w + b - y[:100_000]) ** 2).mean())
                order = "shuffled" if gather else "in order"
                kind = "graph" if graphed else "eager"
                print(
                    f"{order:9} {kind:8} {block_m:>10} {warps:>5} {seconds:>8.4f}"
                    f" {bound / seconds:>9.0%}  {loss:.4g}"
                )


if __name__ == "__main__":
    main()
