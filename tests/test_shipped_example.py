"""The shipped example grades on any machine (its files are the grader's own, checked by hash); nothing else does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.intake.shipped_example import is_shipped_example
from grader.sandbox.base import SandboxUnavailable

EXAMPLE = Path(__file__).resolve().parents[1] / "submissions" / "example"


def copy_of_example(tmp_path: Path, name: str = "example") -> Path:
    return Path(shutil.copytree(EXAMPLE, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__")))


def test_the_shipped_folder_is_recognised_by_its_hashes(tmp_path):
    assert is_shipped_example(EXAMPLE), "update SHIPPED_EXAMPLE_SHA256 when the example changes"
    crlf = copy_of_example(tmp_path)
    (crlf / "model.py").write_bytes((crlf / "model.py").read_bytes().replace(b"\n", b"\r\n"))
    assert is_shipped_example(crlf), "a checkout with Windows line ends is still the shipped example"


@pytest.mark.parametrize("change", ["one byte of model.py", "an extra file", "weights missing", "weights retrained"])
def test_any_change_makes_it_a_students_folder(change, tmp_path):
    folder = copy_of_example(tmp_path)
    if change == "one byte of model.py":
        (folder / "model.py").write_text((folder / "model.py").read_text() + "\nimport os\n")
    elif change == "an extra file":
        (folder / "helpers.py").write_text("import os\n")
    elif change == "weights missing":
        (folder / "weights.pth").unlink()
    else:
        data = bytearray((folder / "weights.pth").read_bytes())
        data[-100] ^= 1
        (folder / "weights.pth").write_bytes(bytes(data))
    assert not is_shipped_example(folder)


@pytest.mark.integration
def test_without_a_sandbox_the_example_is_graded_and_a_changed_copy_is_refused(rubric_file, tmp_path, monkeypatch):
    from grader.grade_one import main

    monkeypatch.setenv("GRADER_LOCAL_ISOLATION", "process")  # a laptop with neither bubblewrap nor Docker
    options = {"rubric": rubric_file, "results": tmp_path / "results", "sandbox": "local"}
    assert main(student=str(copy_of_example(tmp_path)), **options) == 0
    assert (tmp_path / "results" / "example.json").is_file()
    changed = copy_of_example(tmp_path, "mallory")
    (changed / "model.py").write_text((changed / "model.py").read_text() + "\n# mine now\n")
    with pytest.raises(SandboxUnavailable):
        main(student=str(changed), **options)
