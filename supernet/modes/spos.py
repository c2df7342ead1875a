"""SPOS: each step trains one path of the supernet (Guo et al., single-path one-shot, ECCV 2020), drawn by one of
three samplers:

- `uniform` (the paper's): every decision's choice uniformly at random, i.e. uniform over arch strings;
- `canonical`: uniform over isomorphism classes, so a cell that many strings describe (NB201 has 15,625 strings
  for 6,466 distinct cells) is not trained more often than a cell only one string describes; in a space
  without isomorphisms this is `uniform`;
- `fair` (FairNAS, Chu et al., ICCV 2021, strict fairness): each step draws a permutation of every decision's
  choices and trains the m paths they form (m = the largest number of choices), accumulating the gradients
  into one update, so every choice of every decision is trained exactly once per step (m times the compute);
- `sandwich` (the sandwich rule of BigNAS, Yu et al., ECCV 2020, and slimmable networks): each step trains the
  largest path, the smallest and two uniform ones (4 times the compute), gradients accumulated into one update;
  with `distill` (default), in-place distillation: the largest path learns from the labels, the other three
  from its (detached) soft predictions. Largest and smallest are per layer by parameters
  (`space.largest_arch`, `space.smallest_arch`; layer-wise spaces).

`schedule="progressive"` is Once-for-All's progressive shrinking (Cai et al., ICLR 2020) as a schedule of the
sampler: the epochs are cut into the space's phases (`space.shrink_phases`; mobilenet: the largest block
only, then every kernel, then skip too, then every expansion; shufflenet: shuffle7, every shared kernel, skip,
then Xception), each phase's paths drawn only among the choices
it allows; a phase is `epochs / phases` epochs long (OFA tunes each phase's length; equal shares are our default).

`fixed={decision: choice}` pins decisions in every path any sampler draws: how a few-shot sub-supernet
(`supernet.few_shot`) is fine-tuned only on the paths it owns.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from hwnas.core.errors import UsageError

from .base import TrainingMode, as_arch, cross_entropy, fixed_panel, register_mode

SAMPLERS = ("uniform", "canonical", "fair", "sandwich")
SCHEDULES = ("none", "progressive")
#: paths drawn at random in each sandwich step, besides the largest and the smallest (BigNAS: 2)
SANDWICH_RANDOM = 2


def soft_cross_entropy(logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of `logits` against the soft predictions of `teacher` (no gradient through the teacher):
    in-place distillation's loss."""
    return -(F.softmax(teacher.detach(), dim=1) * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def check_schedule(space, sampler: str, schedule: str) -> None:
    """UsageError naming the problem when `space` cannot take `sampler` or `schedule`."""
    if schedule not in SCHEDULES:
        raise UsageError(f"unknown SPOS schedule '{schedule}'; valid: {', '.join(SCHEDULES)}")
    if sampler == "sandwich" and not hasattr(space, "largest_arch"):
        raise UsageError(f"the sandwich sampler needs a space whose blocks have sizes (a layer-wise space); "
                         f"'{space.name}' has none")
    if schedule == "progressive" and not hasattr(space, "shrink_phases"):
        raise UsageError(f"progressive shrinking needs a space with shrink phases (mobilenet, shufflenet); "
                         f"'{space.name}' has none")


@register_mode("spos")
class SPOS(TrainingMode):
    """SPOS (Guo et al., 2020): each step trains one path drawn at random (uniform, canonical or fair)."""

    EVAL_PANEL = 4

    def __init__(self, model, space, weight_optimizer, seed=0, sampler: str = "uniform",
                 fixed: dict[int, int] | None = None, distill: bool = True, schedule: str = "none", **options):
        super().__init__(model, space, weight_optimizer, seed=seed, **options)
        if sampler not in SAMPLERS:
            raise UsageError(f"unknown SPOS sampler '{sampler}'; valid: {', '.join(SAMPLERS)}")
        check_schedule(space, sampler, schedule)
        self.sampler, self.distill, self.schedule = sampler, bool(distill), schedule
        self.fixed = {int(k): int(v) for k, v in (fixed or {}).items()}
        self._classes = None
        self._phases = space.shrink_phases() if schedule == "progressive" else None

    def pin(self, arch) -> tuple[int, ...]:
        """`arch` with the `fixed` decisions set to their choices."""
        return as_arch(self.fixed.get(i, c) for i, c in enumerate(arch))

    def phase(self) -> tuple[str, list[list[int]]] | None:
        """(name, allowed choices per decision) of the progressive-shrinking phase of the current epoch; None
        without that schedule."""
        if self._phases is None:
            return None
        return self._phases[min(len(self._phases) - 1, self.epoch * len(self._phases) // max(1, self.epochs))]

    def allowed(self) -> list[list[int]]:
        """The choices each decision may take now (all, or the current phase's)."""
        phase = self.phase()
        return phase[1] if phase else [list(range(n)) for n in self.space.num_choices]

    def sandwich_archs(self) -> list[tuple[int, ...]]:
        """The largest path, the smallest and SANDWICH_RANDOM uniform ones, among the choices allowed now."""
        allowed = self.allowed()
        big, small = self.space.largest_arch(), self.space.smallest_arch()
        largest = [c if c in ok else max(ok, key=lambda k: self.space.choice_params(i)[k])
                   for i, (c, ok) in enumerate(zip(big, allowed))]
        smallest = [c if c in ok else min(ok, key=lambda k: self.space.choice_params(i)[k])
                    for i, (c, ok) in enumerate(zip(small, allowed))]
        return [self.pin(largest), self.pin(smallest)] + [self.sample_arch() for _ in range(SANDWICH_RANDOM)]

    def sample_arch(self):
        """One path, uniform over strings (`uniform`, `fair`'s fallback) or over canonical classes."""
        if self._phases is not None:
            return self.pin(ok[int(torch.randint(len(ok), (1,), generator=self.generator))] for ok in self.allowed())
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
        if self.sampler not in ("fair", "sandwich"):
            arch = self.sample_arch()
            return self.weight_step(x, y, lambda xs: self.replica(xs, arch))
        self.weight_optimizer.zero_grad(set_to_none=True)
        losses, first = [], None
        archs = self.fair_archs() if self.sampler == "fair" else self.sandwich_archs()
        for arch in archs:
            logits = self.replica(x, arch)
            if self.sampler == "sandwich" and self.distill and first is not None:
                loss = soft_cross_entropy(logits, first)  # the largest path (first) teaches the others
            else:
                loss = cross_entropy(logits, y)
            loss.backward()
            losses.append(loss.item())
            first = logits.detach() if first is None else first
        self.finish_weight_step()
        return sum(losses) / len(losses), first

    def eval_archs(self):
        # A fixed panel (seeded, archs that carry signal only) so epochs are comparable.
        return fixed_panel(self.space, seed=2024, k=self.EVAL_PANEL, alive=self.space.has_signal, pin=self.pin)
