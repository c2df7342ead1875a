"""Zero-cost signals: scores of an untrained network, from one or a few batches, that predict how well it trains.

Each signal takes a freshly initialised standalone subnet (`SearchSpace.build_subnet`, seeded) and returns a
number, larger = predicted better:

- `synflow` (Tanaka et al., NeurIPS 2020; as a NAS proxy, Abdelfattah et al., ICLR 2021): with every
  parameter replaced by its absolute value, BatchNorm removed and an all-ones input, R = sum of the outputs;
  the score is sum over conv/linear weights of |w * dR/dw|: how much "signal flow" the weights carry, data-free.
- `naswot` (Mellor et al., ICML 2021): the binary codes of which ReLUs fire for each image of a batch; with
  K[i, j] = number of units where images i and j agree, the score is log|det K|: how distinct the linear
  regions the untrained network puts different images in are.
- `jacob_cov` (Mellor et al., 2020, the first version of that paper): the Jacobian of the summed output with
  respect to each input image; from the eigenvalues l of the correlation matrix of these Jacobians across
  the batch, -sum(log(l + k) + 1 / (l + k)), k = 1e-5: how little the per-image Jacobians are correlated.
- `grad_norm` (Abdelfattah et al., ICLR 2021): sum over conv/linear weights of the Euclidean norm of the
  cross-entropy gradient on one batch.
- `snip` (Lee et al., ICLR 2019; as a NAS proxy, Abdelfattah et al., 2021): sum over conv/linear weights of
  |w * dL/dw| for the cross-entropy L: the saliency of connections at initialisation.
- `zico` (Li et al., ICLR 2023): per layer, the sum over its weights of mean(|g|) / std(g) of the
  cross-entropy gradients over several batches; the score is the sum over layers of its logarithm: large
  and steady gradients (high "inverse coefficient of variation") mean fast convergence.

`live_params` and `live_flops` count the parameters and FLOPs of the ops that run (dead NB201 edges hold
parameters but never run).

All are deterministic for a seed (the subnet's initialisation and the batches), and `ZeroCostScorer` caches
them per (signal, settings, canonical arch) in the same `ResultCache` as proxy accuracy. Imports `hwnas.core`
only besides torch and the search spaces' networks.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from hwnas.core.cache import CachedScorer, ResultCache
from hwnas.core.config import option
from hwnas.core.errors import UsageError
from hwnas.core.paths import cache_dir

Batch = tuple[torch.Tensor, torch.Tensor]


def _weights(model: nn.Module) -> list[torch.Tensor]:
    """The conv and linear weights: the parameters the gradient signals sum over."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))]


def _weight_grads(model: nn.Module, batch: Batch) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, dL/dweight) for the cross-entropy of one batch, in train mode (batch statistics)."""
    model.train()
    model.zero_grad(set_to_none=True)
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    if loss.requires_grad:
        loss.backward()
    return [(w, w.grad if w.grad is not None else torch.zeros_like(w)) for w in _weights(model)]


def grad_norm(model: nn.Module, batches: Sequence[Batch]) -> float:
    """Sum over conv/linear weights of ||dL/dw||_2 on the first batch."""
    return float(sum(g.norm() for _, g in _weight_grads(model, batches[0])))


def snip(model: nn.Module, batches: Sequence[Batch]) -> float:
    """Sum over conv/linear weights of |w * dL/dw| on the first batch."""
    return float(sum((w.detach() * g).abs().sum() for w, g in _weight_grads(model, batches[0])))


def _without_batchnorm(model: nn.Module) -> nn.Module:
    """A deep copy of `model` with every BatchNorm replaced by the identity."""
    clone = copy.deepcopy(model)
    for name, module in list(clone.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(module, child_name, nn.Identity())
    return clone


def _relu6_as_relu(model: nn.Module) -> nn.Module:
    """`model` (changed in place) with every ReLU6 replaced by ReLU."""
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(module, child_name, nn.ReLU())
    return model


def synflow(model: nn.Module, batches: Sequence[Batch]) -> float:
    """Sum over conv/linear weights of |w * dR/dw|, R = sum of the outputs for an all-ones input, with all
    parameters made positive and BatchNorm removed, in double precision (data-free: only the input's shape
    is taken from the batch). ReLU6 counts as ReLU: with positive weights and no BatchNorm every activation
    grows past 6, so a ReLU6 would pass no gradient and every MobileNetV2 subnet would score the same."""
    net = _relu6_as_relu(_without_batchnorm(model)).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    x = torch.ones((1, *batches[0][0].shape[1:]), dtype=torch.float64)
    out = net(x).sum()
    if out.requires_grad:
        out.backward()
    return float(sum((w.detach() * w.grad).abs().sum() for w in _weights(net) if w.grad is not None))


def activation_codes(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(batch, units) 0/1 matrix: which ReLU units fire (input > 0) for each image, over every nn.ReLU and
    nn.ReLU6 module (a ReLU applied as a function is not seen)."""
    codes: list[torch.Tensor] = []

    def hook(module, inputs, output):
        codes.append((inputs[0].detach() > 0).flatten(1).to(torch.float32))
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    try:
        model.train()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    if not codes:
        return torch.zeros((len(x), 0), dtype=torch.float32)
    return torch.cat(codes, dim=1)


def naswot_from_codes(codes: torch.Tensor) -> float:
    """log|det K| for K[i, j] = units where codes i and j agree (both fire or both do not); -inf when K is
    singular (two images with identical codes)."""
    # With s = 2c - 1 (+1 fires, -1 does not), s_i . s_j = agree - disagree = 2 agree - units: one product
    # instead of two. Every partial sum is an integer of at most `units`, exact in float32 below 2^24.
    s = codes.to(torch.float32 if codes.shape[1] < 2 ** 24 else torch.float64) * 2 - 1
    agree = ((s @ s.T).to(torch.float64) + codes.shape[1]) / 2
    sign, logdet = torch.linalg.slogdet(agree)
    return float(logdet) if sign != 0 else float("-inf")


def naswot(model: nn.Module, batches: Sequence[Batch]) -> float:
    """NASWOT's log|det K| over the first batch's ReLU activation codes."""
    return naswot_from_codes(activation_codes(model, batches[0][0]))


def jacob_cov_from_jacobians(jacobians: torch.Tensor, k: float = 1e-5) -> float:
    """-sum(log(l + k) + 1 / (l + k)) over the eigenvalues l of the correlation matrix of the rows of
    `jacobians` (one flattened Jacobian per image)."""
    j = jacobians.to(torch.float64)
    corr = torch.corrcoef(j)
    corr = torch.nan_to_num(corr, nan=0.0)
    eig = torch.linalg.eigvalsh(corr)
    return float(-torch.sum(torch.log(eig + k) + 1.0 / (eig + k)))


def jacob_cov(model: nn.Module, batches: Sequence[Batch]) -> float:
    """Mellor et al.'s Jacobian covariance score on the first batch."""
    x = batches[0][0].clone().requires_grad_(True)
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(x).sum()
    if out.requires_grad:
        out.backward()
    grad = x.grad if x.grad is not None else torch.zeros_like(x)  # an output that ignores the input
    return jacob_cov_from_jacobians(grad.flatten(1))


def zico_from_grads(grads: Sequence[Sequence[torch.Tensor]]) -> float:
    """ZiCo from per-batch gradients: grads[b][l] is layer l's weight gradient on batch b. Per layer, the sum
    over weights with a non-zero std of mean(|g|) / std(g) across batches; the score is the sum over layers of
    its log (layers whose sum is 0 add nothing)."""
    if len(grads) < 2:
        raise UsageError(f"ZiCo needs gradients of at least 2 batches, got {len(grads)}")
    score = 0.0
    for layer in zip(*grads):
        g = torch.stack([t.to(torch.float64).flatten() for t in layer])
        std = g.std(dim=0, unbiased=False)
        mean = g.abs().mean(dim=0)
        ok = std > 0
        total = float((mean[ok] / std[ok]).sum())
        if total > 0:
            score += math.log(total)
    return score


def zico(model: nn.Module, batches: Sequence[Batch]) -> float:
    """ZiCo over every given batch (at least two)."""
    grads = [[g.detach().clone() for _, g in _weight_grads(model, b)] for b in batches]
    return zico_from_grads(grads)


def live_params(model: nn.Module, batches: Sequence[Batch]) -> float:
    """Parameters (millions) of the modules that take part in a forward pass of one image: a dead op (an NB201
    edge that cannot reach the cell output) holds parameters but never runs."""
    ran: set[int] = set()
    handles = [m.register_forward_hook(lambda mod, i, o: ran.add(id(mod))) for m in model.modules()
               if not list(m.children())]
    try:
        model.eval()
        with torch.no_grad():
            model(batches[0][0][:1])
    finally:
        for h in handles:
            h.remove()
    return sum(p.numel() for m in model.modules() if id(m) in ran for p in m.parameters(recurse=False)) / 1e6


def live_flops(model: nn.Module, batches: Sequence[Batch]) -> float:
    """Forward FLOPs (millions) of one image as torch's FlopCounterMode counts the ops that run: more compute
    usually means more accuracy in these spaces (the counter `flops` is the same number as a cost)."""
    from hwnas.hardware.counters import flops_m

    return flops_m(model, (1, *batches[0][0].shape[1:]))


#: signal name -> (function(model, batches) -> score, batches it needs)
SIGNALS: dict[str, tuple[Callable[[nn.Module, Sequence[Batch]], float], int]] = {
    "synflow": (synflow, 1),
    "naswot": (naswot, 1),
    "jacob_cov": (jacob_cov, 1),
    "grad_norm": (grad_norm, 1),
    "snip": (snip, 1),
    "zico": (zico, 2),
    "live_params": (live_params, 1),
    "live_flops": (live_flops, 1),
}


@dataclass
class ZeroCostSettings:
    """Where zero-cost signals are computed: the network size and the batches; part of the cache key.
    C=8, N=1 and batch 64 are chosen for cost (a whole-space score must stay affordable on 2 cores); how well
    each signal ranks at this size is measured by `python -m hwnas.benchmarks.ranking`."""

    zc_channels: int = option(8, help="C of the network zero-cost signals are computed on")
    zc_cells: int = option(1, help="N of the network zero-cost signals are computed on")
    zc_batch_size: int = option(64, help="images per batch for zero-cost signals")
    zc_batches: int = option(2, help="batches for the signals that take several (ZiCo)")
    zc_seed: int = option(0, help="seed of the network's initialisation and of the batches")

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def signal_batches(dataset: str, settings: ZeroCostSettings, data: str | None = None) -> list[Batch]:
    """`settings.zc_batches` normalised, unaugmented batches of the data set's training half (the NB201
    search split, seed 0), in an order drawn with `zc_seed`."""
    from .data import TensorBatches, load_dataset, make_splits

    raw = load_dataset(dataset, data)
    train = make_splits(raw, protocol="search", seed=0).train
    need = settings.zc_batch_size * settings.zc_batches
    if len(train[1]) < need:
        raise UsageError(f"zero-cost signals need {need} images (batch size x batches), the split has "
                         f"{len(train[1])}")
    batches = TensorBatches(*train, settings.zc_batch_size, raw.mean, raw.std, augment=False, shuffle=True,
                            seed=settings.zc_seed, drop_last=True)
    return [b for _, b in zip(range(settings.zc_batches), batches)]


class ZeroCostScorer(CachedScorer):
    """One zero-cost signal of the archs of `space`, computed on seeded untrained subnets and cached per
    canonical arch in `cache` (default: `zero_cost.sqlite` in the cache folder)."""

    def __init__(self, signal: str, space, batches: Sequence[Batch], num_classes: int,
                 settings: ZeroCostSettings | None = None, cache: str | Path | None = None, progress: bool = True,
                 dataset: str = "cifar10"):
        if signal not in SIGNALS:
            raise UsageError(f"unknown zero-cost signal '{signal}'; valid: {', '.join(SIGNALS)}")
        self.signal, self.space, self.batches = signal, space, list(batches)
        self.settings = settings or ZeroCostSettings()
        self.fn, need = SIGNALS[signal]
        if len(self.batches) < need:
            raise UsageError(f"signal '{signal}' needs {need} batches, got {len(self.batches)}")
        self.num_classes = num_classes
        self.cache = ResultCache(cache or cache_dir() / "zero_cost.sqlite")
        self.source = f"zc:{signal}"
        setting = {"space": space.name, "options": space.options, "dataset": dataset, "classes": num_classes}
        if signal == "synflow" and space.name != "nb201":
            setting["rev"] = 2  # ReLU6 counted as ReLU (NB201 has no ReLU6: its values and keys are unchanged)
        self.setting = json.dumps(setting, sort_keys=True) + self.settings.key()
        self.label, self.progress = f"zc:{signal}", progress

    def compute(self, key: str) -> float:
        s = self.settings
        with torch.random.fork_rng(devices=[]):  # the seeded initialisation leaves the caller's RNG as it was
            torch.manual_seed(s.zc_seed)
            model = self.space.build_subnet(self.space.from_str(key), channels=s.zc_channels, cells=s.zc_cells,
                                            num_classes=self.num_classes)
            return self.fn(model, self.batches)

    def __call__(self, archs: Iterable) -> np.ndarray:
        return np.array(self.cached([self.space.to_str(self.space.canonical(a)) for a in archs]), dtype=float)
