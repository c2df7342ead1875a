"""A subnet described in plain JSON, and the builder that turns the description back into a module.

The remote measurement agent (`hardware.agent`) gets `build_described` injected: it receives only data
(space name, the space's own options, arch string, whitelisted integer net options), never pickles or
code.

    request = describe_request("nb201", "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|",
                               {"channels": 16, "cells": 5}, input_shape=(1, 3, 32, 32))
    model = build_described(request)   # what the agent does on the device
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from hwnas.core.errors import UsageError

from ..limits import SizeBudget, check_size
from . import get_space

# option -> inclusive range; anything else in "net" is refused
NET_OPTIONS: dict[str, tuple[int, int]] = {"channels": (1, 512), "cells": (1, 20), "num_classes": (1, 10000)}


def _require(ok: bool, message: str) -> None:
    """ValueError(message) unless `ok`: a bad description is the sender's error (the agent answers 400)."""
    if not ok:
        raise UsageError(message)


def _net_options(net: Any) -> dict[str, int]:
    """`net` checked against NET_OPTIONS; ValueError naming the bad key or value."""
    if net is None:
        return {}
    _require(isinstance(net, dict),
             f"'net' must be an object of options ({', '.join(NET_OPTIONS)}), got {type(net).__name__}")
    out = {}
    for key, value in net.items():
        if key not in NET_OPTIONS:
            raise UsageError(f"unknown net option '{key}'; valid: {', '.join(NET_OPTIONS)}")
        lo, hi = NET_OPTIONS[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise UsageError(f"net option '{key}' must be an integer in {lo}..{hi}, got {value!r}")
        out[key] = value
    return out


def _space(space_name: Any, options: Any = None):
    _require(isinstance(space_name, str), f"'space' must be a space name string, got {space_name!r}")
    _require(options is None or isinstance(options, dict),
             f"'space_options' must be an object of the space's options, got {type(options).__name__}")
    return get_space(space_name, **(options or {}))  # ValueError naming the valid spaces or options


#: What a measurement agent builds at most by default (`hwnas agent serve --max-params/--max-memory-gb`): a
#: timing request for a larger net is refused (413) before any module is built.
AGENT_BUDGET = SizeBudget(max_params=20e6, max_memory_gb=2.0)


def build_described(request: dict, budget: SizeBudget | None = AGENT_BUDGET) -> nn.Module:
    """The eval-mode subnet a request describes: `space` (registered name), optional `space_options`,
    `arch` (that space's arch string) and optional `net` options (see NET_OPTIONS). ValueError, one line, for anything invalid;
    BudgetError when the subnet at the request's `input_shape` is over `budget` (None: no budget), checked on
    the meta device before anything is built. Other keys of the request (warmup, ...) are the agent's business."""
    _require(isinstance(request, dict), f"request must be an object, got {type(request).__name__}")
    for key in ("space", "arch"):
        if key not in request:
            raise UsageError(f"request needs '{key}'")
    space, arch = _space(request["space"], request.get("space_options")), request["arch"]
    _require(isinstance(arch, str), f"'arch' must be an arch string of space '{space.name}', got {type(arch).__name__}")
    parsed, net = space.from_str(arch), _net_options(request.get("net"))
    if budget is not None:
        shape = request.get("input_shape") or (1, 3, 32, 32)
        _require(isinstance(shape, (list, tuple)) and len(shape) == 4 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape),
            f"'input_shape' must be a list of 4 positive integers (N, C, H, W), got {shape!r}")
        check_size(space, net.get("channels", 16), net.get("cells", 5), net.get("num_classes", 10), shape[0],
                   shape[1:], budget, supernet=False, arch=parsed, training=False)
    return space.build_subnet(parsed, **net).eval()


def describe_request(space_name: str, arch_str: str | Sequence[int], net: dict | None = None,
                     input_shape: Sequence[int] = (1, 3, 32, 32), warmup: int = 10, repeats: int = 50,
                     target: str = "cpu", space_options: dict | None = None) -> dict:
    """The JSON request for timing `arch_str` of `space_name` on an agent; the space, arch and net options
    are checked here already (ValueError), so a bad request fails before it goes over the wire. `arch_str`
    may also be an arch tuple or encoding; it is sent in the space's string form."""
    space = _space(space_name, space_options)
    arch = space.parse(arch_str)
    request = {"space": space_name, "arch": space.to_str(arch), "net": _net_options(net or {}),
               "input_shape": [int(s) for s in input_shape], "warmup": int(warmup), "repeats": int(repeats),
               "target": target}
    if space.options:
        request["space_options"] = space.options
    return request
