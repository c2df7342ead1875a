"""The two kinds of failure a user meets, so the CLI can tell them apart by exit status.

- `UsageError` (exit 2): a value, name or combination of options the user gave is not valid: an unknown
  space or objective, a negative count, a config key that does not exist. It is a `ValueError`.
- `RuntimeFailure` (exit 1): the request was valid but could not be carried out: a file that is missing or
  corrupt, a refused token, an agent that does not answer. Plain `FileNotFoundError`, `PermissionError` and
  `ConnectionError` count as runtime failures too.

Imports nothing of ours.
"""
from __future__ import annotations


class HwnasError(Exception):
    """Base of hwnas's own errors; `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(HwnasError, ValueError):
    """A bad value, name or option combination given by the user (exit status 2)."""

    exit_code = 2


class RuntimeFailure(HwnasError, RuntimeError):
    """A valid request that could not be carried out (exit status 1)."""

    exit_code = 1


class CorruptFileError(RuntimeFailure, ValueError):
    """A file exists but is not what it claims to be (truncated, foreign, tampered with)."""


class AuthError(RuntimeFailure, ValueError):
    """A remote agent refused the token."""


class RemoteError(RuntimeFailure, ValueError):
    """A remote agent answered with an error, or with something other than its protocol."""


class BudgetError(UsageError):
    """A network, input or run larger than the configured budget (`--max-params`, `--max-memory-gb`) or the
    hard bounds on sizes: refused before anything is built (exit status 2; the agent answers 413)."""


def brief(exc: BaseException, limit: int = 200) -> str:
    """`exc`'s message on one line (whitespace runs, newlines included, become one space), cut at `limit`
    characters; its type name when it has no message. For wrapping a library's error into one of ours."""
    return " ".join(str(exc).split())[:limit] or type(exc).__name__
