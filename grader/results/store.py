"""Results on disk: results/<student>.json, each written whole or not at all."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import filelock
from pydantic import ValidationError

from grader.atomic_write import write_atomic
from grader.errors import GraderError
from grader.results.model import Result

LOCK_NAME = ".grade-all.lock"


class BatchBusy(GraderError, RuntimeError):
    """Another `grade --all` is writing to the same results folder."""


def result_path(results_dir: Path, student: str) -> Path:
    return Path(results_dir) / f"{student}.json"


def save_result(result: Result, results_dir: Path) -> Path:
    path = result_path(results_dir, result.student)
    write_atomic(path, result.model_dump_json(indent=2) + "\n")
    return path


def load_result(path: Path) -> Result | None:
    """None when the file is missing or unreadable (e.g. from an older, incompatible grader)."""
    try:
        return Result.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError):
        return None


def load_results(results_dir: Path) -> tuple[list[Result], list[str]]:
    """Every results/<student>.json, and the names of those that cannot be read."""
    results, unreadable = [], []
    folder = Path(results_dir)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        result = load_result(path)
        if result is None:
            unreadable.append(path.name)
        else:
            results.append(result)
    return results, unreadable


@contextlib.contextmanager
def results_lock(results_dir: Path) -> Iterator[None]:
    """One writer per results folder, on every platform; a lock held by a killed process is released by the OS."""
    results_dir.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(results_dir / LOCK_NAME, blocking=False)
    try:
        lock.acquire()
    except filelock.Timeout as error:
        raise BatchBusy(f"another `grader grade --all` is writing to {results_dir}") from error
    try:
        for stale in results_dir.glob(".*.json.*.tmp"):  # left by a run killed mid-write
            stale.unlink(missing_ok=True)
        yield
    finally:
        lock.release()
