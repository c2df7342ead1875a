"""DARTS: softmax relaxation over each edge's ops; first order, or second order with the
finite-difference Hessian-vector product of Liu et al. (2019)."""
from __future__ import annotations

import torch

from hwnas.core.errors import UsageError

from .base import ArchParameterMode, cross_entropy, register_mode


@register_mode("darts")
class DARTS(ArchParameterMode):
    """DARTS (Liu et al., 2019): a softmax mixture of each decision's choices, first or second order."""

    uses_every_choice = True

    def __init__(self, model, space, weight_optimizer, seed=0, order: int = 1, **options):
        super().__init__(model, space, weight_optimizer, seed=seed, **options)
        if order not in (1, 2):
            raise UsageError(f"DARTS order {order} is not valid; valid: 1, 2")
        self.order = order

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits(), dim=1)

    def _loss(self, x, y):
        return cross_entropy(self.model(x, weights=self.weights()), y)

    def arch_step(self, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor]) -> None:
        """One architecture update on the held-out batch `val` (`train` is used by the second order)."""
        self.arch_optimizer.zero_grad(set_to_none=True)
        if self.order == 1:
            grad = torch.autograd.grad(self._loss(*val), self.alpha)[0]
        else:
            grad = self._second_order_grad(train, val)
        self.alpha.grad = grad
        self.arch_step_ready([self.alpha])
        self.arch_optimizer.step()

    def _second_order_grad(self, train, val) -> torch.Tensor:
        params = [p for p in self.model.parameters() if p.requires_grad]
        group = self.weight_optimizer.param_groups[0]
        xi, wd = group["lr"], group.get("weight_decay", 0.0)
        backup = [p.detach().clone() for p in params]
        # Virtual step w' = w - xi * dL_train/dw (plain SGD with weight decay; momentum left out).
        g_train = torch.autograd.grad(self._loss(*train), params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, g_train):
                if g is not None:
                    p.sub_(xi * (g + wd * p))
        grads = torch.autograd.grad(self._loss(*val), [self.alpha] + params, allow_unused=True)
        g_alpha, g_w = grads[0], [g if g is not None else torch.zeros_like(p) for g, p in zip(grads[1:], params)]
        r = 0.01 / torch.sqrt(sum((g * g).sum() for g in g_w)).clamp_min(1e-12)
        hessian = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, b, g in zip(params, backup, g_w):
                    p.copy_(b + sign * r * g)
            hessian.append(torch.autograd.grad(self._loss(*train), self.alpha)[0])
        with torch.no_grad():
            for p, b in zip(params, backup):
                p.copy_(b)
        return g_alpha - xi * (hessian[0] - hessian[1]) / (2 * r)

    def train_step(self, x, y, val=None):
        self.arch_step((x, y), val)
        weights = self.weights().detach()
        return self.weight_step(x, y, lambda xs: self.replica(xs, weights=weights))
