"""The `SearchSpace` interface every space implements: an integer encoding pymoo can search, arch strings,
canonical forms, sampling, and building the supernet and standalone subnets."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np
import torch.nn as nn

from hwnas.core.errors import UsageError

Arch = tuple[int, ...]


class SearchSpace(ABC):
    """A discrete space of architectures, one integer decision per searchable position."""

    name: str = ""

    def __init__(self, **options: Any):
        if options:
            raise UsageError(f"space '{self.name}' takes no options, got {', '.join(sorted(options))}")
        self.options: dict[str, Any] = {}

    @property
    @abstractmethod
    def num_choices(self) -> tuple[int, ...]:
        """How many options each decision has; the encoding's i-th integer lies in 0..num_choices[i]-1."""

    @property
    def size(self) -> int:
        """Number of architectures in the space (before merging isomorphic ones)."""
        return int(np.prod([int(n) for n in self.num_choices], dtype=object))

    def encode(self, arch: Arch) -> np.ndarray:
        """The integer vector pymoo searches over."""
        return np.asarray(self.validate(arch), dtype=np.int64)

    def decode(self, x: Sequence[int] | np.ndarray) -> Arch:
        """Inverse of `encode`; rounds floats from numerical operators."""
        return self.validate(tuple(int(round(float(v))) for v in x))

    def validate(self, arch: Sequence[int]) -> Arch:
        """Return `arch` as a tuple, raising ValueError naming the bad decision if it is out of range."""
        arch = tuple(int(a) for a in arch)
        if len(arch) != len(self.num_choices):
            raise UsageError(f"arch {arch} has {len(arch)} decisions; space '{self.name}' has "
                             f"{len(self.num_choices)}")
        for i, (a, n) in enumerate(zip(arch, self.num_choices)):
            if not 0 <= a < n:
                raise UsageError(f"arch {arch}: decision {i} is {a}; valid: 0..{n - 1}")
        return arch

    @abstractmethod
    def to_str(self, arch: Arch) -> str:
        """Human-readable, round-trippable arch string."""

    @abstractmethod
    def from_str(self, text: str) -> Arch:
        """Parse an arch string; ValueError with one line naming what is wrong."""

    def canonical(self, arch: Arch) -> Arch:
        """Representative of `arch`'s isomorphism class (identity where the space has no isomorphisms)."""
        return self.validate(arch)

    def has_signal(self, arch: Arch) -> bool:
        """False for archs whose output ignores the input (an NB201 cell with no live edge): worth skipping
        where a few representative archs are wanted."""
        return True

    def is_skip(self, decision: int, choice: int) -> bool:
        """True when `choice` at `decision` is the identity (skip) op: what DARTS-style collapse piles onto."""
        return False

    def is_zero(self, decision: int, choice: int) -> bool:
        """True when `choice` at `decision` is the zero op (NB201's `none`): the other op a collapse piles onto."""
        return False

    def sample(self, rng: np.random.Generator) -> Arch:
        """One architecture drawn uniformly over encodings."""
        return tuple(int(rng.integers(n)) for n in self.num_choices)

    def parse(self, arch: Arch | str | Sequence[int]) -> Arch:
        """Accept an arch string, a tuple or an encoding."""
        if isinstance(arch, str):
            return self.from_str(arch)
        return self.validate(arch)

    @abstractmethod
    def build_supernet(self, **cfg: Any) -> nn.Module:
        """The weight-sharing network holding every candidate op."""

    @abstractmethod
    def build_subnet(self, arch: Arch, supernet: nn.Module | None = None, **cfg: Any) -> nn.Module:
        """A standalone module for `arch`; with `supernet`, it inherits that supernet's weights."""

    def latency_blocks(self, input_shape: Sequence[int] = (1, 3, 32, 32),
                       **cfg: Any) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
        """Every distinct block a subnet of this space can contain, as name -> (module, input shape at its
        position): what a per-block latency lookup table times."""
        raise NotImplementedError(f"space '{self.name}' does not define per-block latency tables")

    def arch_blocks(self, arch: Arch, **cfg: Any) -> list[str]:
        """Names (from `latency_blocks`) of the blocks `arch` runs, once per occurrence."""
        raise NotImplementedError(f"space '{self.name}' does not define per-block latency tables")
