"""SPOS: each step trains one path of the supernet (Guo et al., single-path one-shot, ECCV 2020), drawn by one of
three samplers:

- `uniform` (the paper's): every decision's choice uniformly at random, i.e. uniform over arch strings;
- `canonical`: uniform over isomorphism classes, so a cell that many strings describe (NB201 has 15,625 strings
  for 6,466 distinct cells) is not trained more often than a cell only one string describes; in a space
  without isomorphisms this is `uniform`;
- `fair` (FairNAS, Chu et al., ICCV 2021, strict fairness): each step draws a permutation of every decision's
  choices and trains the m paths they form (m = the largest number of choices), accumulating the gradients
  into one update, so every choice of every decision is trained exactly once per step (m times the compute).

`fixed={decision: choice}` pins decisions in every path any sampler draws: how a few-shot sub-supernet
(`supernet.few_shot`) is fine-tuned only on the paths it owns.
"""
from __future__ import annotations

import torch

from hwnas.core.errors import UsageError

from .base import GRAD_CLIP, TrainingMode, as_arch, cross_entropy, fixed_panel, register_mode

SAMPLERS = ("uniform", "canonical", "fair")


@register_mode("spos")
class SPOS(TrainingMode):
    """SPOS (Guo et al., 2020): each step trains one path drawn at random (uniform, canonical or fair)."""

    EVAL_PANEL = 4

    def __init__(self, model, space, weight_optimizer, seed=0, sampler: str = "uniform",
                 fixed: dict[int, int] | None = None, **options):
        super().__init__(model, space, weight_optimizer, seed=seed, **options)
        if sampler not in SAMPLERS:
            raise UsageError(f"unknown SPOS sampler '{sampler}'; valid: {', '.join(SAMPLERS)}")
        self.sampler = sampler
        self.fixed = {int(k): int(v) for k, v in (fixed or {}).items()}
        self._classes = None

    def pin(self, arch) -> tuple[int, ...]:
        """`arch` with the `fixed` decisions set to their choices."""
        return as_arch(self.fixed.get(i, c) for i, c in enumerate(arch))

    def sample_arch(self):
        """One path, uniform over strings (`uniform`, `fair`'s fallback) or over canonical classes."""
        if self.sampler == "canonical" and hasattr(self.space, "canonical_archs"):
            if self._classes is None:
                self._classes = self.space.canonical_archs()
            return self.pin(self._classes[int(torch.randint(len(self._classes), (1,), generator=self.generator))])
        return self.pin(torch.randint(n, (1,), generator=self.generator).item() for n in self.space.num_choices)

    def fair_archs(self) -> list[tuple[int, ...]]:
        """FairNAS' m paths for one step: path k takes the k-th entry of each decision's random permutation (a
        decision with fewer choices wraps around, so each of its choices still appears)."""
        perms = [torch.randperm(n, generator=self.generator).tolist() for n in self.space.num_choices]
        m = max(self.space.num_choices)
        return [self.pin(p[k % len(p)] for p in perms) for k in range(m)]

    def train_step(self, x, y, val=None):
        if self.sampler != "fair":
            logits = self.model(x, self.sample_arch())
            loss = cross_entropy(logits, y)
            self.weight_update(loss)
            return loss.item(), logits.detach()
        self.weight_optimizer.zero_grad(set_to_none=True)
        losses, first = [], None
        for arch in self.fair_archs():
            logits = self.model(x, arch)
            loss = cross_entropy(logits, y)
            loss.backward()
            losses.append(loss.item())
            first = logits.detach() if first is None else first
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        self.weight_optimizer.step()
        return sum(losses) / len(losses), first

    def eval_archs(self):
        # A fixed panel (seeded, archs that carry signal only) so epochs are comparable.
        return fixed_panel(self.space, seed=2024, k=self.EVAL_PANEL, alive=self.space.has_signal, pin=self.pin)
