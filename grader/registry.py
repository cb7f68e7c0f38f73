"""One registry for whatever is chosen by name: exporters, similarity methods, sandbox backends, split formats,
graded items. Add an entry beside its registry as a "module:attribute" path, so that nothing heavy (torch,
docker) is imported until asked for: `EXPORTERS.register("moodle", "grader.export.moodle:MoodleExporter")`;
or, for code imported anyway, as a decorator: `@ITEMS.register("exercise3")`. A str target is always a path.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Check = Callable[[], bool] | str | None  # can the entry run here? or a "module:function" path, asked each time


def load(target: Any) -> Any:
    """Imports a "module:attribute" path; anything else is returned as it is."""
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


class Registry(Generic[T]):
    def __init__(self, kind: str, error: type[Exception] = LookupError, aliases: Mapping[str, str] | None = None):
        """get() raises `error` (the type the subsystem's callers catch); aliases only feed suggestions."""
        self.kind, self.error, self.aliases = kind, error, dict(aliases or {})
        self._entries: dict[str, tuple[Any, Check, int]] = {}  # name -> (target, available, preference)

    def register(
        self, name: str, target: T | str | None = None, *, available: Check = None, preference: int = 0
    ) -> Any:
        """register(name, object or "module:attribute"), or @register(name) above the object."""
        if target is None:
            return lambda obj: self.register(name, obj, available=available, preference=preference)
        if name in self._entries:
            raise ValueError(f"two {self.kind} entries named {name!r}")
        self._entries[name] = (target, available, preference)
        return target

    def names(self) -> list[str]:
        """In the order registered, which is the order that matters for graded items."""
        return list(self._entries)

    def is_available(self, name: str) -> bool:
        _, check, _ = self._entries[name]
        return check is None or bool(load(check)())

    def preferred(self) -> list[str]:
        """The available entries, highest preference first (ties by name): what an "auto" choice takes."""
        return sorted(filter(self.is_available, self._entries), key=lambda n: (-self._entries[n][2], n))

    def get(self, name: str) -> T:
        if name not in self._entries:
            close = difflib.get_close_matches(name.lower(), [*self._entries, *self.aliases], n=3)
            close = list(dict.fromkeys(self.aliases.get(match, match) for match in close))
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise self.error(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})")
        if not self.is_available(name):
            raise self.error(f"{self.kind} {name!r} is not installed or cannot run on this machine")
        return load(self._entries[name][0])
