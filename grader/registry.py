"""One registry for whatever is chosen by name: exporters, similarity methods, sandbox backends,
split formats, graded items.

Add an entry beside the registry by dotted path, so that nothing heavy (torch, docker,
sentence-transformers) is imported until it is asked for:
    EXPORTERS.register("moodle", "grader.export.moodle:MoodleExporter")
or, for code imported anyway, as a decorator: `@ITEMS.register("exercise3")` above the class.
A str target is always such a path. `available` (a callable, or a "module:function" path called
each time) says whether the entry can run here; `preferred()` lists the available entries,
highest `preference` first: what an "auto" choice takes.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class _Entry:
    target: Any  # the registered object, or "module:attribute" to import on first use
    available: Callable[[], bool] | str | None
    preference: int


class Registry(Generic[T]):
    def __init__(self, kind: str, error: type[Exception] = LookupError, aliases: Mapping[str, str] | None = None):
        """kind names an entry in messages ("exporter"); error is what get() raises, so that callers
        keep catching their subsystem's type; aliases (typed name -> registered name) only feed suggestions."""
        self.kind, self.error, self.aliases = kind, error, dict(aliases or {})
        self._entries: dict[str, _Entry] = {}

    def register(
        self,
        name: str,
        target: T | str | None = None,
        *,
        available: Callable[[], bool] | str | None = None,
        preference: int = 0,
    ) -> Any:
        """register(name, obj or "module:attribute"), or @register(name) above the object."""

        def add(obj: Any) -> Any:
            if name in self._entries:
                raise ValueError(f"two {self.kind} entries named {name!r}")
            self._entries[name] = _Entry(obj, available, preference)
            return obj

        return add if target is None else add(target)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def is_available(self, name: str) -> bool:
        check = self._entries[name].available
        return check is None or bool(load(check)() if isinstance(check, str) else check())

    def preferred(self) -> list[str]:
        """The available entries, most preferred first (ties by name)."""
        return sorted(filter(self.is_available, self._entries), key=lambda n: (-self._entries[n].preference, n))

    def get(self, name: str) -> T:
        if name not in self._entries:
            close = difflib.get_close_matches(name.lower(), [*self._entries, *self.aliases], n=3)
            close = list(dict.fromkeys(self.aliases.get(match, match) for match in close))
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise self.error(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})")
        if not self.is_available(name):
            raise self.error(f"{self.kind} {name!r} is not installed or cannot run on this machine")
        target = self._entries[name].target
        return load(target) if isinstance(target, str) else target
