"""The sandbox interface: every backend runs a SandboxJob and returns a SandboxOutcome."""

from __future__ import annotations

import difflib
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from grader.sandbox.protocol import SandboxJob, SandboxOutcome
from grader.sandbox.supervisor import remove_tree


class SandboxUnavailable(RuntimeError):
    """The backend cannot run on this machine; the message says what to install or start."""


class SandboxBackend(ABC):
    name: str
    isolation: str

    @property
    def is_boundary(self) -> bool:
        """Whether this backend keeps a hostile submission away from the grader, the labels and other students."""
        return True

    @abstractmethod
    def check_available(self) -> None:
        """Raises SandboxUnavailable with a remedy when this backend cannot run here."""

    @abstractmethod
    def run(self, job: SandboxJob) -> SandboxOutcome: ...

    def close(self) -> None:  # noqa: B027 - most backends hold nothing
        """Releases whatever the backend holds (connections, containers)."""


@contextmanager
def run_folder(prefix: str) -> Iterator[Path]:
    """A fresh host folder for one run's output and scratch, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        remove_tree(folder)


def backend_names() -> list[str]:
    return ["auto", "docker", "local"]


def get_backend(name: str) -> SandboxBackend:
    """'auto' is Docker when the engine and image answer, else the local backend."""
    from grader.sandbox.docker import DockerBackend
    from grader.sandbox.local import LocalBackend

    if name == "local":
        return LocalBackend()
    if name == "docker":
        backend = DockerBackend()
        backend.check_available()
        return backend
    if name == "auto":
        try:
            backend = DockerBackend()
            backend.check_available()
            return backend
        except SandboxUnavailable:
            return LocalBackend()
    suggestion = difflib.get_close_matches(name, backend_names(), n=1)
    hint = f"; did you mean '{suggestion[0]}'?" if suggestion else ""
    raise SandboxUnavailable(f"unknown sandbox backend '{name}' (choose from {', '.join(backend_names())}){hint}")
