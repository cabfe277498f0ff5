"""One optimiser step of a stacked group of K plain-SGD members (``RegressionModule.
descent_step``: forward, backward, update), against the same step through torch's own
``SGD.step`` over K param groups (the path every other optimiser takes), alternating in this
run; both must leave the same parameters. CPU seconds per step and their ratio::

    PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 python scripts/bench_stacked_step.py --members 1024
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch

from linlab.losses import MSELoss
from linlab.models import LinearRegression
from linlab.module import RegressionModule
from linlab.stacking.models import stack_modules


def group(members: int) -> tuple[RegressionModule, torch.optim.Optimizer]:
    """A stacked group of ``members`` linear models (d = 5), lr_k = 0.1·(k + 1)/K."""
    torch.manual_seed(0)
    modules = [
        RegressionModule(
            LinearRegression(5),
            MSELoss(),
            partial(torch.optim.SGD, lr=0.1 * (k + 1) / members),
        )
        for k in range(members)
    ]
    module = stack_modules(modules)
    return module, module.configure_optimizers()


def seconds_per_step(module: RegressionModule, optimizer, batches: list) -> float:
    """CPU seconds per ``descent_step`` over ``batches``."""
    start = time.process_time()
    for x, y in batches:
        module.descent_step(optimizer, x, y)
    return (time.process_time() - start) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=22, help="minibatches (of 32) per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the two paths")
    args = parser.parse_args()
    data = torch.Generator().manual_seed(1)
    batches = [(torch.randn(32, 5, generator=data), torch.randn(32, generator=data))] * args.steps
    one, one_optimizer = group(args.members)
    torchs, torchs_optimizer = group(args.members)
    torchs_optimizer.register_step_post_hook(lambda *_: None)  # a hook: torch's own step runs
    times = {"group": [], "torch": []}
    for _ in range(args.rounds):
        times["group"].append(seconds_per_step(one, one_optimizer, batches))
        times["torch"].append(seconds_per_step(torchs, torchs_optimizer, batches))
    same = torch.equal(one.model.flat_values(), torchs.model.flat_values())
    fast, slow = min(times["group"]), min(times["torch"])
    print(
        f"{args.members} members, one step: {fast * 1e3:.2f} ms in one operation, "
        f"{slow * 1e3:.2f} ms through torch's SGD.step over the param groups; "
        f"ratio {slow / fast:.1f}x; same parameters: {same}"
    )


if __name__ == "__main__":
    main()
