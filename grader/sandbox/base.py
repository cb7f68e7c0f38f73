"""The sandbox interface: every backend runs a SandboxJob and returns a SandboxOutcome."""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from grader.errors import GraderError
from grader.registry import Registry
from grader.sandbox.protocol import SandboxJob, SandboxOutcome
from grader.sandbox.supervisor import remove_tree


class SandboxUnavailable(GraderError, RuntimeError):
    """The backend cannot run on this machine; the message says what to install or start."""


class SandboxBackend(ABC):
    name: str
    isolation: str

    @classmethod
    def configured(cls, *, image: str | None = None, warm: bool = False) -> SandboxBackend:
        """The backend as the rubric's sandbox settings configure it; most backends have nothing to set.

        warm: the rubric's sandbox.warm (a warm sandbox per worker); only the local backend has one."""
        return cls()

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


BACKENDS: Registry[type[SandboxBackend]] = Registry("sandbox backend", error=SandboxUnavailable)
BACKENDS.register("docker", "grader.sandbox.docker:DockerBackend", preference=10)
BACKENDS.register("local", "grader.sandbox.local:LocalBackend")


def backend_names() -> list[str]:
    return ["auto", *BACKENDS.names()]


def get_backend(name: str, image: str | None = None, warm: bool = False) -> SandboxBackend:
    """'auto' is the most preferred backend that answers: Docker when the engine and image do, else local.

    image: the rubric's sandbox.image, for the backends that run one (Docker). warm: the rubric's sandbox.warm."""
    if name == "auto":
        *others, name = BACKENDS.preferred()
        for candidate in others:
            with suppress(SandboxUnavailable):
                return get_backend(candidate, image, warm)
    backend = BACKENDS.get(name).configured(image=image, warm=warm)
    backend.check_available()
    return backend
