"""Per-arch scores from elsewhere (a published supernet's accuracy estimates, another proxy), to rank
beside our own supernets against the same ground truth.

Two file formats, both mapping an NB201 arch to a score (higher = predicted better):

- JSON object. Keys are NB201 arch strings (``|nor_conv_3x3~0|+|...|``) or ``str()`` of the genotype as
  a list of per-node tuples, ``"[(('nor_conv_3x3', 0),), (('none', 0), ('skip_connect', 1)), ...]"``, as in
  the ``supernet_info`` files of the few-shot NAS code (Zhao et al., ICML 2021), which hold its one-shot
  and few-shot supernets' CIFAR-10 estimates for all 15,625 cells.
- CSV with an ``arch_str`` column and a ``score`` column (or exactly one other numeric column).

Must not import ``evolve``.
"""
from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

import pandas as pd

from hwnas.core.files import read_json
from hwnas.core.errors import CorruptFileError, UsageError


def genotype_to_arch_str(key: str) -> str:
    """``"[(('op', 0),), (('op', 0), ('op', 1)), ...]"`` -> ``"|op~0|+|op~0|op~1|+|...|"``; an arch string
    is returned as is."""
    key = key.strip()
    if key.startswith("|"):
        return key
    try:
        nodes = ast.literal_eval(key)
        return "+".join("|" + "|".join(f"{op}~{int(src)}" for op, src in node) + "|" for node in nodes)
    except (ValueError, SyntaxError, TypeError) as exc:
        raise UsageError(f"'{key[:80]}' is neither an NB201 arch string nor a genotype list "
                         "like [(('nor_conv_3x3', 0),), ...]") from exc


def load_reference_scores(path: str | Path) -> dict[str, float]:
    """Read a reference file (JSON or CSV, see the module docstring) into {arch string: score}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference scores '{path}' not found (a .json or .csv file)")
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
        if "arch_str" not in frame.columns:
            raise CorruptFileError(f"{path}: needs an 'arch_str' column; it has {list(frame.columns)}")
        numeric = [c for c in frame.columns if c != "arch_str" and pd.api.types.is_numeric_dtype(frame[c])]
        col = "score" if "score" in frame.columns else (numeric[0] if len(numeric) == 1 else None)
        if col is None:
            raise CorruptFileError(f"{path}: name the score column 'score' (numeric columns: {numeric})")
        return {str(a).strip(): float(s) for a, s in zip(frame.arch_str, frame[col])}
    try:
        raw = read_json(path, "reference scores")
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{path}: not JSON ({exc}); reference scores are a JSON object or a CSV") from exc
    if not isinstance(raw, dict):
        raise CorruptFileError(f"{path}: expected a JSON object {{arch: score}}, got {type(raw).__name__}")
    return {genotype_to_arch_str(k): float(v) for k, v in raw.items()}


def scores_for(reference: dict[str, float], arch_strs: list[str], name: str) -> list[float]:
    """The reference's score of every arch in `arch_strs`; an error naming the first missing ones if the
    reference does not cover them all."""
    missing = [a for a in arch_strs if a not in reference]
    if missing:
        raise UsageError(f"reference '{name}' has no score for {len(missing)} of {len(arch_strs)} archs, e.g. "
                         f"{missing[0]}; it must cover every sampled arch")
    return [reference[a] for a in arch_strs]


def reference_arg(text: str) -> tuple[str, str]:
    """argparse type for `--reference NAME=FILE`: `one-shot=path/scores.json` -> ("one-shot", "path/scores.json")."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path or not name.replace("-", "").replace("_", "").isalnum():
        raise argparse.ArgumentTypeError(f"'{text}' is not NAME=FILE with NAME letters, digits, - or _, e.g. "
                                         "one-shot=one-shot-supernet.json")
    return name, path


def read_references(refs: list[tuple[str, str]], prog: str) -> dict[str, tuple[str, dict[str, float]]]:
    """{name: (path, {arch string: score})} for `--reference` pairs; a repeated name or a missing or malformed
    file exits with a one-line error that starts with `prog`."""
    out = {}
    for name, path in refs:
        if name in out:
            raise SystemExit(f"{prog}: --reference name '{name}' given twice; give each file its own")
        try:
            out[name] = (path, load_reference_scores(path))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"{prog}: --reference {name}: {exc}") from None
    return out
