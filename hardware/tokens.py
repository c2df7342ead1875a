"""The bearer token that guards the measurement agent: one reader for the agent (`hardware.agent`) and its
clients (`hardware.remote`). Imports nothing of ours but `hwnas.core`."""
from __future__ import annotations

import os
from pathlib import Path

from hwnas.core.errors import UsageError

TOKEN_ENV = "HWNAS_AGENT_TOKEN"


def read_token(path: str | os.PathLike | None = None) -> str:
    """The agent token (surrounding whitespace stripped): from the file `path` if given, else from
    $HWNAS_AGENT_TOKEN. The one token reader of both the agent and its clients. FileNotFoundError for a
    missing file; UsageError for an empty one or when neither holds a token."""
    hint = "create one with: python -c \"import secrets; print(secrets.token_hex(32))\" > FILE"
    if path is not None:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise FileNotFoundError(f"token file '{path}' not found; {hint}") from None
        except (UnicodeDecodeError, IsADirectoryError):
            raise UsageError(f"token file '{path}' does not hold a text token; {hint}") from None
        if not token:
            raise UsageError(f"token file '{path}' is empty; {hint}")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"no agent token: pass the agent's token file (--agent-token-file FILE) "
                         f"or set the environment variable {TOKEN_ENV}")
    return token
