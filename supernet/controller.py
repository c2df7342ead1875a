"""The ENAS controller and CANAS's cycle-annealed cost target, for the `enas` / `canas` training modes.

ENAS (Pham et al., ICML 2018): an LSTM emits one decision after another; its input at each step is the
embedding of the previous choice; each decision's logits are limited by ``c * tanh(logits / T)`` (ENAS:
c 2.5, T 5) so that the policy never saturates. It is trained with REINFORCE: loss
``-(R - b) * log p(a) - h * H(p)`` with a moving-average baseline b and an entropy bonus h.

CANAS (cycle-annealing search): the reward prices a cost (FLOPs or latency) against a target F that moves
during the run, ``R = acc * (cost / F) ** w`` above the target and ``R = acc`` below it (w < 0, MnasNet's
soft constraint), so that one run samples architectures along the whole cost range and its output is the
Pareto front of everything it sampled. Our reading of the schedule (`CostAnnealing`), in fractions of the
run: a warm-up at F_min, one slow sweep F_min -> F_max, then fast sweeps whose period shrinks by the factor
lambda from one cycle to the next (down to `min_period`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


class Controller(nn.Module):
    """LSTM policy over a sequence of decisions with `num_choices[d]` choices each (ragged spaces masked)."""

    def __init__(self, num_choices: Sequence[int], hidden: int = 64, tanh_constant: float = 2.5,
                 temperature: float = 5.0):
        super().__init__()
        self.num_choices = tuple(int(n) for n in num_choices)
        width = max(self.num_choices)
        self.hidden, self.tanh_constant, self.temperature = hidden, tanh_constant, temperature
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.embed = nn.Embedding(width, hidden)
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in self.num_choices)

    def forward(self, generator: torch.Generator | None = None, arch: Sequence[int] | None = None,
                greedy: bool = False) -> tuple[tuple[int, ...], torch.Tensor, torch.Tensor]:
        """Sample an arch (or score the given `arch`, or take the most likely choice at each decision with
        `greedy`): (arch, sum of log-probabilities, sum of entropies)."""
        h = c = torch.zeros(1, self.hidden)
        x = self.start
        choices, log_prob, entropy = [], torch.zeros(()), torch.zeros(())
        for d, head in enumerate(self.heads):
            h, c = self.lstm(x, (h, c))
            logits = self.tanh_constant * torch.tanh(head(h)[0] / self.temperature)
            logp = F.log_softmax(logits, dim=0)
            if arch is not None:
                k = int(arch[d])
            elif greedy:
                k = int(logp.argmax())
            else:
                k = int(torch.multinomial(logp.exp().detach(), 1, generator=generator))
            choices.append(k)
            log_prob = log_prob + logp[k]
            entropy = entropy - (logp.exp() * logp).sum()
            x = self.embed(torch.tensor([k]))
        return tuple(choices), log_prob, entropy


def cost_reward(acc: float, cost: float, target: float, w: float) -> float:
    """CANAS/MnasNet reward: `acc` as it is at or under the cost `target`, `acc * (cost / target) ** w` above."""
    return acc if cost <= target else acc * (cost / target) ** w


@dataclass
class CostAnnealing:
    """The cost target F over the run's progress p in [0, 1] (see module docstring)."""

    f_min: float
    f_max: float
    warmup: float = 0.1  # share of the run at F_min
    slow: float = 0.5  # share of the run the slow sweep takes
    shrink: float = 0.5  # lambda: each fast sweep's period is this times the previous one's
    min_period: float = 0.02

    def __post_init__(self):
        if not (0 < self.f_min < self.f_max):
            raise ValueError(f"the cost range needs 0 < F_min < F_max, got {self.f_min}, {self.f_max}")
        if not (0 <= self.warmup and 0 < self.slow and self.warmup + self.slow <= 1 and 0 < self.shrink < 1):
            raise ValueError("annealing shares need warmup >= 0, slow > 0, warmup + slow <= 1, 0 < shrink < 1")

    def target(self, progress: float) -> float:
        p = min(max(float(progress), 0.0), 1.0)
        if p < self.warmup:
            return self.f_min
        p -= self.warmup
        if p < self.slow:
            return self.f_min + (self.f_max - self.f_min) * p / self.slow
        p -= self.slow
        period = max(self.slow * self.shrink, self.min_period)
        while p >= period:
            p -= period
            period = max(period * self.shrink, self.min_period)
        return self.f_min + (self.f_max - self.f_min) * p / period


class Reinforce:
    """REINFORCE for a `Controller`: Adam, moving-average baseline, entropy bonus."""

    def __init__(self, controller: Controller, lr: float = 3.5e-4, baseline_decay: float = 0.95,
                 entropy_weight: float = 1e-4):
        self.controller = controller
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=lr)
        self.baseline: float | None = None
        self.decay, self.entropy_weight = baseline_decay, entropy_weight

    def update(self, arch: Sequence[int], reward: float) -> float:
        """One policy-gradient step for a sampled `arch` and its reward; returns the advantage."""
        self.baseline = reward if self.baseline is None else self.decay * self.baseline + (1 - self.decay) * reward
        advantage = reward - self.baseline
        _, log_prob, entropy = self.controller(arch=arch)
        loss = -advantage * log_prob - self.entropy_weight * entropy
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return advantage

    def state_dict(self) -> dict:
        return {"controller": self.controller.state_dict(), "optimizer": self.optimizer.state_dict(),
                "baseline": self.baseline}

    def load_state_dict(self, state: dict) -> None:
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"]
