"""`grader pin-split`: compute a split's pin and write it into the rubric's split section."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from grader.atomic_write import write_atomic
from grader.datasets import SplitFormat, detect_format, load_split
from grader.rubric.config import RubricError, load_rubric


def split_section(path: Path, rubric_path: Path, name: str) -> tuple[dict, int]:
    split_format = detect_format(path)
    split = load_split(path, split_format)
    try:
        shown = os.path.relpath(path.resolve(), rubric_path.resolve().parent)
    except ValueError:  # another drive on Windows
        shown = str(path.resolve())
    section = {
        "name": name,
        "format": split_format.value,
        "path": Path(shown).as_posix(),
        "sha256": split.content_sha256(),
    }
    return section, len(split)


def replace_section(text: str, key: str, body: dict) -> str:
    """Swaps one top-level section of a YAML file, keeping every other line (and comment) as it was."""
    block = yaml.safe_dump({key: body}, sort_keys=False)
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(rf"^{key}\s*:", line)), None)
    if start is None:
        return text + ("" if text.endswith("\n") or not text else "\n") + block
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t"):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return "".join(lines[:start]) + block + "".join(lines[end:])


def pin_split(path: Path, rubric_path: Path, name: str | None = None) -> dict:
    path, rubric_path = Path(path), Path(rubric_path)
    section, count = split_section(path, rubric_path, name or path.stem)
    text = rubric_path.read_text(encoding="utf-8") if rubric_path.exists() else ""
    updated = replace_section(text, "split", section)
    write_atomic(rubric_path, updated)
    try:
        load_rubric(rubric_path)
    except RubricError:
        if text:
            write_atomic(rubric_path, text)
        raise
    return {**section, "images": count, "format": SplitFormat(section["format"]).value}
