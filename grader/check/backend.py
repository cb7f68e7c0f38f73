"""The local sandbox with the runner's --diagnose flag: the same sandbox and runner, plus advice."""

from __future__ import annotations

from grader.sandbox.local import LocalBackend


class DiagnosingLocalBackend(LocalBackend):
    """Runs exactly what grading runs; the runner probes the model only after it has written its results."""

    def _bwrap_command(self, *args, **kwargs) -> list[str]:
        return [*super()._bwrap_command(*args, **kwargs), "--diagnose"]

    def _process_command(self, *args, **kwargs) -> list[str]:
        return [*super()._process_command(*args, **kwargs), "--diagnose"]
