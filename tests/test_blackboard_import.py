"""The Blackboard bulk download import, on zips built here the way Blackboard lays them out."""

import io
import json
import os
import subprocess
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers import ASSIGNMENT, BulkZip

from grader.intake.blackboard import (
    BulkDownloadError,
    import_bulk_download,
    parse_receipt,
    parse_submission_date,
    read_manifest,
)
from grader.intake.contract import role_of
from grader.intake.recognise import classify
from grader.intake.safe_zip import ExtractionLimits
from grader.policy.late import AttemptPolicy

CENTRAL = timezone(timedelta(hours=-6))
DUE = datetime(2022, 11, 1, 23, 59, tzinfo=CENTRAL)
NEWEST = AttemptPolicy(keep="newest")
BEFORE_DEADLINE = AttemptPolicy(keep="newest-before-deadline")


def zip_bytes(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = 0o120777 << 16
    return info


def run_import(tmp_path, bulk: BulkZip, policy=NEWEST, due=DUE, **limits):
    zip_path = bulk.write(tmp_path / "gradebook_CS101_Lab208_2022-11-02-10-00-00.zip")
    submissions = tmp_path / "submissions"
    report = import_bulk_download(zip_path, submissions, policy, due, limits=ExtractionLimits(**limits))
    return report, submissions, {student.username: student for student in report.students}


def test_files_are_mapped_through_the_receipt_to_contract_names(tmp_path):
    bulk = BulkZip()
    when = datetime(2022, 11, 1, 23, 59, 59)
    files = {"Lab8_model (1).py": b"class Net: pass\n", "net.pt": b"weights", "answers.docx": b"docx"}
    bulk.attempt("student1", when, files, display="Student One")
    report, submissions, students = run_import(tmp_path, bulk)

    assert students["student1"].status == "imported"
    assert students["student1"].files == {"model": "model.py", "weights": "weights.pt", "answers": "answers.docx"}
    folder = submissions / "student1"
    assert (folder / "model.py").read_bytes() == b"class Net: pass\n"
    assert (folder / "weights.pt").read_bytes() == b"weights"
    assert (folder / "original" / "Lab8_model (1).py").exists()
    manifest = read_manifest(folder)
    assert manifest.display_name == "Student One"
    assert manifest.submitted_at == datetime(2022, 11, 1, 23, 59, 59, tzinfo=CENTRAL)
    assert json.loads((folder / "manifest.json").read_text())["submitted_at"] == "2022-11-01T23:59:59-06:00"
    assert manifest.submitted_raw == "Tuesday, November 1, 2022 11:59:59 PM CST"
    assert manifest.attempt == "2022-11-01-23-59-59"
    roles = {item.original: (item.stored, item.role) for item in manifest.files}
    assert roles["net.pt"] == ("original/net.pt", "weights")
    assert report.notes == []


def test_newest_attempt_before_the_deadline_is_kept(tmp_path):
    bulk = BulkZip()
    bulk.attempt("bob", datetime(2022, 11, 1, 10, 0, 0), {"model.py": b"on time", "w.pth": b"1"})
    bulk.attempt("bob", datetime(2022, 11, 2, 9, 0, 0), {"model.py": b"late", "w.pth": b"2"})
    _, submissions, students = run_import(tmp_path, bulk, policy=BEFORE_DEADLINE)
    assert (submissions / "bob" / "model.py").read_bytes() == b"on time"
    assert students["bob"].attempt == "2022-11-01-10-00-00"
    assert "set aside 1 attempt(s) after the deadline" in students["bob"].problems
    assert read_manifest(submissions / "bob").attempts_seen == ["2022-11-01-10-00-00", "2022-11-02-09-00-00"]
    # the manifest's notes become the result's notes, which the student's page and feedback word for bob
    assert "set aside 1 attempt(s) after the deadline" in read_manifest(submissions / "bob").notes


def test_newest_policy_keeps_the_late_attempt(tmp_path):
    bulk = BulkZip()
    bulk.attempt("bob", datetime(2022, 11, 1, 10, 0, 0), {"model.py": b"on time"})
    bulk.attempt("bob", datetime(2022, 11, 2, 9, 0, 0), {"model.py": b"late"})
    _, submissions, _ = run_import(tmp_path, bulk, policy=NEWEST)
    assert (submissions / "bob" / "model.py").read_bytes() == b"late"


def test_when_every_attempt_is_late_the_newest_is_kept_with_a_note(tmp_path):
    bulk = BulkZip()
    bulk.attempt("eve", datetime(2022, 11, 3, 8, 0, 0), {"model.py": b"first"})
    bulk.attempt("eve", datetime(2022, 11, 4, 8, 0, 0), {"model.py": b"second"})
    _, submissions, students = run_import(tmp_path, bulk, policy=BEFORE_DEADLINE)
    assert (submissions / "eve" / "model.py").read_bytes() == b"second"
    assert any("every attempt is after the deadline" in problem for problem in students["eve"].problems)


def test_dotted_usernames_and_odd_unicode_names(tmp_path):
    bulk = BulkZip()
    odd = "my_attempt_2022-10-01-00-00-00_Modèle réseau (v2).py"
    bulk.attempt(
        "j.doe.2",
        datetime(2022, 11, 1, 12, 0, 0),
        {odd: "print('été')\n".encode(), "poids final.safetensors": b"st", "Antworten_ü.md": "ä".encode()},
        display="Jo (Joey) Doe",
    )
    _, submissions, students = run_import(tmp_path, bulk)
    student = students["j.doe.2"]
    assert student.status == "imported", student.problems
    assert student.display_name == "Jo (Joey) Doe"
    folder = submissions / "j.doe.2"
    assert (folder / "model.py").read_text() == "print('été')\n"
    assert (folder / "weights.safetensors").exists()
    assert (folder / "answers.md").read_text() == "ä"
    assert (folder / "original" / odd).exists()


def test_en_gb_receipt_with_mark_and_override_lines(tmp_path):
    bulk = BulkZip()
    stem = bulk.attempt(
        "uk1",
        datetime(2022, 11, 1, 23, 59, 59),
        {"model.py": b"x"},
        receipt_date="Tuesday, 01 November 2022 23:59:59 o'clock GMT",
        header_extra="Override Grade: 95",
    )
    bulk.members[-1] = (bulk.members[-1][0], bulk.members[-1][1].replace(b"Current Grade:", b"Current Mark:"))
    _, submissions, students = run_import(tmp_path, bulk)
    manifest = read_manifest(submissions / "uk1")
    assert manifest.submitted_at == datetime(2022, 11, 1, 23, 59, 59, tzinfo=timezone.utc)
    assert manifest.current_grade == "Needs Grading"
    assert manifest.override_grade == "95"
    assert manifest.receipt == f"{stem}.txt"


@pytest.mark.parametrize(
    ("raw", "expected", "problem"),
    [
        ("Tuesday, November 1, 2022 11:59:59 PM CST", datetime(2022, 11, 1, 23, 59, 59, tzinfo=CENTRAL), None),
        (
            "Tuesday, November 1, 2022 12:05:00 AM EDT",
            datetime(2022, 11, 1, 0, 5, tzinfo=timezone(-timedelta(hours=4))),
            None,
        ),
        ("Monday, 01 November 2022 23:59:59 o'clock GMT", datetime(2022, 11, 1, 23, 59, 59, tzinfo=timezone.utc), None),
        ("Tuesday, November 1, 2022 1:00:00 PM", datetime(2022, 11, 1, 13, 0), "no time zone"),
        ("Tuesday, November 1, 2022 1:00:00 PM IST", datetime(2022, 11, 1, 13, 0), "unknown time zone 'IST'"),
        ("sometime last week", None, "cannot read"),
    ],
)
def test_submission_dates_in_both_locales(raw, expected, problem):
    moment, found = parse_submission_date(raw)
    assert moment == expected
    assert (found is None) if problem is None else (problem in found)


def test_student_zip_is_unpacked_and_recognised(tmp_path):
    upload = zip_bytes(
        {
            "Lab8/model.py": b"model",
            "Lab8/train.py": b"train",
            "Lab8/checkpoints/best.pth": b"w",
            "Lab8/answers.md": b"a",
            "__MACOSX/Lab8/._model.py": b"junk",
            "../escape.py": b"bad",
            "/abs.py": b"bad",
            symlink("Lab8/secrets.md", "/etc/shadow"): b"/etc/shadow",
        }
    )
    bulk = BulkZip()
    bulk.attempt("carol", datetime(2022, 11, 1, 9, 0, 0), {"Lab 8 submission.zip": upload})
    _, submissions, students = run_import(tmp_path, bulk)
    student = students["carol"]
    folder = submissions / "carol"
    assert student.files == {"model": "model.py", "weights": "weights.pth", "answers": "answers.md"}
    assert (folder / "model.py").read_bytes() == b"model"
    assert (folder / "original" / "Lab 8 submission" / "Lab8" / "checkpoints" / "best.pth").exists()
    assert any("'../escape.py'" in problem and "traversal" in problem for problem in student.problems)
    assert any("'/abs.py'" in problem and "absolute path" in problem for problem in student.problems)
    assert any("'Lab8/secrets.md'" in problem and "symbolic link" in problem for problem in student.problems)
    assert not list(tmp_path.rglob("escape.py")) and not list(tmp_path.rglob("abs.py"))
    assert not list(folder.rglob("._model.py"))
    manifest = read_manifest(folder)
    assert "Lab 8 submission.zip/Lab8/model.py" in {item.original for item in manifest.files}


def test_missing_and_ambiguous_files_are_reported(tmp_path):
    bulk = BulkZip()
    bulk.attempt("dave", datetime(2022, 11, 1, 9, 0, 0), {"mynet.py": b"1", "lab_helpers.py": b"2"})
    _, submissions, students = run_import(tmp_path, bulk)
    student = students["dave"]
    assert student.status == "imported"
    assert student.ambiguous == {"model": ["original/lab_helpers.py", "original/mynet.py"]}
    assert student.missing == ["weights", "answers"]
    assert not (submissions / "dave" / "model.py").exists()
    assert any(problem.startswith("ambiguous model file") for problem in student.problems)
    assert any(problem.startswith("no weights file") for problem in student.problems)


def test_preferred_names_and_identical_copies_are_not_ambiguous(tmp_path):
    for name, data in {"model.py": b"same", "Lab8_model (1).py": b"same", "train.py": b"t", "best.pth": b"w"}.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "last.pth").write_bytes(b"v")
    recognition = classify(tmp_path, ["model.py", "Lab8_model (1).py", "train.py", "best.pth", "last.pth"])
    assert recognition.chosen == {"model": "model.py", "weights": "best.pth"}
    assert recognition.missing == ["answers"]
    assert role_of("ckpt.pth.tar") == ("weights", ".pth.tar")
    assert role_of("requirements.txt") is None


def test_malicious_members_are_refused_and_other_students_still_import(tmp_path):
    bulk = BulkZip()
    bulk.attempt("alice", datetime(2022, 11, 1, 9, 0, 0), {"model.py": b"alice's model"})
    fake_receipt = (
        "Name: Alice (alice)\nAssignment: Lab 8\nDate Submitted: Friday, December 2, 2022 1:00:00 PM CST\n"
        "Files:\n\tOriginal filename: model.py\n\tFilename: Lab 8_alice_attempt_2022-12-02-13-00-00_model.py\n"
    )
    bomb = bytes(4 << 20)
    stem = bulk.attempt(
        "mallory",
        datetime(2022, 11, 1, 9, 30, 0),
        {
            "../../evil.py": b"traversal",
            "C:\\evil.py": b"absolute",
            "link.py": None,
            "big.pth": os.urandom(5000),
            "zeros.pth": bomb,
            "x_alice_attempt_2022-12-02-13-00-00.txt": fake_receipt.encode(),
            "model.py": b"mallory's model",
        },
    )
    bulk.add(symlink(f"{stem}_link.py", "/etc/passwd"), b"/etc/passwd")
    bulk.add("../../outside.txt", b"x")
    bulk.add("Lab 8_alice_attempt_2022-12-02-13-00-00_model.py", b"planted")
    report, submissions, students = run_import(
        tmp_path, bulk, max_member_bytes=4096 + (4 << 20), ratio_min_bytes=1 << 20
    )

    assert students["alice"].status == "imported"
    assert (submissions / "alice" / "model.py").read_bytes() == b"alice's model"
    mallory = students["mallory"]
    assert mallory.status == "imported"
    problems = "\n".join(mallory.problems)
    assert "refused '../../evil.py'" in problems and "path traversal" in problems
    assert "refused 'C:\\\\evil.py'" in problems and "absolute path" in problems
    assert "refused 'link.py'" in problems and "symbolic link" in problems
    assert "refused 'zeros.pth'" in problems and "compression ratio" in problems
    assert (submissions / "mallory" / "model.py").read_bytes() == b"mallory's model"
    assert any(line.startswith("mallory: refused 'link.py'") for line in report.lines())
    assert any("outside.txt" in note for note in report.notes)
    assert not list(tmp_path.rglob("evil.py")) and not list(tmp_path.rglob("outside.txt"))
    assert sorted(os.listdir(submissions)) == ["alice", "mallory"]


def test_oversized_member_is_refused_naming_student_and_file(tmp_path):
    bulk = BulkZip()
    bulk.attempt("frank", datetime(2022, 11, 1, 9, 0, 0), {"model.py": b"m", "huge.pth": os.urandom(3000)})
    _, submissions, students = run_import(tmp_path, bulk, max_member_bytes=2000)
    assert any("refused 'huge.pth'" in problem and "oversized" in problem for problem in students["frank"].problems)
    assert students["frank"].missing == ["weights", "answers"]
    assert (submissions / "frank" / "model.py").exists()


def test_receipt_and_zip_disagreeing_is_reported(tmp_path):
    bulk = BulkZip()
    stem = bulk.attempt("gina", datetime(2022, 11, 1, 9, 0, 0), {"model.py": b"m", "weights.pth": None})
    bulk.add(f"{stem}_notes.txt", b"unlisted")
    _, submissions, students = run_import(tmp_path, bulk)
    problems = students["gina"].problems
    assert "'weights.pth' is listed in the receipt but missing from the zip" in problems
    assert "'notes.txt' is in the zip but not in the receipt; imported anyway" in problems
    assert (submissions / "gina" / "answers.txt").read_bytes() == b"unlisted"


def test_attempt_without_files_is_skipped_but_recorded(tmp_path):
    bulk = BulkZip()
    bulk.attempt("hank", datetime(2022, 11, 1, 9, 0, 0), {})
    _, submissions, students = run_import(tmp_path, bulk)
    assert students["hank"].status == "skipped"
    assert read_manifest(submissions / "hank").files == []


def test_reimport_replaces_the_folder_and_leaves_no_temporary_files(tmp_path):
    first = BulkZip()
    first.attempt("ivy", datetime(2022, 11, 1, 9, 0, 0), {"model.py": b"old", "old.pth": b"w"})
    run_import(tmp_path, first)
    second = BulkZip()
    second.attempt("ivy", datetime(2022, 11, 1, 10, 0, 0), {"model.py": b"new"})
    _, submissions, _ = run_import(tmp_path, second)
    assert (submissions / "ivy" / "model.py").read_bytes() == b"new"
    assert not (submissions / "ivy" / "weights.pth").exists()
    assert os.listdir(submissions) == ["ivy"]


def test_receipt_with_mismatched_or_unsafe_username_is_refused(tmp_path):
    bulk = BulkZip()
    bulk.add(f"{ASSIGNMENT}_joe_attempt_2022-11-01-09-00-00.txt", b"Name: Joe (someone.else)\nAssignment: Lab 8\n")
    report, _, students = run_import(tmp_path, bulk)
    assert students == {}
    assert any("does not match the file name" in note for note in report.notes)
    with pytest.raises(ValueError, match="refused username"):
        parse_receipt("Name: X (../x)\n", f"{ASSIGNMENT}_../x_attempt_2022-11-01-09-00-00.txt")


def test_a_file_that_is_not_a_zip_is_an_error(tmp_path):
    path = tmp_path / "gradebook.zip"
    path.write_bytes(b"not a zip")
    with pytest.raises(BulkDownloadError, match="not a readable zip"):
        import_bulk_download(path, tmp_path / "submissions", NEWEST, None)


def test_answers_typed_into_the_submission_field_become_the_answers_file(tmp_path):
    typed = (
        "<p><strong>Q1.</strong> Overfitting &amp; augmentation</p><div>Q2: the learning rate<br>was too high</div>"
        "<script>alert(1)</script>"
    )
    bulk = BulkZip()
    bulk.attempt("kim", datetime(2022, 11, 1, 9, 0, 0), {"model.py": b"m", "weights.pth": b"w"}, text=typed)
    bulk.attempt("lee", datetime(2022, 11, 1, 9, 0, 0), {"model.py": b"m", "answers.md": b"uploaded"}, text="typed")
    report, submissions, students = run_import(tmp_path, bulk)

    assert students["kim"].files["answers"] == "answers.md"
    answers = (submissions / "kim" / "answers.md").read_text()
    assert answers == "Q1. Overfitting & augmentation\n\nQ2: the learning rate\nwas too high\n"
    manifest = read_manifest(submissions / "kim")
    assert {item.original: item.role for item in manifest.files}["(Submission Field)"] == "answers"
    assert any("Submission Field" in note and "answers_from_text_field.md" in note for note in manifest.notes)
    assert any(line.startswith("kim: no answers file") for line in report.lines())
    assert (submissions / "lee" / "answers.md").read_text() == "uploaded"  # an uploaded file wins over typed text
    assert not (submissions / "lee" / "original" / "answers_from_text_field.md").exists()


def test_submission_field_ends_at_the_last_comments_line_and_placeholder_means_none():
    def receipt(field: str) -> str:
        return (
            f"Name: Kim (kim)\nAssignment: {ASSIGNMENT}\n\nSubmission Field:\n{field}\n\nComments:\n"
            "There are no student comments for this assignment.\n\nFiles:\n"
        )

    name = f"{ASSIGNMENT}_kim_attempt_2022-11-01-09-00-00.txt"
    assert parse_receipt(receipt("Q1 answer\nComments:\nstill mine"), name).submission_text == (
        "Q1 answer\nComments:\nstill mine"
    )
    placeholder = "There is no student submission text data for this assignment."
    assert parse_receipt(receipt(placeholder), name).submission_text is None


def test_files_split_over_attempts_fill_each_missing_role_from_the_newest_earlier_attempt(tmp_path):
    bulk = BulkZip()
    bulk.attempt("max", datetime(2022, 11, 1, 8, 0, 0), {"model.py": b"first model", "w.pth": b"first weights"})
    bulk.attempt("max", datetime(2022, 11, 1, 9, 0, 0), {"model.py": b"second model", "notes.txt": b"x"})
    bulk.attempt("max", datetime(2022, 11, 1, 10, 0, 0), {"answers.md": b"my answers"})
    bulk.attempt("max", datetime(2022, 11, 3, 10, 0, 0), {"model.py": b"late model"})  # set aside: after the due date
    report, submissions, students = run_import(tmp_path, bulk, policy=BEFORE_DEADLINE)

    folder = submissions / "max"
    assert students["max"].attempt == "2022-11-01-10-00-00"
    assert students["max"].files == {"model": "model.py", "weights": "weights.pth", "answers": "answers.md"}
    assert (folder / "model.py").read_bytes() == b"second model"  # the newest earlier attempt with a model
    assert (folder / "weights.pth").read_bytes() == b"first weights"
    assert (folder / "answers.md").read_bytes() == b"my answers"
    manifest = read_manifest(folder)
    by_role = {item.role: item for item in manifest.files if item.role}
    assert by_role["model"].attempt == "2022-11-01-09-00-00"
    assert by_role["weights"].attempt == "2022-11-01-08-00-00"
    assert by_role["answers"].attempt is None
    assert by_role["model"].stored == "original/attempt-2022-11-01-09-00-00/model.py"
    notes = "\n".join(students["max"].notes)
    assert "model file original/attempt-2022-11-01-09-00-00/model.py comes from the earlier attempt" in notes
    assert "weights file original/attempt-2022-11-01-08-00-00/w.pth comes from the earlier attempt" in notes
    assert any(line.startswith("max: model file") for line in report.lines())
    assert students["max"].missing == []


def test_the_graded_attempt_keeps_every_role_it_has_a_file_for(tmp_path):
    bulk = BulkZip()
    bulk.attempt("ned", datetime(2022, 11, 1, 8, 0, 0), {"model.py": b"old", "weights.pth": b"old", "answers.md": b"a"})
    bulk.attempt("ned", datetime(2022, 11, 1, 9, 0, 0), {"model.py": b"new", "weights.pth": b"new"})
    _, submissions, students = run_import(tmp_path, bulk)
    assert (submissions / "ned" / "model.py").read_bytes() == b"new"
    assert (submissions / "ned" / "weights.pth").read_bytes() == b"new"
    assert (submissions / "ned" / "answers.md").read_bytes() == b"a"
    assert students["ned"].notes == [
        "answers file original/attempt-2022-11-01-08-00-00/answers.md comes from the earlier attempt "
        "2022-11-01-08-00-00: the graded attempt 2022-11-01-09-00-00 has none"
    ]


def test_an_unzipped_download_folder_imports_like_the_zip_and_refuses_links_out(tmp_path):
    bulk = BulkZip()
    bulk.attempt("olga", datetime(2022, 11, 1, 9, 0, 0), {"model.py": b"olga", "weights.pth": b"w", "answers.md": b"a"})
    stem = bulk.attempt("pia", datetime(2022, 11, 1, 9, 0, 0), {"model.py": b"pia", "weights.pth": b"w"})
    zip_path = bulk.write(tmp_path / "gradebook.zip")
    unzipped = tmp_path / "gradebook"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(unzipped)
    secret = tmp_path / "secret.pth"
    secret.write_bytes(b"not pia's")
    (unzipped / f"{stem}_weights.pth").unlink()
    (unzipped / f"{stem}_weights.pth").symlink_to(secret)

    report = import_bulk_download(unzipped, tmp_path / "submissions", NEWEST, None)
    students = {student.username: student for student in report.students}
    assert (tmp_path / "submissions" / "olga" / "model.py").read_bytes() == b"olga"
    assert students["olga"].files == {"model": "model.py", "weights": "weights.pth", "answers": "answers.md"}
    assert (tmp_path / "submissions" / "pia" / "model.py").read_bytes() == b"pia"
    pia_problems = "\n".join(students["pia"].problems)
    assert "refused 'weights.pth'" in pia_problems and "symbolic link" in pia_problems
    assert not (tmp_path / "submissions" / "pia" / "weights.pth").exists()


def test_a_download_folder_over_the_member_limit_is_refused(tmp_path):
    folder = tmp_path / "gradebook"
    folder.mkdir()
    for number in range(4):
        (folder / f"file{number}.txt").write_bytes(b"x")
    with pytest.raises(BulkDownloadError, match="more than 3 files"):
        import_bulk_download(folder, tmp_path / "submissions", NEWEST, None, limits=ExtractionLimits(max_members=3))


def test_no_due_date_is_said_once_per_import_not_per_student(tmp_path):
    bulk = BulkZip()
    for name in ("quinn", "rosa", "sam"):
        bulk.attempt(name, datetime(2022, 11, 1, 9, 0, 0), {"model.py": b"1"})
        bulk.attempt(name, datetime(2022, 11, 5, 9, 0, 0), {"model.py": b"2"})
    report, submissions, students = run_import(tmp_path, bulk, policy=BEFORE_DEADLINE, due=None)
    assert sum("no due date" in line for line in report.lines()) == 1
    assert not any("due date" in problem for student in students.values() for problem in student.problems)
    assert (submissions / "rosa" / "model.py").read_bytes() == b"2"


def test_imported_student_folders_are_ignored_by_git_and_the_example_is_not():
    repo = Path(__file__).resolve().parents[1]
    paths = ["submissions/alice/model.py", "submissions/.bob.x.importing/model.py", "submissions/example/model.py"]
    paths += ["submissions/example/.sample", "submissions/.gitignore"]
    found = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=repo,
        input="\n".join(paths),
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.stdout.split() == ["submissions/alice/model.py", "submissions/.bob.x.importing/model.py"]


def test_import_bb_takes_the_unzipped_folder_and_prints_each_note_once(tmp_path, capsys):
    from grader.cli import main as cli_main

    bulk = BulkZip()
    for name in ("tom", "uma"):
        bulk.attempt(name, datetime(2022, 11, 1, 8, 0, 0), {"model.py": b"m", "weights.pth": b"w"})
        bulk.attempt(name, datetime(2022, 11, 1, 9, 0, 0), {}, text="<p>1. Overfitting.</p>")
    unzipped = tmp_path / "gradebook_CS101_Lab8"
    with zipfile.ZipFile(bulk.write(tmp_path / "gradebook.zip")) as archive:
        archive.extractall(unzipped / "gradebook_CS101_Lab8")  # as Windows' Extract All does: one folder down
    (unzipped / ".DS_Store").write_bytes(b"")
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text((Path(__file__).resolve().parents[1] / "rubric.yaml").read_text())
    code = cli_main(["import-bb", str(unzipped), "--submissions", str(tmp_path / "subs"), "--rubric", str(rubric)])
    output = capsys.readouterr().out
    assert code == 0, output
    assert output.count("no due date known") == 1
    assert "tom: model file original/attempt-2022-11-01-08-00-00/model.py comes from the earlier attempt" in output
    assert "uma: no answers file in the graded attempt: the text typed into its Submission Field is used" in output
    assert f"{unzipped}: 2 imported, 0 skipped, 0 failed" in output
    assert (tmp_path / "subs" / "uma" / "answers.md").read_text() == "1. Overfitting.\n"
    assert "belong to no receipt" not in output


def test_an_upload_named_like_an_earlier_attempts_folder_does_not_stop_the_import(tmp_path):
    bulk = BulkZip()
    bulk.attempt("vic", datetime(2022, 11, 1, 8, 0, 0), {"model.py": b"first model"})
    bulk.attempt("vic", datetime(2022, 11, 1, 9, 0, 0), {"attempt-2022-11-01-08-00-00": b"x", "answers.md": b"a"})
    _, submissions, students = run_import(tmp_path, bulk)
    assert students["vic"].status == "imported", students["vic"].problems
    assert (submissions / "vic" / "model.py").read_bytes() == b"first model"
    assert (submissions / "vic" / "original" / "attempt-2022-11-01-08-00-00").read_bytes() == b"x"


def forged_receipt(uploader_stem: str, victim: str, stamp: str, date: str) -> tuple[str, bytes]:
    """What a student uploads to pose as `victim`: a file named like a receipt, in Blackboard's layout.

    Blackboard stores it as `<uploader_stem>_<its name>`, so the files it lists carry that prefix too.
    """
    name = f"x_{victim}_attempt_{stamp}.txt"
    stem = f"{uploader_stem}_x_{victim}_attempt_{stamp}"
    text = (
        f"Name: {victim.title()} ({victim})\nAssignment: {ASSIGNMENT}\nDate Submitted: {date}\n"
        "Current Grade: Needs Grading\n\nFiles:\n"
        f"\tOriginal filename: model.py\n\tFilename: {stem}_model.py\n\n"
        f"\tOriginal filename: weights.pth\n\tFilename: {stem}_weights.pth\n"
    )
    return name, text.encode()


def every_file_under(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_a_receipt_planted_by_another_student_never_becomes_their_attempt(tmp_path):
    """The red-team attack of issue 22: Mallory uploads a receipt for alice and the two files it lists, and
    types more than a receipt may hold into the Submission Field so that her own receipt, which lists them
    as her uploads, is refused."""
    bulk = BulkZip()
    alice_time = datetime(2022, 11, 1, 22, 0, 0)
    bulk.attempt("alice", alice_time, {"model.py": b"alice's model", "weights.pth": b"alice's weights"})
    mallory_stem = f"{ASSIGNMENT}_mallory_attempt_2022-11-01-21-00-00"
    stamp = "2022-11-01-23-00-00"
    name, receipt = forged_receipt(mallory_stem, "alice", stamp, "Tuesday, November 1, 2022 11:00:00 PM CST")
    planted = {name: receipt, f"x_alice_attempt_{stamp}_model.py": b"planted model"}
    planted[f"x_alice_attempt_{stamp}_weights.pth"] = b"planted weights"
    too_long = os.urandom(600_000).hex()  # 1.2 MB that does not compress: refused for its size alone
    bulk.attempt("mallory", datetime(2022, 11, 1, 21, 0, 0), planted, text=too_long)
    report, submissions, students = run_import(tmp_path, bulk, policy=BEFORE_DEADLINE)

    alice = students["alice"]
    assert alice.status == "imported", alice.problems
    assert alice.attempt == "2022-11-01-22-00-00"
    assert (submissions / "alice" / "model.py").read_bytes() == b"alice's model"
    assert (submissions / "alice" / "weights.pth").read_bytes() == b"alice's weights"
    manifest = read_manifest(submissions / "alice")
    assert manifest.receipt == f"{ASSIGNMENT}_alice_attempt_2022-11-01-22-00-00.txt"
    assert manifest.attempts_seen == ["2022-11-01-22-00-00"]
    assert manifest.submitted_at == alice_time.replace(tzinfo=CENTRAL)  # lateness from her own receipt's time
    everything = every_file_under(submissions)
    assert not [path for path, data in everything.items() if data.startswith(b"planted")]

    mallory = students["mallory"]
    assert mallory.status == "error"
    problem = f"receipt '{mallory_stem}.txt' is too large"
    assert any(line.startswith(f"mallory: {problem}") for line in report.lines()), report.lines()
    mallory_manifest = read_manifest(submissions / "mallory")
    assert any(line.startswith(problem) for line in mallory_manifest.problems)
    assert mallory_manifest.error is not None and problem in mallory_manifest.error
    assert mallory_manifest.files == [] and mallory_manifest.roles == {}
    assert sorted(every_file_under(submissions / "mallory")) == ["manifest.json"]
    assert not any("belong to no receipt" in note for note in report.notes)


def test_a_name_shaped_like_a_receipt_is_a_file_even_when_no_receipt_lists_it(tmp_path):
    """Without Mallory's own receipt in the zip at all, her upload still cannot pose as alice's receipt:
    every upload's stored name carries its uploader's `_attempt_<stamp>` before the name she chose."""
    bulk = BulkZip()
    bulk.attempt("alice", datetime(2022, 11, 1, 22, 0, 0), {"model.py": b"alice's model"})
    mallory_stem = f"{ASSIGNMENT}_mallory_attempt_2022-11-01-21-00-00"
    stamp = "2022-11-01-23-00-00"
    name, receipt = forged_receipt(mallory_stem, "alice", stamp, "Tuesday, November 1, 2022 11:00:00 PM CST")
    bulk.add(f"{mallory_stem}_{name}", receipt)
    bulk.add(f"{mallory_stem}_x_alice_attempt_{stamp}_model.py", b"planted model")
    report, submissions, students = run_import(tmp_path, bulk)

    assert sorted(students) == ["alice"]
    assert students["alice"].attempt == "2022-11-01-22-00-00"
    assert (submissions / "alice" / "model.py").read_bytes() == b"alice's model"
    assert read_manifest(submissions / "alice").attempts_seen == ["2022-11-01-22-00-00"]
    assert any("2 member(s) belong to no receipt" in note for note in report.notes)


def test_a_receipt_that_cannot_be_read_makes_its_students_import_an_error_with_a_note(tmp_path, capsys):
    from grader.cli import main as cli_main

    bulk = BulkZip()
    bulk.attempt("wes", datetime(2022, 11, 1, 8, 0, 0), {"model.py": b"older model", "weights.pth": b"w"})
    stem = bulk.attempt("wes", datetime(2022, 11, 1, 9, 0, 0), {"model.py": b"newer model"}, text="my answer")
    bulk.attempt("xan", datetime(2022, 11, 1, 9, 0, 0), {"model.py": b"xan's model"})
    zip_path = tmp_path / "gradebook.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as archive:
        for member, data in bulk.members:
            archive.writestr(member, data)
    damaged = zip_path.read_bytes().replace(b"my answer", b"my ANSWER")  # the receipt's CRC no longer matches
    zip_path.write_bytes(damaged)
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text((Path(__file__).resolve().parents[1] / "rubric.yaml").read_text())
    submissions = tmp_path / "subs"
    (submissions / "wes").mkdir(parents=True)
    (submissions / "wes" / "model.py").write_bytes(b"from an earlier import")

    code = cli_main(["import-bb", str(zip_path), "--submissions", str(submissions), "--rubric", str(rubric)])
    output = capsys.readouterr().out
    assert code == 1, output
    assert f"wes: cannot read receipt '{stem}.txt'" in output
    assert "1 imported, 0 skipped, 1 failed" in output
    manifest = read_manifest(submissions / "wes")
    assert manifest.error is not None and f"cannot read receipt '{stem}.txt'" in manifest.error
    assert manifest.attempts_seen == ["2022-11-01-08-00-00", "2022-11-01-09-00-00"]
    assert sorted(every_file_under(submissions / "wes")) == ["manifest.json"]  # no older attempt, no stale files
    assert (submissions / "xan" / "model.py").read_bytes() == b"xan's model"
