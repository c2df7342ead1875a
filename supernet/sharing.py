"""Weight sharing inside a layer of a layer-wise supernet (Once-for-All, Cai et al., ICLR 2020; FBNetV2, Wan
et al., CVPR 2020): the candidate blocks of a layer that differ only in kernel size and width take their
weights from one block at the largest size, instead of keeping a copy each.

A layer's blocks fall into weight groups (the space says which: `LayerwiseSpace.shared_group`). Each group
holds one full-size block, the *largest* member (most parameters). A member's every weight is cut from the
full-size one of the same name: the leading channels of dims 0 and 1 (the first `hidden` expanded channels of
a MobileNetV2 block, the filters of a convolution with fewer outputs) and the centre `k x k` of a kernel (a
3x3 depthwise kernel is the centre of the 7x7 one); BatchNorm parameters and statistics take their leading
channels. Optionally (OFA's *kernel transformation*), a smaller kernel is the centre of the next larger one
times a learned (k^2 x k^2) matrix, one per layer and kernel step, shared by all channels and initialised to
the identity.

The supernet's path for a member runs that member's own block structure (a parameter-free copy on the meta
device, `torch.func.functional_call`) on the cut weights, so it computes exactly what a standalone block of
that member computes with those weights (`sliced_state`): weight inheritance is cutting, and a subnet gives
the supernet path's logits. Gradients of every member reach the shared full-size tensors.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn
from torch.func import functional_call

from hwnas.core.errors import UsageError


def cut(full: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The part of `full` a tensor of `shape` takes: leading entries of dims 0 and 1, the centre of any dim
    beyond (kernel height and width). A view, so gradients and in-place BN updates reach `full`."""
    if len(shape) != full.dim() or any(s > f for s, f in zip(shape, full.shape)):
        raise ValueError(f"cannot cut a {tuple(shape)} tensor out of a {tuple(full.shape)} one")
    index = []
    for d, (s, f) in enumerate(zip(shape, full.shape)):
        start = 0 if d < 2 else (f - s) // 2
        index.append(slice(start, start + s))
    return full[tuple(index)]


def _kernel_tensors(block: nn.Module) -> dict[str, int]:
    """Names of the convolution weights of `block` with square kernels larger than 1x1 -> kernel size."""
    out = {}
    for name, m in block.named_modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size[0] == m.kernel_size[1] and m.kernel_size[0] > 1:
            out[f"{name}.weight" if name else "weight"] = m.kernel_size[0]
    return out


class WeightGroup(nn.Module):
    """One full-size block and the (meta-device, parameter-free) structures of the members cut from it."""

    def __init__(self, members: dict[int, nn.Module], kernel_transform: bool = False):
        super().__init__()
        sizes = {k: sum(t.numel() for t in m.state_dict().values()) for k, m in members.items()}
        self.full_choice = max(sizes, key=lambda k: (sizes[k], -k))
        self.full = members[self.full_choice]
        full_state = self.full.state_dict()
        for k, m in members.items():
            state = m.state_dict()
            if set(state) != set(full_state):
                raise UsageError(f"blocks cannot share weights: choice {k} has tensors "
                                 f"{sorted(set(state) ^ set(full_state))[:3]} that choice {self.full_choice} lacks")
            for name, t in state.items():
                if t.dim() != full_state[name].dim() or any(a > b for a, b in zip(t.shape, full_state[name].shape)):
                    raise UsageError(f"blocks cannot share weights: '{name}' of choice {k} {tuple(t.shape)} does "
                                     f"not fit inside choice {self.full_choice}'s {tuple(full_state[name].shape)}")
        # The full-size member runs its own module; each other member a parameter-free copy of its structure.
        self._structure: dict[int, nn.Module | None] = {
            k: (None if k == self.full_choice else m.to("meta")) for k, m in members.items()}
        # What a forward needs of each member, found once here rather than by walking its modules per call:
        # its kernel sizes (for the transforms) and its BatchNorms paired with the full-size block's.
        self._kernels = {k: _kernel_tensors(m) for k, m in self._structure.items() if m is not None}
        self._bn_pairs = {k: [mine for _, mine in _named_bns(m)] for k, m in self._structure.items() if m is not None}
        self._full_bns = [bn for _, bn in _named_bns(self.full)]
        self.kernel_transform = kernel_transform
        self.transforms = nn.ParameterDict()
        self._steps: dict[str, list[int]] = {}  # kernel tensor -> its sizes among the members, largest first
        if kernel_transform:
            for name, big in _kernel_tensors(self.full).items():
                sizes = {big} | {kernels.get(name, big) for kernels in self._kernels.values()}
                self._steps[name] = sorted(sizes, reverse=True)
                for a, b in zip(self._steps[name], self._steps[name][1:]):
                    self.transforms[self._transform_key(name, a, b)] = nn.Parameter(torch.eye(b * b))

    @staticmethod
    def _transform_key(name: str, a: int, b: int) -> str:
        return f"{name.replace('.', '_')}__{a}to{b}"

    def _kernel(self, name: str, full: torch.Tensor, k: int) -> torch.Tensor:
        """OFA's transformed kernel of size k: the centre of each larger size times its matrix, step by step."""
        w, steps = full, self._steps[name]
        for a, b in zip(steps, steps[1:]):
            if b < k:
                break
            w = cut(w, (*w.shape[:2], b, b))
            w = (w.reshape(-1, b * b) @ self.transforms[self._transform_key(name, a, b)]).reshape(w.shape)
        return w

    def member_tensors(self, choice: int) -> dict[str, torch.Tensor]:
        """Every parameter and buffer of member `choice`, cut from the full-size block (views)."""
        structure = self._structure[choice]
        full = dict(self.full.named_parameters())
        full.update(self.full.named_buffers())
        if structure is None:
            return full
        out = {}
        own = dict(structure.named_parameters())
        own.update(structure.named_buffers())
        kernels = self._kernels[choice] if self.kernel_transform else {}
        for name, t in own.items():
            if t.dim() == 0:
                out[name] = full[name]
            elif name in kernels and kernels[name] < full[name].shape[-1]:
                out[name] = cut(self._kernel(name, full[name], kernels[name]), t.shape)
            else:
                out[name] = cut(full[name], t.shape)
        return out

    def forward(self, x: torch.Tensor, choice: int) -> torch.Tensor:
        structure = self._structure[choice]
        if structure is None:
            return self.full(x)
        # The meta copy's BatchNorms follow the full-size block's mode (train/eval, momentum: `bn.py` changes
        # both on the modules it finds, and it finds only the registered full-size ones).
        for mine, theirs in zip(self._bn_pairs[choice], self._full_bns):
            mine.training, mine.momentum = theirs.training, theirs.momentum
        return functional_call(structure, self.member_tensors(choice), (x,), strict=True)


def _named_bns(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in module.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class SharedChoiceLayer(nn.Module):
    """The candidate blocks of one supernet layer: members of a weight group run on cut weights
    (`groups.<name>`), the other blocks keep their own (`blocks.<choice>`)."""

    def __init__(self, choices: Sequence[str], make: Callable[[str], nn.Module], group_of: Callable[[str], str | None],
                 kernel_transform: bool = False):
        super().__init__()
        self.choices, self._make = tuple(choices), make
        grouped: dict[str, dict[int, nn.Module]] = {}
        own: dict[str, nn.Module] = {}
        self.group_of_choice: dict[int, str] = {}
        for k, name in enumerate(choices):
            g = group_of(name)
            if g is None:
                own[str(k)] = make(name)
            else:
                grouped.setdefault(g, {})[k] = make(name)
                self.group_of_choice[k] = g
        self.blocks = nn.ModuleDict(own)
        self.groups = nn.ModuleDict({g: WeightGroup(m, kernel_transform) for g, m in grouped.items()})

    def forward(self, x: torch.Tensor, choice: int) -> torch.Tensor:
        g = self.group_of_choice.get(choice)
        return self.blocks[str(choice)](x) if g is None else self.groups[g](x, choice)

    def block_state(self, choice: int) -> dict[str, torch.Tensor]:
        """The state dict a standalone block of `choice` inherits (cut weights for a group member)."""
        g = self.group_of_choice.get(choice)
        if g is None:
            return self.blocks[str(choice)].state_dict()
        return {n: t.detach().clone() for n, t in self.groups[g].member_tensors(choice).items()}

    def block(self, choice: int) -> nn.Module:
        """A standalone block of `choice` holding the weights it inherits (the layer's own for an unshared one)."""
        g = self.group_of_choice.get(choice)
        if g is None:
            return self.blocks[str(choice)]
        block = self._make(self.choices[choice]).to(next(self.groups[g].full.parameters()).device)
        block.load_state_dict(self.block_state(choice))
        return block
