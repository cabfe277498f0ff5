"""K models of one architecture evaluated side by side, and K modules merged into one.

``StackedModels`` keeps each member as its own ``nn.Module`` (so member k's parameters, state
dict and optimiser param group are exactly those of its separate run) and evaluates them
together: for ``LinearRegression`` one ``(B, d) @ (d, K)`` product (or a batched product when
each member has its own data); for any other model ``torch.func.functional_call`` under
``torch.vmap`` over the members' stacked parameters.

The members' parameters of one name live side by side in one (K, ...) tensor (``columns``):
member k's parameter is row k of it, the same memory. The forward reads that memory as one
autograd leaf, so a backward pass yields one gradient per name, not K (``take_gradients``);
reading all members' values, and updating them all (``linlab.stacking.plain_sgd``), is one
tensor operation instead of K. Where torch's own optimiser step runs instead, each member's
parameters receive their rows as ``.grad`` (``give_gradients``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
        self._columns: list[_Column] = []

    def forward(self, x: Tensor) -> Tensor:
        """One leaf per parameter name (its (K, ...) values as one autograd leaf): a backward
        pass gives one gradient per name (``take_gradients``), not one per member."""
        params = {column.name: column.leaf for column in self._checked()}
        if self.linear:
            w = params["w"]  # (K, d)
            pred = (x @ w.T).T if x.dim() == 2 else torch.bmm(x, w.unsqueeze(-1)).squeeze(-1)
            if "b" in params:
                pred = pred + params["b"].unsqueeze(-1)
            return pred
        base = self.members[0]

        def one(p: dict[str, Tensor], inputs: Tensor) -> Tensor:
            return functional_call(base, p, (inputs,))

        return torch.vmap(one, in_dims=(0, None if x.dim() == 2 else 0))(params, x)

    def take_gradients(self) -> list[Tensor | None]:
        """The gradients of the backward passes since the last call, one (K, ...) tensor per
        parameter name (row k member k's); the next backward pass starts from none."""
        grads = []
        for column in self._columns:
            grads.append(column.leaf.grad)
            column.leaf.grad = None
        return grads

    def give_gradients(self, grads: list[Tensor | None]) -> None:
        """Each member's parameters receive their rows of ``grads`` as a backward pass
        through them would give them: added to ``.grad``, none where none is required."""
        for column, grad in zip(self._columns, grads, strict=True):
            if grad is None:
                continue
            for p, row in zip(column.params, grad, strict=True):
                if p.requires_grad:
                    p.grad = row if p.grad is None else p.grad + row

    @torch.no_grad()
    def flat_values(self) -> Tensor:
        """(K, P) parameters, row k member k's ``linlab.params.flat_values`` (a copy)."""
        k = len(self.members)
        return torch.cat([values.reshape(k, -1) for values, _ in self.columns()], dim=1)

    def columns(self) -> list[tuple[Tensor, list[nn.Parameter]]]:
        """Per parameter, in ``parameters()`` order: the (K, ...) tensor whose row k is member
        k's parameter (the same memory), and the members' parameters."""
        return [(column.values, column.params) for column in self._checked()]

    @torch.no_grad()
    def _checked(self) -> list[_Column]:
        """The columns, checked at every call (K dict look-ups and addresses, not K
        ``parameters()`` walks): a parameter replaced, or no longer its row (``Module.to`` to
        another device or dtype gives it new memory), puts all back into one tensor."""
        if not self._columns or not all(column.holds() for column in self._columns):
            self._columns = [_Column.of(name, self.members) for name in self._names()]
        return self._columns

    def _names(self) -> list[str]:
        return [name for name, _ in self.members[0].named_parameters()]


Slot = tuple[dict[str, Any], str]  # (the owning module's ``_parameters``, the name in it)


@dataclass
class _Column:
    """One parameter name across the members: their values side by side, row k member k's
    parameter (the same memory), and the same memory as one autograd leaf."""

    name: str
    values: Tensor
    leaf: Tensor
    params: list[nn.Parameter]
    slots: list[Slot]

    @classmethod
    def of(cls, name: str, members: Sequence[nn.Module]) -> _Column:
        """Member k's parameter ``name`` becomes row k of one new tensor of their values."""
        owner, _, attribute = name.rpartition(".")
        slots = [(m.get_submodule(owner)._parameters, attribute) for m in members]
        params = [slot[attribute] for slot, _ in slots]
        values = torch.stack([p.detach() for p in params])
        for p, row in zip(params, values, strict=True):
            p.data = row
        return cls(name, values, values.detach().requires_grad_(), params, slots)

    def holds(self) -> bool:
        """Whether each member still holds its parameter, and it is its row (by address)."""
        start = self.values.data_ptr()
        row = self.values.stride(0) * self.values.element_size()
        return all(
            slot[attribute] is p and p.data_ptr() == start + k * row
            for k, (p, (slot, attribute)) in enumerate(zip(self.params, self.slots, strict=True))
        )


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
