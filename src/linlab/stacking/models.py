"""K models of one architecture evaluated side by side, and K modules merged into one.

``StackedModels`` keeps each member as its own ``nn.Module`` (so member k's parameters, state
dict and optimiser param group are exactly those of its separate run) and evaluates them
together: for ``LinearRegression`` one ``(B, d) @ (d, K)`` product (or a batched product when
each member has its own data); for any other model ``torch.func.functional_call`` under
``torch.vmap`` over the members' stacked parameters.

The members' parameters of one name live side by side in one (K, ...) tensor (``columns``):
member k's parameter is row k of it, the same memory. So reading all members' values, and
updating them all in one operation (``linlab.stacking.plain_sgd``), costs one tensor
operation instead of K.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from linlab.models import LinearRegression
from linlab.module import MemberState, RegressionModule


class StackedModels(nn.Module):
    """``forward(x)`` → (K, B) predictions; ``x`` is (B, d) shared or (K, B, d) per member."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.linear = all(type(m) is LinearRegression for m in members)
        self._columns: list[tuple[Tensor, list[nn.Parameter], list[Slot]]] = []

    def forward(self, x: Tensor) -> Tensor:
        if self.linear:
            w = torch.stack([m.w for m in self.members])  # (K, d)
            pred = (x @ w.T).T if x.dim() == 2 else torch.bmm(x, w.unsqueeze(-1)).squeeze(-1)
            if self.members[0].b is not None:
                pred = pred + torch.stack([m.b for m in self.members]).unsqueeze(-1)
            return pred
        names = [name for name, _ in self.members[0].named_parameters()]
        params = {
            name: torch.stack([dict(m.named_parameters())[name] for m in self.members])
            for name in names
        }
        base = self.members[0]

        def one(p: dict[str, Tensor], inputs: Tensor) -> Tensor:
            return functional_call(base, p, (inputs,))

        return torch.vmap(one, in_dims=(0, None if x.dim() == 2 else 0))(params, x)

    @torch.no_grad()
    def flat_values(self) -> Tensor:
        """(K, P) parameters, row k member k's ``linlab.params.flat_values`` (a copy)."""
        k = len(self.members)
        return torch.cat([values.reshape(k, -1) for values, _ in self.columns()], dim=1)

    @torch.no_grad()
    def columns(self) -> list[tuple[Tensor, list[nn.Parameter]]]:
        """Per parameter, in ``parameters()`` order: the (K, ...) tensor whose row k is member
        k's parameter (the same memory), and the members' parameters.

        Checked at every call (K dict look-ups and addresses, not K ``parameters()`` walks):
        a parameter replaced, or no longer its row (``Module.to`` to another device or dtype
        gives it new memory), puts all back into one tensor.
        """
        if not all(_rows_of(*column) for column in self._columns) or not self._columns:
            self._columns = [_side_by_side(*column) for column in _named_columns(self.members)]
        return [(values, params) for values, params, _ in self._columns]


Slot = tuple[dict[str, Any], str]  # (the owning module's ``_parameters``, the name in it)


def _named_columns(members: Sequence[nn.Module]) -> list[tuple[list[nn.Parameter], list[Slot]]]:
    """Per parameter name: each member's parameter and where the member holds it."""
    columns = []
    for name, _ in members[0].named_parameters():
        owner, _, attribute = name.rpartition(".")
        slots = [(m.get_submodule(owner)._parameters, attribute) for m in members]
        columns.append(([slot[attribute] for slot, _ in slots], slots))
    return columns


def _rows_of(values: Tensor, params: list[nn.Parameter], slots: list[Slot]) -> bool:
    """Whether each member still holds parameter k, and it is row k of ``values`` (its
    address: a parameter moved or cast has new memory)."""
    start, row = values.data_ptr(), values.stride(0) * values.element_size()
    return all(
        slot[attribute] is p and p.data_ptr() == start + k * row
        for k, (p, (slot, attribute)) in enumerate(zip(params, slots, strict=True))
    )


def _side_by_side(
    params: list[nn.Parameter], slots: list[Slot]
) -> tuple[Tensor, list[nn.Parameter], list[Slot]]:
    """One (K, ...) tensor holding the parameters' values; each parameter becomes its row."""
    values = torch.stack([p.detach() for p in params])
    for p, row in zip(params, values, strict=True):
        p.data = row
    return values, params, slots


def stack_modules(modules: Sequence[RegressionModule]) -> RegressionModule:
    """One module training ``modules`` as members: the first, with the others' models and
    optimiser settings added (a single module is returned as it is)."""
    group = modules[0]
    if len(modules) == 1:
        return group
    group.model = StackedModels([m.model for m in modules])
    group.optimizer_partials = [m.optimizer_partials[0] for m in modules]
    group.states = [MemberState() for _ in modules]
    return group
