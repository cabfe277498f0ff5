"""A stacked group's plain SGD step in one tensor operation, bit for bit torch's per member.

``torch.optim.SGD`` with one param group per member loops in Python over the K groups at
every step (about 8 ms at K = 1024: more than the group's forward and backward). Without
momentum or weight decay, member k's update is ``p.add_(g, alpha=-lr_k)``, which torch's CPU
kernel computes as a fused multiply-add, p + α·g rounded once to float32 (``_fused``
checks that at run time). ``step`` computes it for all members at once on the (K, ...)
tensors that hold their parameters (``StackedModels.columns``): α·g is exact in float64
(24 + 24 bits), p + α·g is rounded to odd in float64 (the error from Knuth's TwoSum), and
that rounded to float32 is the correctly rounded p + α·g (Boldo and Melquiond, "When double
rounding is odd", 2005). Anything else (momentum, weight decay, another optimiser, a
scheduler, float64, a GPU, a kernel that does not fuse) keeps the optimiser's own step.
"""

from __future__ import annotations

import functools
import math
import operator
from itertools import chain, repeat

import torch
from torch import Tensor, nn

# a param group of SGD's update p - lr·g alone (no momentum, weight decay, maximize; torch's
# own single-tensor loop) and a number as its lr
_SETTINGS = operator.itemgetter(
    "momentum", "weight_decay", "maximize", "differentiable", "foreach", "fused"
)
_PLAIN = (0, 0, False, False, None, None)
_LR = operator.itemgetter("lr")
_GRAD = operator.attrgetter("grad")
_REQUIRES_GRAD = operator.attrgetter("requires_grad")


def step(
    optimizer: object,
    columns: list[tuple[Tensor, list[nn.Parameter]]],
    grads: list[Tensor | None],
) -> bool:
    """``optimizer.step()`` for every member at once, with ``grads`` as the members'
    gradients; False (nothing done) where that would not be torch's own step bit for bit.
    ``columns``: ``StackedModels.columns()``; ``grads``: ``StackedModels.take_gradients()``,
    given to no member (each member's ``.grad`` is None)."""
    if not _applies(optimizer, columns) or not all(map(_dense_float32, grads)):
        return False
    held = chain.from_iterable(params for _, params in columns)
    if not all(map(operator.is_, map(_GRAD, held), repeat(None))):
        return False
    lrs = [group["lr"] for group in optimizer.param_groups]
    alpha = -torch.tensor(lrs, dtype=torch.float32).double()  # torch's alpha=-lr, in float32
    with torch.no_grad():
        for (values, params), gradient in zip(columns, grads, strict=True):
            # a parameter that requires no gradient gets none, and torch's step skips it
            stepped = torch.tensor(list(map(_REQUIRES_GRAD, params)))
            stepped = stepped.view(-1, *[1] * (values.dim() - 1))
            update = _fused_multiply_add(values, gradient, alpha.view_as(stepped))
            values.copy_(torch.where(stepped, update, values))
    return True


def _dense_float32(grad: Tensor | None) -> bool:
    return grad is not None and grad.layout == torch.strided and grad.dtype == torch.float32


def _applies(optimizer: object, columns: list[tuple[Tensor, list[nn.Parameter]]]) -> bool:
    """Plain SGD on CPU float32, group k = member k's parameters, nothing hooked in (an LR
    scheduler wraps ``step`` on the instance)."""
    if type(optimizer) is not torch.optim.SGD or "step" in vars(optimizer) or _hooked(optimizer):
        return False
    if not all(
        values.dtype == torch.float32
        and values.device.type == "cpu"
        and _fused(tuple(values.shape[1:]))
        for values, _ in columns
    ):
        return False
    groups = optimizer.param_groups
    try:
        settings = set(map(_SETTINGS, groups))
    except KeyError:
        return False
    if settings != {_PLAIN} or not set(map(type, map(_LR, groups))) <= {float, int}:
        return False
    held = [group["params"] for group in groups]
    members = zip(*(params for _, params in columns), strict=True)
    return (
        len(held) == len(columns[0][1])
        and all(len(params) == len(columns) for params in held)
        and all(map(operator.is_, chain.from_iterable(held), chain.from_iterable(members)))
    )


def _hooked(optimizer: torch.optim.Optimizer) -> bool:
    """Step hooks of this optimiser or of all (``register_optimizer_step_pre_hook``)."""
    from torch.optim import optimizer as module

    return bool(
        optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or module._global_optimizer_pre_hooks
        or module._global_optimizer_post_hooks
    )


def _fused_multiply_add(p: Tensor, g: Tensor, alpha: Tensor) -> Tensor:
    """float32 p + α·g rounded once (p, g float32; α float32 values in float64)."""
    a, product = p.double(), g.double() * alpha  # the product is exact
    total = a + product
    virtual = total - a
    error = (a - (total - virtual)) + (product - virtual)  # total + error = a + product
    even = (total.view(torch.int64) & 1) == 0
    inexact = (error != 0) & torch.isfinite(error)
    towards = torch.where(error > 0, math.inf, -math.inf).to(total.dtype)
    odd = torch.where(inexact & even, torch.nextafter(total, towards), total)
    return odd.float()


@functools.cache
def _fused(shape: tuple[int, ...]) -> bool:
    """Whether torch's CPU ``add_(g, alpha=α)`` on float32 tensors of ``shape`` rounds
    p + α·g once: for p = -1, g = α = 1 + 2⁻²², once gives 2⁻²¹ + 2⁻⁴⁴, twice 2⁻²¹."""
    one_plus = 1 + 2**-22
    p, g = torch.full(shape, -1.0), torch.full(shape, one_plus)
    p.add_(g, alpha=one_plus)
    return bool((p == 2**-21 + 2**-44).all())
