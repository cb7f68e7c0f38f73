"""Results on disk: results/<student>.json, each written whole or not at all."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from grader.atomic_write import write_atomic
from grader.results.model import Result


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
