"""The NAS-Bench-201 cell space: 6 edges x 5 ops = 15,625 cells.

Encoding: 6 integers in 0..4, edges in the official order 0->1, 0->2, 1->2, 0->3, 1->3, 2->3, ops
none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3. The benchmark's own arch index
(0..15624, the order of NAS-Bench-201 / NATS-Bench tss / HW-NAS-Bench) is a fixed permutation of
the encodings, shipped as `nb201_index.npy` (row i = base-5 code of arch index i).

Isomorphism (`canonical`): two cells are the same when their output node computes the same expression,
built node by node as in NAS-Bench-201's `to_unique_str(consider_zero=True)`: `skip_connect` passes
its input's expression through, `none` or an input that is zero gives a zero term '#', any other op
wraps its input's expression, and a node's terms are sorted (addition commutes). This gives the
accepted 6,466 classes, one-to-one with NATS-Bench's `UniqueString`. Dropping the zero terms as well
(x + 0 = x) would merge further, to 5,390 classes; we keep NB201's rule because the benchmark trained
and reports those cells separately, so its classes are the ground truth our proxy is held against.
The representative of a class is its member with the smallest base-5 code.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch.nn as nn

from hwnas.core.errors import UsageError

from ..nb201_net import EDGES, Cell, NB201Network, live_edges
from ..ops import NB201_OPS
from . import register_space
from .base import Arch, SearchSpace

NUM_EDGES = len(EDGES)
NUM_OPS = len(NB201_OPS)
NUM_ARCHS = NUM_OPS ** NUM_EDGES
_TOKEN = re.compile(r"^([a-z0-9_]+)~(\d+)$")


class _NodeSum(nn.Module):
    """Adding one more input into a cell node (x + x stands in for two different tensors of that shape)."""

    def forward(self, x):
        return x + x


def _code(arch: Arch) -> int:
    c = 0
    for a in arch:
        c = c * NUM_OPS + a
    return c


def _from_code(code: int) -> Arch:
    digits = []
    for _ in range(NUM_EDGES):
        code, d = divmod(code, NUM_OPS)
        digits.append(d)
    return tuple(reversed(digits))


def unique_str(arch: Arch, drop_zero_terms: bool = False) -> str:
    """Expression of the cell's output node (see module docstring); equal strings = isomorphic cells."""
    nodes = {0: "0"}
    for j in (1, 2, 3):
        terms = []
        for e, (s, t) in enumerate(EDGES):
            if t != j:
                continue
            op, src = NB201_OPS[arch[e]], nodes[s]
            if op == "none" or src == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(src)
            else:
                terms.append(f"({src})@{op}")
        if drop_zero_terms:
            terms = [t for t in terms if t != "#"] or ["#"]
        nodes[j] = "+".join(sorted(terms))
    return nodes[3]


@lru_cache(maxsize=1)
def _index_tables() -> tuple[np.ndarray, np.ndarray]:
    codes = np.load(Path(__file__).with_name("nb201_index.npy")).astype(np.int64)
    index_of_code = np.empty(NUM_ARCHS, dtype=np.int64)
    index_of_code[codes] = np.arange(NUM_ARCHS)
    return codes, index_of_code


@lru_cache(maxsize=1)
def _canonical_codes() -> np.ndarray:
    first: dict[str, int] = {}
    out = np.empty(NUM_ARCHS, dtype=np.int64)
    for code in range(NUM_ARCHS):  # ascending, so the first member seen is the smallest code
        out[code] = first.setdefault(unique_str(_from_code(code)), code)
    return out


@register_space("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201 cell space (see module docstring for encoding, index and isomorphism rule)."""

    ops = NB201_OPS
    edges = EDGES

    @property
    def num_choices(self) -> tuple[int, ...]:
        return (NUM_OPS,) * NUM_EDGES

    def to_str(self, arch: Arch) -> str:
        arch = self.validate(arch)
        nodes, e = [], 0
        for j in (1, 2, 3):
            toks = []
            for i in range(j):
                toks.append(f"{NB201_OPS[arch[e]]}~{i}")
                e += 1
            nodes.append("|" + "|".join(toks) + "|")
        return "+".join(nodes)

    def from_str(self, text: str) -> Arch:
        s = text.strip()
        parts = s.split("+")
        bad = f"bad NB201 arch string {text!r}: expected 3 nodes like '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'"
        if len(parts) != 3:
            raise UsageError(bad)
        arch = []
        for j, part in enumerate(parts, start=1):
            if not (part.startswith("|") and part.endswith("|")):
                raise UsageError(bad)
            toks = part[1:-1].split("|")
            if len(toks) != j:
                raise UsageError(bad)
            for i, tok in enumerate(toks):
                m = _TOKEN.match(tok)
                if not m or int(m.group(2)) != i:
                    raise UsageError(bad)
                if m.group(1) not in NB201_OPS:
                    raise UsageError(f"unknown op {m.group(1)!r} in {text!r}; valid: {', '.join(NB201_OPS)}")
                arch.append(NB201_OPS.index(m.group(1)))
        return tuple(arch)

    def index(self, arch: Arch) -> int:
        """The official NAS-Bench-201 arch index (0..15624)."""
        return int(_index_tables()[1][_code(self.validate(arch))])

    def from_index(self, index: int) -> Arch:
        """Arch at official NAS-Bench-201 index `index`."""
        if not 0 <= int(index) < NUM_ARCHS:
            raise UsageError(f"NB201 index {index} out of range; valid: 0..{NUM_ARCHS - 1}")
        return _from_code(int(_index_tables()[0][int(index)]))

    def is_skip(self, decision: int, choice: int) -> bool:
        return NB201_OPS[choice] == "skip_connect"

    def is_zero(self, decision: int, choice: int) -> bool:
        return NB201_OPS[choice] == "none"

    def has_signal(self, arch: Arch) -> bool:
        return bool(live_edges(self.validate(arch)))

    def canonical(self, arch: Arch) -> Arch:
        return _from_code(int(_canonical_codes()[_code(self.validate(arch))]))

    def canonical_archs(self) -> list[Arch]:
        """One representative per isomorphism class (6,466), in ascending base-5 code."""
        return [_from_code(int(c)) for c in np.unique(_canonical_codes())]

    def all_archs(self) -> list[Arch]:
        """Every arch, in official index order."""
        return [_from_code(int(c)) for c in _index_tables()[0]]

    def build_supernet(self, channels: int = 16, cells: int = 5, num_classes: int = 10,
                       **cfg: Any) -> NB201Network:
        return NB201Network(channels=channels, cells=cells, num_classes=num_classes, **cfg)

    def latency_blocks(self, input_shape: Sequence[int] = (1, 3, 32, 32), channels: int = 16, cells: int = 5,
                       num_classes: int = 10, **cfg: Any) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
        """Blocks of the NB201 network for a lookup table: `stem`, per stage s in 0..2 every op
        (`s<s>/<op>`) and the node sum (`s<s>/add`), `reduction1`, `reduction2` and `head` (BN, ReLU,
        pooling, classifier). Cells of one stage see the same shape, so an op is timed once per stage."""
        net = self.build_supernet(channels, cells, num_classes, **cfg).eval()
        b, _, h, w = (int(v) for v in input_shape)
        blocks: dict[str, tuple[nn.Module, tuple[int, ...]]] = {"stem": (net.stem, (b, 3, h, w))}
        cell_modules = [m for m in net.layers if isinstance(m, Cell)]
        reductions = [m for m in net.layers if not isinstance(m, Cell)]
        c = channels
        for stage in range(3):
            if stage:
                blocks[f"reduction{stage}"] = (reductions[stage - 1], (b, c, h, w))
                c, h, w = 2 * c, (h + 1) // 2, (w + 1) // 2
            edge = cell_modules[stage * cells].edges[0]
            for name in NB201_OPS[1:]:
                blocks[f"s{stage}/{name}"] = (edge.ops[name], (b, c, h, w))
            blocks[f"s{stage}/add"] = (_NodeSum(), (b, c, h, w))
        blocks["head"] = (nn.Sequential(net.head, net.pool, nn.Flatten(), net.classifier), (b, c, h, w))
        return blocks

    def arch_blocks(self, arch: Arch, cells: int = 5, **cfg: Any) -> list[str]:
        """Blocks `arch` runs: the stem, per cell its live edges' ops and one sum per extra node input,
        the two reductions and the head (see `live_edges`: dead edges and `none` run nothing)."""
        arch = self.parse(arch)
        live = live_edges(arch)
        inputs_per_node = Counter(EDGES[e][1] for e in live)
        adds = sum(n - 1 for n in inputs_per_node.values())
        blocks = ["stem"]
        for stage in range(3):
            if stage:
                blocks.append(f"reduction{stage}")
            per_cell = [f"s{stage}/{NB201_OPS[arch[e]]}" for e in live] + [f"s{stage}/add"] * adds
            blocks += per_cell * cells
        return blocks + ["head"]

    def build_subnet(self, arch: Arch, supernet: nn.Module | None = None, **cfg: Any) -> NB201Network:
        arch = self.parse(arch)
        if supernet is not None:
            net = NB201Network(arch=arch, **{**supernet.config, **cfg})
            return net.inherit_from(supernet)
        return NB201Network(arch=arch, **cfg)
