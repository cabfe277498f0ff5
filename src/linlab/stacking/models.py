"""K models of one architecture evaluated side by side, and K modules merged into one.

``StackedModels`` keeps each member as its own ``nn.Module`` (so member k's parameters, state
dict and optimiser param group are exactly those of its separate run) and evaluates them
together: for ``LinearRegression`` one ``(B, d) @ (d, K)`` product (or a batched product when
each member has its own data); for any other model ``torch.func.functional_call`` under
``torch.vmap`` over the members' stacked parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

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
        """(K, P) parameters, row k member k's ``linlab.params.flat_values``: one stack per
        parameter, not a concatenation per member."""
        columns = zip(*(m.parameters() for m in self.members), strict=True)
        k = len(self.members)
        return torch.cat([torch.stack(column).reshape(k, -1) for column in columns], dim=1)


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
