"""`grader pin-split`: compute a split's pin and write it into the rubric's split section."""

from __future__ import annotations

import io
from pathlib import Path

from grader.atomic_write import write_atomic
from grader.datasets import SplitFormat, detect_format, load_split
from grader.rubric.config import RubricError, load_rubric


def split_section(path: Path, rubric_path: Path, name: str) -> tuple[dict, int]:
    split_format = detect_format(path)
    split = load_split(path, split_format)
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


def _comment_above(split_format: str, count: int, shown: str) -> str:
    return (
        "\n# The fixed test split: every student is graded on exactly these images and labels.\n"
        f"# Pinned by `grader pin-split`: {count} images ({split_format}) from {shown}, by the sha256 of the decoded\n"
        "# images and labels. To grade on another split: `grader pin-split PATH --rubric <this file>`.\n"
    )


def replace_split_section(text: str, section: dict, count: int) -> str:
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
    keys = list(data)
    data["split"] = CommentedMap(section)
    data["split"].ca.items[list(section)[-1]] = [None, None, CommentToken("\n\n", CommentMark(0), None), None]
    comment = _comment_above(section["format"], count, section["path"])
    position = keys.index("split") if "split" in keys else len(keys)
    if position > 0:
        previous = keys[position - 1]
        entry = data.ca.items.setdefault(previous, [None, None, None, None])
        entry[2] = CommentToken("\n" + comment, CommentMark(0), None)
    else:
        data.yaml_set_start_comment(comment.strip("\n").replace("# ", "", 1))
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def pin_split(path: Path, rubric_path: Path, name: str | None = None) -> dict:
    path, rubric_path = Path(path), Path(rubric_path)
    section, count = split_section(path, rubric_path, name or path.stem)
    text = rubric_path.read_text(encoding="utf-8") if rubric_path.exists() else ""
    updated = replace_split_section(text, section, count)
    write_atomic(rubric_path, updated)
    try:
        load_rubric(rubric_path)
    except RubricError:
        if text:
            write_atomic(rubric_path, text)
        raise
    return {**section, "images": count, "format": SplitFormat(section["format"]).value}
