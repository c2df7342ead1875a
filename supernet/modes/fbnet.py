"""FBNet / LuffyNet: differentiable search whose loss carries the hardware, the coupled baseline of hwnas.

FBNet (Wu et al., CVPR 2019): every decision's choices are mixed with Gumbel-softmax weights
``softmax((log_softmax(alpha) + g) / tau)``, the temperature annealed from 5.0 by a factor 0.956 per epoch;
the weights train on the training split and the architecture parameters (Adam) on the held-out split,
alternating as in DARTS. The architecture loss is

    fbnet:     CE(a, w) * alpha_lat * log(1 + LAT(a)) ** beta_lat     (FBNet's product, alpha 0.2, beta 0.6)
    additive:  CE(a, w) + alpha_lat * log(1 + LAT(a)) ** beta_lat     (the same term added, as LuffyNet adds)

plus, with a size limit, LuffyNet's model-size constraint ``(SIZE(a) / Scale) ** beta_size`` (Scale the
limit in MB, beta_size large, so the term is negligible under the limit and dominates above it). FBNet takes
``log(LAT)`` of a latency in ms; the ``1 +`` keeps the term positive for sub-millisecond devices.

LAT(a) and SIZE(a) are additive over decisions (the lookup-table assumption): each is an intercept plus,
per decision, the choice costs weighted by the choice probabilities ``softmax(alpha)``, so they are
differentiable in alpha. The per-choice latency table is handed in (`hardware.choice_costs.ChoiceCosts`:
from a `hwnas lut` table or fitted to a per-arch device table); the per-choice size is the space's own
parameter count (fitted exactly on a few subnets, see `size_costs`). The derived arch is the argmax per
decision, reported with its table latency and size.

With `warmup_epochs` (default 0) the first epochs train only the weights: with Adam on alpha a small but
consistent latency gradient outweighs the cross-entropy's noisy one while the weights are untrained, and
the derived arch collapses to the cheapest ops (all `none` on NB201) before accuracy has a say.

With the product term and Adam, `alpha_lat` only rescales the architecture loss, which Adam's step does not
see: the trade-off is set by `beta_lat` (and the cross-entropy's size). The additive term's `alpha_lat` is the
trade-off weight.

LuffyNet's two-stage schedule (`schedule="best_worst"`): stage 1 (the first `stage1_epochs`, default half the
run) trains weights and architecture parameters together as above; in stage 2 every epoch is a round in
which each decision trains only the weights of its 2 best and 2 worst choices by architecture weight ("Best
Optimize / Worst Optimize") and the others are frozen. A weight shared by several choices (a layer-wise
weight group) trains while any of them is unfrozen.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from hwnas.core.errors import UsageError
from hwnas.hardware.choice_costs import ChoiceCosts

from ..costs import latency_costs, size_costs
from .base import GRAD_CLIP, ArchParameterMode, cross_entropy, register_mode

LATENCY_TERMS = ("fbnet", "additive")
SCHEDULES = ("joint", "best_worst")
BEST_WORST = 2  # LuffyNet: per layer, the 2 best and the 2 worst blocks train in a stage-2 round


def fbnet_options(cfg, space) -> dict[str, Any]:
    """The fbnet mode's keyword options from a `TrainConfig`: its latency table, its size table (always: the
    summary reports the derived arch's size) and the loss settings."""
    return {"latency": latency_costs(cfg.latency_table, space, cfg.seed),
            "size": size_costs(space, cfg.channels, cfg.cells), "size_limit_mb": cfg.size_limit_mb,
            "latency_term": cfg.latency_term, "alpha_lat": cfg.latency_alpha, "beta_lat": cfg.latency_beta,
            "beta_size": cfg.size_beta, "schedule": cfg.fbnet_schedule, "stage1_epochs": cfg.stage1_epochs,
            "warmup_epochs": cfg.warmup_epochs}


@register_mode("fbnet")
class FBNet(ArchParameterMode):
    """FBNet / LuffyNet (Wu et al., CVPR 2019): a Gumbel-softmax mixture, expected latency and size in the arch loss."""

    uses_every_choice = True

    def __init__(self, model, space, weight_optimizer, seed=0, latency: ChoiceCosts | None = None,
                 size: ChoiceCosts | None = None, size_limit_mb: float | None = None, latency_term: str = "fbnet",
                 alpha_lat: float = 0.2, beta_lat: float = 0.6, beta_size: float = 10.0, tau_start: float = 5.0,
                 tau_decay: float = 0.956, schedule: str = "joint", stage1_epochs: int | None = None,
                 warmup_epochs: int = 0, **options):
        super().__init__(model, space, weight_optimizer, seed=seed, **options)
        if schedule not in SCHEDULES:
            raise UsageError(f"unknown fbnet schedule '{schedule}'; valid: {', '.join(SCHEDULES)}")
        self.schedule, self.stage1_epochs, self.warmup_epochs = schedule, stage1_epochs, int(warmup_epochs)
        self.unfrozen: list[list[int]] | None = None  # per decision, the choices whose weights train (stage 2)
        self._frozen: list[torch.nn.Parameter] = []
        if latency is None:
            raise UsageError("mode 'fbnet' needs a per-choice latency table (a LUT or a device table to fit)")
        if latency_term not in LATENCY_TERMS:
            raise UsageError(f"unknown latency term '{latency_term}'; valid: {', '.join(LATENCY_TERMS)}")
        if size_limit_mb is not None and (size is None or not size_limit_mb > 0):
            raise UsageError(f"a size limit needs a per-choice size table and a limit > 0 MB, got {size_limit_mb}")
        self.latency = latency.check(space.num_choices, space.name)
        self.size = size.check(space.num_choices, space.name) if size is not None else None
        self.size_limit_mb, self.latency_term = size_limit_mb, latency_term
        self.alpha_lat, self.beta_lat, self.beta_size = float(alpha_lat), float(beta_lat), float(beta_size)
        self.tau_start, self.tau_decay = float(tau_start), float(tau_decay)
        self._lat = torch.tensor(self.latency.matrix(), dtype=torch.float32)
        self._size = None if self.size is None else torch.tensor(self.size.matrix(), dtype=torch.float32)

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        """LuffyNet's Best/Worst optimisation: from the first epoch of stage 2 on, every epoch is a round in
        which each decision trains only the weights of its 2 best and 2 worst choices by architecture weight."""
        super().on_epoch_start(epoch, epochs)
        stage1 = self.stage1_epochs if self.stage1_epochs is not None else epochs // 2
        if self.schedule != "best_worst" or epoch < stage1:
            self.unfrozen, self._frozen = None, []
            return
        alpha = self.logits().detach()
        self.unfrozen = []
        for d, n in enumerate(self.space.num_choices):
            order = sorted(range(n), key=lambda k: (-float(alpha[d, k]), k))
            self.unfrozen.append(sorted(set(order[:BEST_WORST] + order[-BEST_WORST:])))
        keep = {id(p) for d, choices in enumerate(self.unfrozen) for k in choices
                for p in self.model.choice_parameters(d, k)}
        self._frozen = [p for d, n in enumerate(self.space.num_choices) for k in range(n)
                        for p in self.model.choice_parameters(d, k) if id(p) not in keep]

    def finish_weight_step(self) -> None:
        """The base step, with the weights of frozen choices left out (no gradient, no decay, no momentum)."""
        if not self._frozen:
            return super().finish_weight_step()
        for p in self._frozen:
            p.grad = None
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.grad is not None], GRAD_CLIP)
        self.weight_optimizer.step()

    @property
    def tau(self) -> float:
        return self.tau_start * self.tau_decay ** self.epoch

    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits(), dim=1)

    def gumbel_weights(self) -> torch.Tensor:
        """Soft Gumbel-softmax weights of every decision's choices (a fresh draw of the noise)."""
        u = torch.rand(self.alpha.shape, generator=self.generator).clamp(1e-10, 1 - 1e-10)
        return F.softmax((F.log_softmax(self.logits(), dim=1) - torch.log(-torch.log(u))) / self.tau, dim=1)

    def expected_latency(self, probs: torch.Tensor | None = None) -> torch.Tensor:
        p = self.probs() if probs is None else probs
        return self.latency.intercept + (p * self._lat).sum()

    def expected_size(self, probs: torch.Tensor | None = None) -> torch.Tensor:
        p = self.probs() if probs is None else probs
        return self.size.intercept + (p * self._size).sum()

    def arch_loss(self, ce: torch.Tensor) -> torch.Tensor:
        """The architecture objective of one held-out batch's cross-entropy `ce` (see module docstring)."""
        # clamped: x ** beta (beta < 1) has an infinite slope at 0 (a table of zero latencies)
        term = self.alpha_lat * torch.log1p(self.expected_latency()).clamp_min(1e-6) ** self.beta_lat
        loss = ce * term if self.latency_term == "fbnet" else ce + term
        if self.size_limit_mb is not None:
            loss = loss + (self.expected_size() / self.size_limit_mb) ** self.beta_size
        return loss

    def train_step(self, x, y, val=None):
        if self.epoch >= self.warmup_epochs:  # during the warm-up only the weights train
            self.arch_optimizer.zero_grad(set_to_none=True)
            ce = cross_entropy(self.model(val[0], weights=self.gumbel_weights()), val[1])
            self.alpha.grad = torch.autograd.grad(self.arch_loss(ce), self.alpha)[0]
            self.arch_step_ready([self.alpha])
            self.arch_optimizer.step()
        weights = self.gumbel_weights().detach()
        return self.weight_step(x, y, lambda xs: self.replica(xs, weights=weights))

    def summary(self) -> dict[str, Any]:
        arch = self.derived_arch()
        out = {**super().summary(), "tau": self.tau, "latency_term": self.latency_term,
               f"derived_table_latency_{self.latency.unit}": self.latency.of(arch),
               f"expected_latency_{self.latency.unit}": float(self.expected_latency().detach()),
               "latency_table": self.latency.source}
        if self.unfrozen is not None:
            out["best_worst_unfrozen"] = [[self.space.choices(d)[k] if hasattr(self.space, "choices") else k
                                           for k in ks] for d, ks in enumerate(self.unfrozen)]
        if self.size is not None:
            out["derived_size_mb"] = self.size.of(arch)
            out["expected_size_mb"] = float(self.expected_size().detach())
            if self.size_limit_mb is not None:
                out["size_limit_mb"] = self.size_limit_mb
        return out
