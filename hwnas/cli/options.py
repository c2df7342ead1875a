"""Flags from config dataclasses: each option is declared once, as a dataclass field (`hwnas.core.config.option`),
and its flag, default, type and help come from there.

    keys = add_config_options(parser, TrainConfig)           # --space, --mode, --epochs, ...
    args = parser.parse_args(argv)
    cfg = config_from_args(TrainConfig, args, keys)          # a checked TrainConfig

A flag's argparse destination is the field's flat key (`hwnas.core.config.flat_fields`: `eval_images`,
`measure_repeats`), which is also its key in a `--config` YAML file and in the `config.yaml` a search
writes, so a search folder's config can be fed back.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Sequence

from hwnas.core.config import _is_optional, coerce, config_from_flat, flat_fields
from hwnas.core.errors import UsageError


def parse_space_options(items: Sequence[str] | dict | None) -> dict[str, Any]:
    """`KEY=JSON` strings (`stages=[[1,1,1]]`, `hidden="narrow"`) as a dict of space options (a mapping, as a
    YAML config may give, is taken as it is); UsageError naming the bad item."""
    if isinstance(items, dict):
        return dict(items)
    if items is not None and (isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple))):
        raise UsageError(f"space_options must be a mapping of option: value (or KEY=JSON strings), got {items!r}"[:300])
    options: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--space-option '{item}' must look like KEY=JSON, e.g. 'stages=[[1,1,1]]'")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--space-option '{item}': the value is not JSON ({exc.msg}); "
                             f"e.g. {key}='[[1,1,1]]' or, for a string, {key}='\"text\"'") from None
        except RecursionError:
            raise UsageError(f"--space-option '{key}': the value is nested too deeply") from None
    return options


class _Append(argparse.Action):
    """`action="append"` whose first use on the command line replaces the default (a --config file's list)
    instead of adding to it, so flags win there too."""

    def __call__(self, parser, namespace, values, option_string=None):
        marker = f"_{self.dest}_from_flags"
        items = list(getattr(namespace, self.dest) or []) if getattr(namespace, marker, False) else []
        setattr(namespace, marker, True)
        setattr(namespace, self.dest, [*items, values])


def _optional_type(inner: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str):
        if text.strip().lower() in ("none", "all"):
            return None
        return inner(text)
    parse.__name__ = getattr(inner, "__name__", "value")
    return parse


def _scalar_type(tp: Any) -> Callable[[str], Any]:
    return {int: int, float: float}.get(tp, str)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def add_config_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, *,
                       only: Sequence[str] | None = None, skip: Sequence[str] = (),
                       defaults: dict[str, Any] | None = None) -> list[str]:
    """Add one flag per (flat) field of the dataclass `cls`, those in `only` minus those in `skip` and minus
    fields declared with `cli=False`; `defaults` overrides the dataclass's defaults. Returns the flat keys
    (the argparse destinations) it added."""
    added = []
    for key, (path, tp, f) in flat_fields(cls).items():
        meta = f.metadata
        if (only is not None and key not in only) or key in skip or not meta.get("cli", True):
            continue
        flag = meta.get("flag") or "--" + key.replace("_", "-")
        default = defaults[key] if defaults and key in defaults else _default(f)
        help_text = meta.get("help", "")
        if callable(meta.get("choices")):
            help_text += f" ({', '.join(meta['choices']())})"
        kw: dict[str, Any] = {"dest": key, "help": help_text}
        if meta.get("metavar"):
            kw["metavar"] = meta["metavar"]
        optional, inner = _is_optional(tp)
        origin = getattr(inner, "__origin__", None)
        if meta.get("kind") == "space_options":
            parser.add_argument(flag, action=_Append, default=default or [], metavar="KEY=JSON", dest=key,
                                help=help_text)
        elif inner is bool:
            action = argparse.BooleanOptionalAction if default else "store_true"
            parser.add_argument(flag, action=action, default=default, **kw)
        elif origin in (list, tuple):
            arg = _scalar_type(inner.__args__[0])
            if meta.get("nargs"):
                parser.add_argument(flag, nargs=meta["nargs"], type=arg, default=default, **kw)
            else:
                parser.add_argument(flag, action=_Append, type=arg, default=default, **kw)
        else:
            conv = _scalar_type(inner)
            parser.add_argument(flag, type=_optional_type(conv) if optional else conv, default=default, **kw)
        added.append(key)
    return added


def config_from_args(cls: type, args: argparse.Namespace, keys: Sequence[str], **fixed: Any) -> Any:
    """The dataclass `cls` from the parsed flags `keys` (see `add_config_options`) and the `fixed` flat values;
    every value checked against its field's type (UsageError naming the option)."""
    spec = flat_fields(cls)
    values = {}
    for key in keys:
        value = getattr(args, key)
        if spec[key][2].metadata.get("kind") == "space_options":
            value = parse_space_options(value)
        values[key] = value
    values.update(fixed)
    return config_from_flat(cls, values, "the options")


def option_types(*classes: type) -> dict[str, Any]:
    """{flat key: annotation} over config dataclasses, to check `--config` values before they become
    argparse defaults (space options may be a mapping or KEY=JSON strings)."""
    out: dict[str, Any] = {}
    for cls in classes:
        for key, (_, tp, f) in flat_fields(cls).items():
            out[key] = Any if f.metadata.get("kind") == "space_options" else tp
    return out


def load_yaml(path: str) -> dict[str, Any]:
    """The mapping in a YAML config file, keys with '-' written as '_'; UsageError for a file that is missing,
    not UTF-8, not YAML or not a mapping."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"config file '{path}' not found")
    try:
        values = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise UsageError(f"config file '{path}' is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"config file '{path}' is not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise UsageError(f"config file '{path}' is nested too deeply") from None
    if not isinstance(values, dict):
        raise UsageError(f"config file '{path}' must hold a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def apply_yaml_defaults(parser: argparse.ArgumentParser, values: dict[str, Any], where: str,
                        types: dict[str, Any]) -> None:
    """Make `values` (from a YAML file) the parser's defaults, so flags on the line still win. Every key must
    be one of the parser's options and every value of that option's type (`types`: key -> annotation; keys it
    lacks are taken from the parser's `type`/`action`)."""
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config", "func", "command_key")
               and a.dest != argparse.SUPPRESS}
    bad = sorted(set(values) - set(actions))
    if bad:
        raise UsageError(f"unknown option '{bad[0]}' in {where}; valid: {', '.join(sorted(actions))}")
    checked = {}
    for key, value in values.items():
        if key in types:
            checked[key] = coerce(value, types[key], key)
        elif isinstance(actions[key], (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            checked[key] = coerce(value, bool, key)
        elif actions[key].type in (int, float):
            checked[key] = coerce(value, actions[key].type, key)
        else:
            checked[key] = value
    parser.set_defaults(**checked)
