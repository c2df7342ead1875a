"""HTAS: TAS-style differentiable width and depth search with an expected-latency regulariser.

TAS (Dong & Yang, NeurIPS 2019) searches a network's widths and depths with Gumbel-sampled distributions and
a cost term; HTAS prices each layer with a latency curve measured on the target instead of FLOPs. Here, on a
hardware-tailored layer-wise space (`hwnas space tailor`: each stage's candidate hidden widths, chosen where
the measured latency curve dips below its fit), every layer's decision covers its widths (and kernels) and
`skip`, so the per-stage depth is the number of layers that do not skip. Training is GDAS's (one
Gumbel-max path per step, straight-through gradient, temperature 10 -> 0.1), and the architecture loss on the
held-out batch is

    CE + lambda_cost * E[LAT],   E[LAT] = sum over layers of (1 - p_skip) * f_stage(E[width | not skip])

with ``f_stage(h) = k * h ** a + b`` the curve the tailoring report fitted for the layer's stage (timed on a
stride-1 3x3 block at the stage's width, so the first layer of a stage and larger kernels are priced as
that block: HTAS's approximation). The run reports the derived widths (argmax per layer), the depth per
stage, and the derived arch's expected latency under the curves.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from hwnas.core.files import read_json
from hwnas.core.errors import UsageError

from .base import register_mode
from .gdas import GDAS

_WIDTH = re.compile(r"^k\d+h(\d+)$")


def stage_curves(report: str | Path | dict) -> list[dict]:
    """The fitted latency curve {"k", "a", "b"} of each stage in a `hwnas space tailor` report."""
    doc = report if isinstance(report, dict) else read_json(report, "tailoring report")
    try:
        return [{key: float(st["fit"][key]) for key in ("k", "a", "b")} for st in doc["stages"]]
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{report if not isinstance(report, dict) else 'the report'} is not a `hwnas space "
                         f"tailor` report with a fitted curve per stage ({type(e).__name__}: {e})") from None


@register_mode("htas")
class HTAS(GDAS):
    """HTAS: GDAS over a tailored space's widths and depths, arch loss CE + lambda_cost * E[latency] from curves."""

    def __init__(self, model, space, weight_optimizer, seed=0, curves: list[dict] | None = None,
                 lambda_cost: float = 1.0, **options):
        super().__init__(model, space, weight_optimizer, seed=seed, **options)
        if curves is None:
            raise UsageError("mode 'htas' needs the tailoring report's latency curves (--tailored FILE.json)")
        n_stages = max(space.layer_stage(i) for i in range(len(space.num_choices))) + 1
        if len(curves) != n_stages:
            raise UsageError(f"the tailoring report has {len(curves)} stage curves; the space has {n_stages} stages")
        width = torch.zeros(self.alpha.shape)
        self.skip = torch.zeros(self.alpha.shape, dtype=torch.bool)
        for d in range(len(space.num_choices)):
            for k, name in enumerate(space.choices(d)):
                m = _WIDTH.match(name)
                if name == "skip":
                    self.skip[d, k] = True
                elif m is None:
                    raise UsageError(f"mode 'htas' searches tailored widths (choices k<k>h<width>); layer {d} has "
                                     f"'{name}': tailor the space first (`hwnas space tailor`, then --tailored)")
                else:
                    width[d, k] = float(m.group(1))
        self.width = width
        self.curves = [curves[space.layer_stage(d)] for d in range(len(space.num_choices))]
        self.lambda_cost = float(lambda_cost)

    def layer_latency(self, probs: torch.Tensor) -> torch.Tensor:
        """Expected latency (ms) of every layer under choice probabilities `probs` (decisions x choices)."""
        p_skip = (probs * self.skip).sum(1)
        p_block = (1 - p_skip).clamp_min(1e-8)
        mean_width = (probs * self.width).sum(1) / p_block
        out = []
        for d, c in enumerate(self.curves):
            out.append((1 - p_skip[d]) * (c["k"] * mean_width[d].clamp_min(1e-8) ** c["a"] + c["b"]))
        return torch.stack(out)

    def expected_latency(self, probs: torch.Tensor | None = None) -> torch.Tensor:
        return self.layer_latency(torch.softmax(self.logits(), dim=1) if probs is None else probs).sum()

    def arch_objective(self, val_loss: torch.Tensor) -> torch.Tensor:
        return val_loss + self.lambda_cost * self.expected_latency()

    def summary(self) -> dict[str, Any]:
        arch = self.derived_arch()
        one_hot = torch.zeros(self.alpha.shape)
        one_hot[torch.arange(len(arch)), torch.tensor(arch)] = 1.0
        widths, depth = [], {}
        for d, k in enumerate(arch):
            stage = self.space.layer_stage(d)
            depth.setdefault(stage, 0)
            if not self.skip[d, k]:
                depth[stage] += 1
                widths.append(int(self.width[d, k]))
            else:
                widths.append(0)
        return {**super().summary(), "lambda_cost": self.lambda_cost, "derived_widths": widths,
                "derived_depths": [depth[s] for s in sorted(depth)],
                "derived_expected_latency_ms": float(self.layer_latency(one_hot).sum()),
                "expected_latency_ms": float(self.expected_latency().detach())}
