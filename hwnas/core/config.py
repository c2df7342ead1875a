"""Configuration dataclasses declare each option once: its default, its type and its help text. The CLI
builds its flags from them (`hwnas.cli.options`), `--config FILE.yaml` and run folders' `config.json` are
read back through `config_from_dict`, which checks every value against the field's type.

    @dataclass
    class TrainConfig:
        epochs: int = option(1, help="training epochs")
        max_images: int | None = option(None, help="cap on the images of each split; none = all")

Imports nothing of ours.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Union

from .errors import UsageError


def option(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING,
           flag: str | None = None, metavar: str | None = None, cli: bool = True, **extra: Any) -> Any:
    """A dataclass field carrying what the CLI needs: `help`, and optionally `flag` (the flag's name when it
    is not `--<name-with-dashes>`), `metavar`, `cli=False` for fields no flag sets. Other keywords are kept
    in the field's metadata (e.g. `invert=True` for a bool flag that sets the field to False)."""
    meta = {"help": help, "flag": flag, "metavar": metavar, "cli": cli, **extra}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def field_types(cls: type) -> dict[str, Any]:
    """Resolved type annotations of a dataclass's fields (postponed annotations evaluated)."""
    return typing.get_type_hints(cls)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def describe_type(tp: Any) -> str:
    """How a type is named in an error message: 'an integer', 'a number or none', 'a list of strings'."""
    optional, inner = _is_optional(tp)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a mapping"}
    origin = typing.get_origin(inner)
    if origin in (list, tuple):
        (arg, *_) = typing.get_args(inner) or (Any,)
        text = f"a list of {describe_type(arg).removeprefix('an ').removeprefix('a ')}s"
    elif origin is dict:
        text = "a mapping"
    else:
        text = names.get(inner, getattr(inner, "__name__", str(inner)))
    return text + (" or none" if optional else "")


def coerce(value: Any, tp: Any, name: str) -> Any:
    """`value` checked against the annotation `tp` (int, float, str, bool, X | None, list[X], dict[...]);
    an int is accepted for a float. UsageError "option 'NAME' must be ..., got VALUE" otherwise."""
    optional, inner = _is_optional(tp)
    if value is None:
        if optional:
            return None
        raise UsageError(f"option '{name}' must be {describe_type(tp)}, got none")
    bad = UsageError(f"option '{name}' must be {describe_type(tp)}, got {value!r}"[:300])
    origin = typing.get_origin(inner)
    if inner is Any:
        return value
    if inner is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if inner is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if inner is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad
        return float(value)
    if inner is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin in (list, tuple) or inner in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        (arg, *_) = typing.get_args(inner) or (Any,)
        return [coerce(v, arg, name) for v in value]
    if origin is dict or inner is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if isinstance(inner, type) and not isinstance(value, inner):
        raise bad
    return value


def config_from_dict(cls: type, values: dict[str, Any], where: str = "config") -> Any:
    """An instance of the dataclass `cls` from `values`, every key known and every value of its field's type;
    UsageError naming the first unknown key (with the valid ones) or ill-typed value."""
    if not isinstance(values, dict):
        raise UsageError(f"{where} must hold a mapping of option: value, got {type(values).__name__}")
    types_ = field_types(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UsageError(f"unknown option '{unknown[0]}' in {where}; valid: {', '.join(known)}")
    return cls(**{k: coerce(v, types_[k], k) for k, v in values.items()})


def flat_fields(cls: type, prefix: str = "") -> dict[str, tuple[tuple[str, ...], Any, dataclasses.Field]]:
    """{flat key: (field path, annotation, field)} over a config dataclass, nested dataclass fields included:
    a nested field's keys are its own fields' names after the nested field's `prefix` metadata
    (`measure_repeats` for `SearchConfig.measure.repeats`). These keys are the CLI's argparse destinations and
    the keys of a `--config` YAML file."""
    out: dict[str, tuple[tuple[str, ...], Any, dataclasses.Field]] = {}
    types_ = field_types(cls)
    for f in dataclasses.fields(cls):
        tp = types_[f.name]
        if dataclasses.is_dataclass(tp):
            for key, (path, ann, sub) in flat_fields(tp, prefix + f.metadata.get("prefix", "")).items():
                out[key] = ((f.name, *path), ann, sub)
        else:
            out[prefix + f.name] = ((f.name,), tp, f)
    return out


def flatten_config(cfg: Any) -> dict[str, Any]:
    """A config dataclass as {flat key: value} (see `flat_fields`): what `config.yaml` files hold."""
    out = {}
    for key, (path, _, _) in flat_fields(type(cfg)).items():
        value = cfg
        for name in path:
            value = getattr(value, name)
        out[key] = value
    return out


def config_from_flat(cls: type, values: dict[str, Any], where: str = "config") -> Any:
    """The dataclass `cls` from {flat key: value} (see `flat_fields`), every key known and every value of its
    field's type; missing keys keep their defaults. UsageError naming the first bad key or value."""
    if not isinstance(values, dict):
        raise UsageError(f"{where} must hold a mapping of option: value, got {type(values).__name__}")
    spec = flat_fields(cls)
    unknown = sorted(set(values) - set(spec))
    if unknown:
        raise UsageError(f"unknown option '{unknown[0]}' in {where}; valid: {', '.join(spec)}")
    nested: dict[str, Any] = {}
    for key, value in values.items():
        path, ann, _ = spec[key]
        target = nested
        for name in path[:-1]:
            target = target.setdefault(name, {})
        target[path[-1]] = coerce(value, ann, key)
    return _build(cls, nested)


def _build(cls: type, values: dict[str, Any]) -> Any:
    types_ = field_types(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in values:
            tp, v = types_[f.name], values[f.name]
            kwargs[f.name] = _build(tp, v) if dataclasses.is_dataclass(tp) and isinstance(v, dict) else v
    return cls(**kwargs)
