"""`grader pin-split`: compute a split's pin and write it into the rubric's split section."""

from __future__ import annotations

import io
from pathlib import Path

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


def _comment_above(key: str, split_format: str, count: int, shown: str) -> str:
    first, second, third = _own_lines(key)
    return (
        f"\n{first}\n{second} {count} images ({split_format}) from {shown}, by the sha256 of their pixels and labels.\n"
        f"{third} <this file>`.\n"
    )


def replace_split_section(text: str, section: dict, count: int, key: str = "split") -> str:
    """The rubric with its split section replaced; every other key, comment and quote kept as it was.

    The comment block above `split:` describes the split, so it is rewritten with it (a comment about
    the official md5 must not survive a pin to another split).
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    yaml = YAML()
    yaml.preserve_quotes, yaml.width = True, 4096
    yaml.indent(mapping=2, sequence=4, offset=2)  # the rubric's own style: "    - " under a key
    yaml.representer.add_representer(
        type(None), lambda representer, _: representer.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    data = yaml.load(text) if text.strip() else CommentedMap()
    if not isinstance(data, CommentedMap):
        raise RubricError("the rubric must be a mapping of sections (split, sandbox, exercise1, ...)")
    _forget_own_comment(data, key)
    keys = list(data)
    data[key] = CommentedMap(section)
    data[key].ca.items[list(section)[-1]] = [None, None, CommentToken("\n\n", CommentMark(0), None), None]
    comment = _comment_above(key, section["format"], count, section["path"])
    position = keys.index(key) if key in keys else len(keys)
    previous = keys[position - 1] if position > 0 else None
    if previous is not None and not isinstance(data[previous], dict):
        # The comment block above a key hangs on the scalar before it: replace it, stale lines and all.
        entry = data.ca.items.setdefault(previous, [None, None, None, None])
        entry[2] = CommentToken("\n" + comment, CommentMark(0), None)
    else:
        data.yaml_set_comment_before_after_key(key, before="\n" + comment.strip("\n").replace("# ", ""))
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def _forget_own_comment(node, key: str) -> None:
    """Removes the lines an earlier pin of `key` wrote, wherever the round trip has attached them."""
    own = _own_lines(key)
    for entry in getattr(getattr(node, "ca", None), "items", {}).values():
        for token in (t for item in entry if item for t in (item if isinstance(item, list) else [item])):
            if hasattr(token, "value") and any(mark in token.value for mark in own):
                kept = "\n".join(line for line in token.value.split("\n") if not line.startswith(own))
                token.value = kept.rstrip("\n") + "\n"  # the blank line before the block goes with it
    for child in node.values() if isinstance(node, dict) else []:
        if isinstance(child, dict):
            _forget_own_comment(child, key)


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
