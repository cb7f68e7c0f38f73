"""The submission contract (grader/intake/contract.py): one rule per test, and its readers agreeing."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from grader.answers import find_answers_file
from grader.check.file_checks import stage_submission
from grader.intake.contract import choose, choose_files, contract_name, rank, role_of
from grader.intake.recognise import classify
from grader.intake.submission import IntakeError, find_submission_files


def make(folder: Path, files: dict[str, bytes | str]) -> Path:
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return folder


def torchscript_bytes() -> bytes:
    """What is_torchscript_archive looks for: a zip holding constants.pkl and code/."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("net/constants.pkl", b"")
        archive.writestr("net/code/__torch__.py", b"")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("model.py", ("model", ".py")),
        ("Net.PY", ("model", ".py")),
        ("weights.pth", ("weights", ".pth")),
        ("net.pt", ("weights", ".pt")),
        ("w.safetensors", ("weights", ".safetensors")),
        ("ckpt.pth.tar", ("weights", ".pth.tar")),
        ("epoch=9.ckpt", ("weights", ".ckpt")),
        ("pytorch_model.bin", ("weights", ".bin")),
        ("answers.md", ("answers", ".md")),
        ("Lab8_answers (1).DOCX", ("answers", ".docx")),
        ("report.pdf", ("answers", ".pdf")),
        ("answers.doc", ("answers", ".doc")),  # found, so the student hears the format is unsupported
        ("requirements.txt", None),
        ("train_log.txt", None),
        ("LICENSE.md", None),
        ("answers_log.txt", ("answers", ".txt")),  # a strong word overrides an excluding one
        ("data.tar", None),
        ("submission.zip", None),
        ("model.pyc", None),
        (".pth", None),
    ],
)
def test_a_file_plays_a_role_by_its_extension_unless_its_name_rules_it_out(name, expected):
    assert role_of(name) == expected


def test_the_contract_name_is_the_role_with_the_files_own_extension():
    assert contract_name("weights", "Net (1).PT") == "weights.pt"
    assert contract_name("weights", "original/ckpt.pth.tar") == "weights.pth.tar"
    assert contract_name("answers", "sub/Lab8_Answers.DOCX") == "answers.docx"
    assert contract_name("model", "MyNet.py") == "model.py"


def test_candidates_rank_by_name_then_word_count_then_depth_then_extension():
    best_first = [
        "weights.pth",  # the contract name
        "weights.pt",  # the contract name, a later extension
        "best_model.pth",  # two strong words
        "final.pth",  # one strong word
        "sub/best.pth",  # one strong word, deeper
        "epoch9.pth",  # nothing said
    ]
    assert sorted(reversed(best_first), key=lambda path: rank("weights", path), reverse=True) == best_first
    # An unreadable format (.doc) is one tier down: found, so the student hears why, but never over a better name.
    answers_first = ["answers.md", "Lab8_answers.pdf", "answers.doc", "report.md", "Document1.docx", "notes.txt"]
    assert sorted(answers_first[::-1], key=lambda path: rank("answers", path), reverse=True) == answers_first


def test_copies_count_once_and_a_tie_between_different_files_is_ambiguous(tmp_path):
    make(tmp_path, {"model.py": "a", "model (1).py": "a", "net.py": "b", "lab.py": "c", "cnn.py": "d"})
    choice = choose("model", ["model (1).py", "model.py", "cnn.py"], tmp_path)
    assert (choice.chosen, choice.passed_over) == ("model.py", ["cnn.py"])
    tie = choose("model", ["net.py", "lab.py", "cnn.py"], tmp_path)
    assert tie.chosen is None and tie.tied == ["lab.py", "net.py"] and tie.passed_over == ["cnn.py"]
    assert tie.problem().startswith("ambiguous model file: lab.py, net.py rank equally")


def test_a_folder_is_searched_to_each_roles_depth_skipping_junk(tmp_path):
    make(
        tmp_path,
        {
            "checkpoints/best.pth": "w",
            "src/model.py": "m",
            "a/b/c/d/answers.md": "too deep",
            "docs/written/answers.txt": "a",
            "__MACOSX/._answers.md": "junk",
            "venv/lib/answers.md": "junk",
            "~$answers.docx": "lock",
            ".answers.md": "hidden",
        },
    )
    choices = choose_files(tmp_path)
    assert choices["model"].chosen is None and choices["weights"].chosen is None
    assert choices["answers"].chosen == "docs/written/answers.txt" and choices["answers"].passed_over == []


def test_torchscript_weights_need_no_model_file_and_take_only_model_py(tmp_path):
    make(tmp_path, {"weights.pt": torchscript_bytes(), "train.py": "t"})
    choices = choose_files(tmp_path)
    assert choices["model"].chosen is None and choices["model"].problem() is None
    make(tmp_path, {"Model.py": "def preprocess(x): return x"})
    assert choose_files(tmp_path)["model"].chosen == "Model.py"


def test_intake_locator_self_check_and_import_agree_on_one_folder(tmp_path):
    folder = make(
        tmp_path / "student",
        {
            "Model.py": "class Net: pass",
            "train.py": "train()",
            "best.pt": b"best",
            "last.pt": b"last",
            "Lab8_Answers (1).docx": b"docx",
            "notes.txt": "scratch",
            "requirements.txt": "torch",
        },
    )
    files = find_submission_files(folder)
    assert files.roles() == {"model": "Model.py", "weights": "best.pt", "answers": "Lab8_Answers (1).docx"}
    assert find_answers_file(folder) == folder / "Lab8_Answers (1).docx"
    recognition = classify(folder, sorted(p.name for p in folder.iterdir()))
    assert recognition.chosen == files.roles()
    assert recognition.contract == {"model": "model.py", "weights": "weights.pt", "answers": "answers.docx"}
    staged, findings = stage_submission(folder, tmp_path / "staging")
    assert staged.sources == {"model.py": "Model.py", "weights.pt": "best.pt", "answers.docx": "Lab8_Answers (1).docx"}
    assert files.notes == [
        "model file named Model.py; the contract name is model.py",
        "2 possible model files: using Model.py, ignoring train.py",
        "weights file named best.pt; the contract name is weights.pt",
        "2 possible weights files: using best.pt, ignoring last.pt",
        "answers file named Lab8_Answers (1).docx; the contract name is answers.docx",
        "2 possible answers files: using Lab8_Answers (1).docx, ignoring notes.txt",
    ]
    assert [f.message for f in findings if f.code == "files"] == files.notes


def test_ambiguous_weights_stop_grading_but_ambiguous_answers_only_leave_a_note(tmp_path):
    make(tmp_path, {"model.py": "m", "net1.pth": b"1", "net2.pth": b"2"})
    with pytest.raises(IntakeError, match="ambiguous weights file: net1.pth, net2.pth rank equally"):
        find_submission_files(tmp_path)
    (tmp_path / "net2.pth").unlink()
    make(tmp_path, {"q1_answers.md": "1.", "q2_answers.md": "2."})
    files = find_submission_files(tmp_path)
    assert files.answers_file is None and find_answers_file(tmp_path) is None
    assert "ambiguous answers file: q1_answers.md, q2_answers.md rank equally" in files.notes[-1]


def test_an_imported_folder_carries_the_imports_notes_into_grading(tmp_path):
    from helpers import BulkZip

    from grader.intake.blackboard import import_bulk_download
    from grader.policy.late import AttemptPolicy

    bulk = BulkZip()
    bulk.attempt("kim", datetime(2022, 11, 1, 9, 0), {"MyNet.py": b"m", "best.pth": b"1", "last.pth": b"22"})
    import_bulk_download(bulk.write(tmp_path / "gradebook.zip"), tmp_path / "subs", AttemptPolicy(), None)
    files = find_submission_files(tmp_path / "subs" / "kim")
    assert files.roles() == {"model": "model.py", "weights": "weights.pth", "answers": None}
    assert files.notes == [
        "model file named original/MyNet.py; the contract name is model.py",
        "weights file named original/best.pth; the contract name is weights.pth",
        "2 possible weights files: using original/best.pth, ignoring original/last.pth",
    ]
