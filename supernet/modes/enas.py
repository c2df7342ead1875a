"""ENAS and CANAS: an LSTM controller (`supernet.controller`) samples the paths the shared weights train on,
and learns from their held-out accuracy with REINFORCE.

Each step: the controller samples a path, the weights take one SPOS step on the training batch along it;
then it samples another path, that path's accuracy on one held-out batch (shared weights, no gradient) is
the reward, and the controller takes one REINFORCE step. `enas` rewards accuracy alone (Pham et al., 2018).
`canas` prices a cost against the cycle-annealed target F (`CostAnnealing`): ``R = acc * (cost / F) ** w``
above F, so one run sweeps the cost range. The cost is the space's FLOPs (at the training size) or the
per-choice latency table handed in (`--latency-table`, as for fbnet). Every path rewarded is kept with its
accuracy and cost (`sampled`); the trainer writes them to `sampled.csv`, and `hwnas train` turns them into
the run's front (everything the run sampled, Pareto-optimal ones marked).
"""
from __future__ import annotations

from typing import Any

import torch

from hwnas.hardware.choice_costs import ChoiceCosts

from .. import distributed
from ..controller import Controller, CostAnnealing, Reinforce, cost_reward
from .base import TrainingMode, register_mode


@register_mode("enas")
class ENAS(TrainingMode):
    """ENAS (Pham et al., ICML 2018): controller-sampled paths, REINFORCE on held-out accuracy."""

    bilevel = True
    annealed = False

    def __init__(self, model, space, weight_optimizer, seed=0, cost: ChoiceCosts | None = None,
                 cost_exponent: float = -0.5, arch_lr: float = 3.5e-4, entropy_weight: float = 1e-4,
                 baseline_decay: float = 0.95, **options):
        super().__init__(model, space, weight_optimizer, seed=seed, **options)
        with torch.random.fork_rng(devices=[]):  # the controller's initial weights, leaving the global RNG be
            torch.manual_seed(seed)
            self.controller = Controller(space.num_choices)
        self.reinforce = Reinforce(self.controller, lr=arch_lr, baseline_decay=baseline_decay,
                                   entropy_weight=entropy_weight)
        self.cost = cost.check(space.num_choices, space.name) if cost is not None else None
        self.cost_exponent = float(cost_exponent)
        self.annealing = None
        if self.annealed:
            low = self.cost.intercept + sum(min(r) for r in self.cost.costs)
            high = self.cost.intercept + sum(max(r) for r in self.cost.costs)
            # the cheapest arch may cost 0 (all `none`); start the sweep a little above it
            self.annealing = CostAnnealing(max(low, 0.0) + 0.05 * (high - low), high)
        self.steps_per_epoch: int | None = None  # set by the trainer
        self._step = 0
        self.sampled: list[dict[str, Any]] = []

    def progress(self) -> float:
        per_epoch = self.steps_per_epoch or 1
        return min(1.0, (self.epoch + self._step / per_epoch) / max(1, self.epochs))

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        super().on_epoch_start(epoch, epochs)
        self._step = 0

    def target(self) -> float | None:
        return None if self.annealing is None else self.annealing.target(self.progress())

    def train_step(self, x, y, val=None):
        with torch.no_grad():
            arch, _, _ = self.controller(self.generator)
        loss, logits = self.weight_step(x, y, lambda xs: self.replica(xs, arch))
        with torch.no_grad():
            probe, _, _ = self.controller(self.generator)
            # each process scores its shard: the mean is the global batch's accuracy, the same reward everywhere
            acc = distributed.mean(float((self.model(val[0], probe).argmax(1) == val[1]).float().mean()))
        cost = self.cost.of(probe) if self.cost is not None else float("nan")
        target = self.target()
        reward = acc if target is None else cost_reward(acc, cost, target, self.cost_exponent)
        self.reinforce.update(probe, reward)
        self.sampled.append({"arch": list(probe), "acc": acc, "cost": cost, "target": target, "reward": reward,
                             "epoch": self.epoch})
        self._step += 1
        return loss, logits

    def greedy_arch(self) -> tuple[int, ...]:
        """The controller's most likely choice at every decision (in sequence)."""
        with torch.no_grad():
            return self.controller(greedy=True)[0]

    def eval_archs(self):
        return [self.greedy_arch()]

    def summary(self) -> dict[str, Any]:
        arch = self.greedy_arch()
        out = {"derived_arch": self.space.to_str(arch), "sampled_archs": len(self.sampled),
               "controller_baseline": self.reinforce.baseline}
        if self.cost is not None:
            out[f"derived_cost_{self.cost.unit}"] = self.cost.of(arch)
            out["cost_table"] = self.cost.source
        if self.annealing is not None:
            out["cost_target"] = self.target()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "reinforce": self.reinforce.state_dict(), "sampled": list(self.sampled)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.reinforce.load_state_dict(state["reinforce"])
        self.sampled = list(state["sampled"])


@register_mode("canas")
class CANAS(ENAS):
    """CANAS: ENAS rewarding acc * (cost / F) ** w above a cost target F annealed over the run (one run, a front)."""

    annealed = True

    def __init__(self, model, space, weight_optimizer, seed=0, cost: ChoiceCosts | None = None, **options):
        if cost is None:
            from hwnas.core.errors import UsageError

            raise UsageError("mode 'canas' needs a cost table (FLOPs of the space, or --latency-table)")
        super().__init__(model, space, weight_optimizer, seed=seed, cost=cost, **options)
