"""`grader pin-split`: compute a split's pin and write it into the rubric's split section."""

from __future__ import annotations

from pathlib import Path

import yaml

from grader.atomic_write import write_atomic
from grader.datasets import SplitFormat, detect_format, load_split
from grader.datasets.base import Part
from grader.rubric.config import RubricError, load_rubric


def split_section(path: Path, rubric_path: Path, name: str, part: Part = "test") -> tuple[dict, int]:
    split_format = detect_format(path)
    split = load_split(path, split_format, part)
    # Relative when the split lies under the rubric's folder (the project moves with it), else absolute.
    folder, target = rubric_path.resolve().parent, path.resolve()
    shown = str(target.relative_to(folder)) if target.is_relative_to(folder) else str(target)
    section = {
        "name": name,
        "format": split_format.value,
        "path": Path(shown).as_posix(),
        "sha256": split.content_sha256(),
    }
    return section, len(split)


COMMENTS = {
    "split": "The fixed test split: every student is graded on exactly these images and labels.",
    "train_split": "The training split: a sample of it measures each model's generalisation gap (integrity).",
    "private_split": "The private split: images no student has seen; a model's gap between the test split and this "
    "one is the strongest memorisation check (integrity).",
}
FLAGS = {"split": "", "train_split": " --train", "private_split": " --private"}


def _own_lines(key: str) -> tuple[str, str, str]:
    """How each line of the comment `pin-split` writes above `key` begins: it recognises and replaces its own."""
    flag = FLAGS[key]
    command = f"grader pin-split PATH{flag} --rubric"
    return f"# {COMMENTS[key]}", f"# Pinned by `grader pin-split{flag}`:", f"# To pin another: `{command}"


def _comment_above(key: str, split_format: str, count: int, shown: str) -> list[str]:
    first, second, third = _own_lines(key)
    return [
        f"{first}\n",
        f"{second} {count} images ({split_format}) from {shown}, by the sha256 of their pixels and labels.\n",
        f"{third} <this file>`.\n",
    ]


def _top_level_key(line: str) -> str | None:
    """The key a line opens at the rubric's top level (`split:` at column 0), else None."""
    if not line[:1].isalpha():
        return None
    name, colon, _ = line.partition(":")
    return name.strip() if colon and name.strip().replace("_", "").isalnum() else None


def replace_split_section(text: str, section: dict, count: int, key: str = "split") -> str:
    """The rubric with its `key` section replaced; every other line kept byte for byte.

    The comment lines right above `key:` describe the split, so they are rewritten with it (a comment about
    the official md5 must not survive a pin to another split). A rubric without the section gets it at the end.
    """
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith(_own_lines(key))]
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    starts = [index for index, line in enumerate(lines) if _top_level_key(line) == key]
    if starts:
        begin = starts[0]
        while begin > 0 and lines[begin - 1].startswith("#"):
            begin -= 1
        end = next((i for i in range(starts[0] + 1, len(lines)) if _top_level_key(lines[i])), len(lines))
        while end > begin and lines[end - 1].startswith("#"):
            end -= 1  # comments right above the next key are that key's
        while end > begin and not lines[end - 1].strip():
            end -= 1
    else:
        while lines and not lines[-1].strip():
            lines.pop()
        begin = end = len(lines)
        if lines:
            lines.append("\n")
            begin = end = len(lines)
    body = yaml.safe_dump({key: section}, sort_keys=False, width=4096, allow_unicode=True)
    block = [*_comment_above(key, section["format"], count, section["path"]), *body.splitlines(keepends=True)]
    return "".join(lines[:begin] + block + lines[end:])


def pin_split(
    path: Path, rubric_path: Path, name: str | None = None, train: bool = False, private: bool = False
) -> dict:
    """Pins the test split; with `train` the training split the generalisation-gap check samples; with `private`
    the instructor's private split, whose gap to the test split is the strongest memorisation check."""
    if train and private:
        raise RubricError("pin-split: --train and --private pin two different splits; pin one at a time")
    path, rubric_path = Path(path), Path(rubric_path)
    key = "train_split" if train else "private_split" if private else "split"
    section, count = split_section(path, rubric_path, name or _default_name(path), "train" if train else "test")
    text = rubric_path.read_text(encoding="utf-8") if rubric_path.exists() else ""
    updated = replace_split_section(text, section, count, key)
    write_atomic(rubric_path, updated)
    try:
        load_rubric(rubric_path)
    except RubricError:
        if text:
            write_atomic(rubric_path, text)
        raise
    return {**section, "images": count, "format": SplitFormat(section["format"]).value}


def _default_name(path: Path) -> str:
    """The file or folder name; for a .npy pair the name both files share (cifar10.1_v6)."""
    for suffix in ("_data.npy", "_labels.npy"):
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem
