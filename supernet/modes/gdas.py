"""GDAS: Gumbel-max hard sampling, one op per edge in the forward pass, straight-through gradient to
the architecture logits, temperature annealed linearly from 10 to 0.1 over the run (Dong & Yang, 2019)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import ArchParameterMode, cross_entropy, register_mode


@register_mode("gdas")
class GDAS(ArchParameterMode):
    """GDAS (Dong & Yang, 2019): one Gumbel-max sampled choice per decision, straight-through gradient."""


    def __init__(self, model, space, weight_optimizer, seed=0, tau_max: float = 10.0, tau_min: float = 0.1,
                 **options):
        super().__init__(model, space, weight_optimizer, seed=seed, **options)
        self.tau_max, self.tau_min = tau_max, tau_min

    @property
    def tau(self) -> float:
        if self.epochs <= 1:
            return self.tau_max
        return self.tau_max - (self.tau_max - self.tau_min) * self.epoch / (self.epochs - 1)

    def sample(self) -> tuple[torch.Tensor, list[int]]:
        """Hard one-hot weights with straight-through gradient, and the chosen op per edge."""
        u = torch.rand(self.alpha.shape, generator=self.generator).clamp(1e-10, 1 - 1e-10)
        gumbel = -torch.log(-torch.log(u))
        probs = F.softmax((F.log_softmax(self.logits(), dim=1) + gumbel) / self.tau, dim=1)
        index = probs.argmax(dim=1)
        one_hot = F.one_hot(index, probs.shape[1]).to(probs.dtype)
        hard = one_hot - probs.detach() + probs
        return hard, index.tolist()

    def train_step(self, x, y, val=None):
        hard = self.sample()
        loss, logits = self.weight_step(x, y, lambda xs: self.replica(xs, hard=hard))
        self.arch_optimizer.zero_grad(set_to_none=True)
        val_loss = cross_entropy(self.model(val[0], hard=self.sample()), val[1])
        self.alpha.grad = torch.autograd.grad(self.arch_objective(val_loss), self.alpha)[0]
        self.arch_step_ready([self.alpha])
        self.arch_optimizer.step()
        return loss, logits

    def arch_objective(self, val_loss: torch.Tensor) -> torch.Tensor:
        """What the architecture step minimises, given the held-out batch's loss (GDAS: that loss)."""
        return val_loss

    def summary(self):
        return {**super().summary(), "tau": self.tau}
