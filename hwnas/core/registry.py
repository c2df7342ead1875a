"""One registry helper for every named concept hwnas offers: search spaces, training modes, objectives, search
algorithms, measurement targets, export formats and data sets (timm's `register_model` / `create_model` /
`list_models`, one `Registry` per concept).

    SPACES = Registry("space")
    @SPACES.register("nb201")
    class NB201Space(SearchSpace): ...
    SPACES.get("nb201")          # the class; an unknown name: ValueError "unknown space 'x'; valid: a, b"
    SPACES.list("mobile*")       # names matching a shell-style pattern, in registration order

Imports nothing of ours.
"""
from __future__ import annotations

import fnmatch
from typing import Any, Generic, Iterator, TypeVar

from .errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind, in registration order. `kind` names the concept in error messages."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T | None = None, *, replace: bool = False) -> Any:
        """Add `entry` under `name`; without `entry`, a decorator that adds what it decorates (and returns it
        unchanged). A name already taken is refused unless `replace`."""
        def add(obj: T) -> T:
            if not isinstance(name, str) or not name:
                raise ValueError(f"a {self.kind} needs a non-empty name, got {name!r}")
            if name in self._entries and not replace:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = obj
            return obj
        return add if entry is None else add(entry)

    def unregister(self, name: str) -> None:
        """Remove `name` (tests that register a throwaway entry clean up with this)."""
        self.get(name)
        del self._entries[name]

    def get(self, name: str) -> T:
        """The entry registered as `name`; UsageError "unknown <kind> 'name'; valid: ..." otherwise."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UsageError(f"unknown {self.kind} '{name}'; valid: {', '.join(self._entries)}") from None

    def list(self, pattern: str | None = None) -> list[str]:
        """Registered names, in registration order; with `pattern`, only those matching it (fnmatch:
        `*`, `?`, `[...]`)."""
        if pattern is None:
            return list(self._entries)
        return [n for n in self._entries if fnmatch.fnmatchcase(n, pattern)]

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) pairs in registration order."""
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"

