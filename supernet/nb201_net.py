"""The NAS-Bench-201 network: one class serves as the weight-sharing supernet and as a standalone subnet.

Macro skeleton of the benchmark: 3x3 stem conv + BN, three stages of N cells (C, 2C, 4C channels)
separated by residual reduction blocks, BN + ReLU, global average pooling, a linear classifier.
A cell has 4 nodes; node j sums op_{i->j}(node_i) over i < j; node 3 is the output.

The supernet holds all candidate ops on every edge; a subnet holds only its arch's ops, under the same
parameter names, so `subnet.load_state_dict(supernet's matching entries)` is weight inheritance and both
compute the same function. Three forward styles:
  - single path  `net(x, arch)`: only the arch's ops run; no op runs for `none`, edges that cannot
    reach the cell output are skipped, and a node with no live input is an exact zero;
  - mixture      `net(x, weights=W)` with W (6, 5): DARTS' softmax relaxation, `none` contributes 0;
  - hard Gumbel  `net(x, hard=(H, index))`: GDAS; exactly one op runs per edge, H carries the
    straight-through gradient.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from hwnas.core.errors import UsageError

from .ops import NB201_OPS, AvgPool3x3, ReLUConvBN, ResidualReduction, make_op

EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))  # official edge order: (source, target)
NONE = 0

#: Exact speed-ups of the forward passes (the same function, losses and gradients to float rounding), each
#: measured alone in `benchmarks/results/train_speed.md` (`python -m hwnas.benchmarks.train_speed`):
#:   shared_relu     a node's ReLU computed once for all the convolutions it feeds (ops are ReLU-Conv-BN)
#:   scaled_bn       a mixture weight times a conv op folded into that op's BatchNorm as its affine weight,
#:                   and times the pooling op into its inverse-count map (DARTS, FBNet, GDAS)
#:   sum_from_first  sums start from their first term, not from 0 (`0 + t` is a full pass over t)
#:   scalar_none     GDAS: a sampled `none` contributes its straight-through scalar, not `h * 0`
#: `NB201Network.speedups` selects them: all by default, `frozenset()` for the plain path.
SPEEDUPS = frozenset({"shared_relu", "scaled_bn", "sum_from_first", "scalar_none"})


def live_edges(arch: Sequence[int]) -> list[int]:
    """Indices of the edges whose op must run for `arch`: not `none`, fed by a node that carries signal
    from the cell input, and leading to the cell output."""
    reach = {0}
    for j in (1, 2, 3):
        if any(arch[e] != NONE and s in reach for e, (s, t) in enumerate(EDGES) if t == j):
            reach.add(j)
    useful = {3}
    for j in (2, 1):
        if any(arch[e] != NONE and t in useful for e, (s, t) in enumerate(EDGES) if s == j):
            useful.add(j)
    return [e for e, (s, t) in enumerate(EDGES) if arch[e] != NONE and s in reach and t in useful]


CONV_OPS = frozenset(i for i, name in enumerate(NB201_OPS) if name.startswith("nor_conv"))


def live_convs(arch: Sequence[int]) -> int:
    """Convolutions that run in a cell of `arch`: conv ops on live edges (a dead one holds weights but never
    runs, so it adds nothing to what the cell computes)."""
    return sum(arch[e] in CONV_OPS for e in live_edges(arch))


def conv_depth(arch: Sequence[int]) -> int:
    """The most convolutions on one path from the cell input to its output over live edges (0 when the
    output is reached through skips and pools only, or not at all)."""
    best = {0: 0}
    for e in live_edges(arch):  # live edges come in an order where each source is settled before its targets
        s, t = EDGES[e]
        if s in best:
            best[t] = max(best.get(t, 0), best[s] + (arch[e] in CONV_OPS))
    return best.get(3, 0)


class Edge(nn.Module):
    """The candidate ops of one edge, keyed by op name (only those a subnet keeps)."""

    def __init__(self, channels: int, op_names: Sequence[str], affine: bool, track: bool):
        super().__init__()
        self.ops = nn.ModuleDict({n: make_op(n, channels, affine, track) for n in op_names if n != "none"})

    def forward(self, x: torch.Tensor, op: int) -> torch.Tensor:
        return self.ops[NB201_OPS[op]](x)


class Cell(nn.Module):
    """One NB201 cell; edges hold all ops (supernet) or one op each (subnet). `speedups`: see `SPEEDUPS`."""

    def __init__(self, channels: int, ops_per_edge: Sequence[Sequence[str]], affine: bool, track: bool):
        super().__init__()
        self.edges = nn.ModuleList(Edge(channels, names, affine, track) for names in ops_per_edge)
        self.speedups = SPEEDUPS

    def _run(self, e: int, k: int, h: torch.Tensor, relu: dict, s: int, scale: torch.Tensor | None = None
             ) -> torch.Tensor:
        """Op `k` of edge `e` on node `s`'s value `h` (times `scale`, when given); `relu` holds the node ReLUs
        already computed (shared_relu)."""
        op = self.edges[e].ops[NB201_OPS[k]]
        fold = scale is not None and "scaled_bn" in self.speedups
        if isinstance(op, ReLUConvBN) and ("shared_relu" in self.speedups or fold):
            shared = "shared_relu" in self.speedups
            if shared and s not in relu:
                relu[s] = torch.relu(h)
            y = op(relu[s] if shared else h, activated=shared, scale=scale if fold else None)
            if fold:
                return y
        elif fold and isinstance(op, AvgPool3x3):
            return op(h, scale=scale)
        else:
            y = op(h)
        return y if scale is None else scale * y

    def _sum(self, terms) -> torch.Tensor | int:
        terms = list(terms)
        if "sum_from_first" in self.speedups and terms:
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            return total
        return sum(terms)

    def forward_path(self, x: torch.Tensor, arch: Sequence[int], live: Sequence[int]) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x, None, None, None]
        relu: dict = {}
        for e in live:
            s, t = EDGES[e]
            y = self._run(e, arch[e], nodes[s], relu, s)
            nodes[t] = y if nodes[t] is None else nodes[t] + y
        return nodes[3] if nodes[3] is not None else torch.zeros_like(x)

    def _dense(self, x: torch.Tensor, edge_output) -> torch.Tensor:
        """Every edge contributes `edge_output(e, s, input, relu)`; used by the mixture and hard-Gumbel
        forwards."""
        nodes, relu = [x], {}
        for j in (1, 2, 3):
            total = self._sum(edge_output(e, s, nodes[s], relu) for e, (s, t) in enumerate(EDGES) if t == j)
            if torch.is_tensor(total) and total.dim() == 0:  # only scalars (sampled `none`s) reached node j
                total = total + torch.zeros_like(x)
            nodes.append(total if torch.is_tensor(total) else torch.zeros_like(x))
        return nodes[3]

    def forward_mixture(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        def mix(e, s, h, relu):
            return self._sum(self._run(e, k, h, relu, s, weights[e, k]) for k, name in enumerate(NB201_OPS)
                             if name != "none")
        return self._dense(x, mix)

    def forward_hard(self, x: torch.Tensor, hard: torch.Tensor, index: Sequence[int]) -> torch.Tensor:
        def one_op(e, s, h, relu):
            k = int(index[e])
            # The other ops' weights are 0 in value but carry GDAS' straight-through gradient.
            rest = hard[e].sum() - hard[e, k]
            if k == NONE:
                if "scalar_none" in self.speedups:  # hard * 0 has the gradient of hard * (h * 0): zero
                    return hard[e, k] * 0 + rest
                return hard[e, k] * (h * 0) + rest
            return self._run(e, k, h, relu, s, hard[e, k]) + rest
        return self._dense(x, one_op)


class NB201Network(nn.Module):
    """NB201 supernet (`arch=None`) or subnet (`arch` given: only its ops are built)."""

    def __init__(self, channels: int = 16, cells: int = 5, num_classes: int = 10,
                 arch: Sequence[int] | None = None, affine: bool = False, track_running_stats: bool = True):
        super().__init__()
        self.config = dict(channels=channels, cells=cells, num_classes=num_classes,
                           affine=affine, track_running_stats=track_running_stats)
        self.arch = tuple(arch) if arch is not None else None
        if self.arch is None:
            ops_per_edge = [NB201_OPS] * len(EDGES)
        else:
            ops_per_edge = [[NB201_OPS[a]] for a in self.arch]
        C = channels
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        for stage in range(3):
            if stage:
                layers.append(ResidualReduction(C, 2 * C, affine=True, track_running_stats=track_running_stats))
                C *= 2
            layers += [Cell(C, ops_per_edge, affine, track_running_stats) for _ in range(cells)]
        self.layers = nn.ModuleList(layers)
        self.head = nn.Sequential(nn.BatchNorm2d(C), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C, num_classes)

    @property
    def speedups(self) -> frozenset:
        """The `SPEEDUPS` this network's cells use (all by default; `frozenset()`: the plain path)."""
        return next((m.speedups for m in self.layers if isinstance(m, Cell)), SPEEDUPS)

    @speedups.setter
    def speedups(self, names) -> None:
        names = frozenset(names)
        if names - SPEEDUPS:
            raise UsageError(f"unknown speed-up {sorted(names - SPEEDUPS)[0]!r}; valid: {', '.join(sorted(SPEEDUPS))}")
        for m in self.layers:
            if isinstance(m, Cell):
                m.speedups = names

    def choice_parameters(self, decision: int, choice: int) -> list[nn.Parameter]:
        """The weights only choice `choice` of edge `decision` uses (that op in every cell; none for
        parameter-free ops)."""
        name = NB201_OPS[choice]
        return [p for layer in self.layers if isinstance(layer, Cell) and name in layer.edges[decision].ops
                for p in layer.edges[decision].ops[name].parameters()]

    def forward(self, x: torch.Tensor, arch: Sequence[int] | None = None, weights: torch.Tensor | None = None,
                hard: tuple[torch.Tensor, Sequence[int]] | None = None) -> torch.Tensor:
        """Logits. Give exactly one of `arch` (single path), `weights` (DARTS) or `hard` (GDAS);
        a subnet uses its own arch when none is given."""
        if arch is None and weights is None and hard is None:
            if self.arch is None:
                raise UsageError("a supernet forward needs arch=..., weights=... or hard=...")
            arch = self.arch
        live = live_edges(arch) if arch is not None else None
        x = self.stem(x)
        for layer in self.layers:
            if not isinstance(layer, Cell):
                x = layer(x)
            elif arch is not None:
                x = layer.forward_path(x, arch, live)
            elif weights is not None:
                x = layer.forward_mixture(x, weights)
            else:
                x = layer.forward_hard(x, hard[0], hard[1])
        x = self.pool(self.head(x)).flatten(1)
        return self.classifier(x)

    def inherit_from(self, supernet: "NB201Network") -> "NB201Network":
        """Copy the matching weights and BN statistics of `supernet` into this subnet."""
        own = self.state_dict()
        theirs = supernet.state_dict()
        missing = [k for k in own if k not in theirs]
        if missing:
            raise UsageError(f"supernet lacks parameter '{missing[0]}': it was built with another config")
        self.load_state_dict({k: theirs[k] for k in own})
        return self
