"""SPOS: each step trains one path drawn uniformly at random (Guo et al., single-path one-shot)."""
from __future__ import annotations

import torch

from .base import TrainingMode, as_arch, cross_entropy, fixed_panel, register_mode


@register_mode("spos")
class SPOS(TrainingMode):
    """SPOS (Guo et al., 2020): each step trains one path drawn uniformly at random."""

    EVAL_PANEL = 4

    def sample_arch(self):
        return as_arch(torch.randint(n, (1,), generator=self.generator).item() for n in self.space.num_choices)

    def train_step(self, x, y, val=None):
        arch = self.sample_arch()
        logits = self.model(x, arch)
        loss = cross_entropy(logits, y)
        self.weight_update(loss)
        return loss.item(), logits.detach()

    def eval_archs(self):
        # A fixed panel (seeded, archs that carry signal only) so epochs are comparable.
        return fixed_panel(self.space, seed=2024, k=self.EVAL_PANEL, alive=self.space.has_signal)
