"""Small helpers the `python -m hwnas.benchmarks.<name>` experiments share to write their Markdown reports."""
from __future__ import annotations

import shlex
from typing import Sequence

import numpy as np
import pandas as pd


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub Markdown table; floats to 4 significant digits, NaN/None as '-', '|' escaped."""
    def fmt(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "-"
        return f"{v:.4g}" if isinstance(v, float) else str(v).replace("|", "\\|")
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def command(module: str, argv: Sequence[str]) -> str:
    """The exact shell command that reproduces a run: `python -m <module> <argv...>`."""
    return " ".join(["python", "-m", module, *(shlex.quote(a) for a in argv)])
