"""The HTML reports (`grader report`, `grader show`): a page per student and the class dashboard.

A small class is graded once per module through the fake sandbox (helpers.FakeBackend), with real answers
files, a real npz split, baselines and an export, then the pages are built from results/ as a TA would.
The fast tests read the HTML; the `browser` test opens it in headless Chromium.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers import (
    FakeBackend,
    FakeFailure,
    fake_submission,
    headless_chromium,
    logits_with_accuracy,
    write_baselines,
    write_npz,
    write_rubric,
)
from rich.console import Console

from grader.answers.similarity import METHOD_ENV
from grader.batch.run import BatchOptions, grade_all
from grader.batch.summary import summarise
from grader.cli import main as cli_main
from grader.datasets import CIFAR10_CLASSES
from grader.report.clusters import connected_groups
from grader.report.html.build import build_reports
from grader.report.html.class_page import class_page
from grader.report.html.hostpaths import HostPaths
from grader.report.html.split import STRIP_IMAGES, ReportSplit
from grader.report.html.student import student_page
from grader.report.verbs import find_student
from grader.report.words import question_words
from grader.results.model import LateInfo, Points
from grader.results.store import load_result, load_results, save_result

# Written by students: markup that would run, close the table, or break out of an attribute if unescaped.
PAYLOAD = '</table></script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">\'"&amp;'
HOSTILE_NAME = "<script>window.pwned=3<script>\"eve'"  # a folder name may hold all this (no slash)
SHARED = (
    "1. Yes, an autoencoder learns a compressed code without labels by reconstructing its input.\n"
    "2. They learn features from raw data and do well with large labelled datasets and GPUs.\n"
    "3. They need lots of data and compute, overfit small datasets and are hard to interpret.\n"
    "4. They approximate any nonlinear function, so the architecture can fit the data we know.\n"
)
ALICE = (
    "1. Not quite: an autoencoder is trained to copy its input, so any labels come from elsewhere.\n"
    "2. Deep networks stack many learned layers; with enough data they find useful features themselves.\n"
)
OWN = "1. No idea.\n2. Fast.\n3. Slow.\n4. " + PAYLOAD + "\n"
EXPORT = {"column_name": "Lab 8", "column_id": "123456", "points_possible": 104}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, tiny_split):
    """alice 80 %, bob and cat with identical predictions, dan 30 %, and a hostile name whose run fails;
    bob, cat and dan wrote the same answers. Baselines lenet5 and resnet20 measured on the split."""
    root = tmp_path_factory.mktemp("report-class")
    write_npz(tiny_split, root / "split.npz")
    rubric = write_rubric(root / "rubric.yaml", Path("split.npz"), tiny_split, export=EXPORT)
    write_baselines(root / "reference", tiny_split.content_sha256(), lenet5=0.45, resnet20=0.75)
    submissions = root / "submissions"
    for name, answers in (("alice", ALICE), ("bob", SHARED), ("cat", SHARED),
                          ("dan", SHARED), (HOSTILE_NAME, OWN)):  # fmt: skip
        fake_submission(submissions, name, answers=answers)
    labels = tiny_split.labels
    backend = FakeBackend({
        "alice": logits_with_accuracy(labels, 0.8), "bob": logits_with_accuracy(labels, 0.5),
        "cat": logits_with_accuracy(labels, 0.5), "dan": logits_with_accuracy(labels, 0.3),
        HOSTILE_NAME: FakeFailure("syntax", "model.py line 3: " + PAYLOAD),
    })  # fmt: skip
    overrides = {"dan": {"items": {"exercise2": 4}, "reason": "answers accepted", "decided_by": "TA Kim"}}
    (root / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    results = root / "results"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(METHOD_ENV, "tfidf")
        patch.chdir(root)  # reference/baselines.json is read from the working folder, as in the repository
        options = BatchOptions(rubric=rubric, submissions=submissions, results=results, sandbox=backend, workers=1)
        grade_all(options, Console(file=io.StringIO()))
        args = ["export", "--format", "full", "--rubric", "rubric.yaml", "--results", "results", "--out", "exports"]
        assert cli_main(args) == 0
    return SimpleNamespace(root=root, rubric=rubric, results=results, submissions=submissions, split=tiny_split,
                           exports=root / "exports")  # fmt: skip


@pytest.fixture(scope="module")
def built(graded):
    output = graded.results / "report"
    written = build_reports(results=graded.results, rubric=graded.rubric, output=output, exports=graded.exports)
    return SimpleNamespace(**vars(graded), written=written, output=output)


class Page(HTMLParser):
    """The elements of a page: tags with their attributes, script bodies, and the text shown."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if tag == "script":
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)

    def shown(self) -> str:
        return "".join(self.text)

    def all(self, tag: str) -> list[dict]:
        return [attrs for name, attrs in self.tags if name == tag]


def page_of(built, student: str) -> str:
    return (built.output / "students" / f"{student}.html").read_text(encoding="utf-8")


def test_report_writes_the_class_page_and_one_page_per_student(built):
    assert built.written.index == built.output / "index.html"
    assert sorted(path.name for path in (built.output / "students").iterdir()) == sorted(
        f"{name}.html" for name in ("alice", "bob", "cat", "dan", HOSTILE_NAME)
    )
    assert not list(built.output.rglob(".*.tmp"))  # written whole, nothing half-written left beside them


def test_student_page_shows_the_grade_and_how_it_was_computed(built):
    dan = load_result(built.results / "dan.json")
    page = Page(page_of(built, "dan"))
    shown = page.shown()
    maximum = sum(item.max_points for item in dan.items)
    assert f"{dan.final_points.total:g} / {maximum:g}" in shown
    assert "Exercise 1" in shown and "Exercise 2" in shown and "Final grade" in shown
    assert "Changed by TA Kim" in shown and "answers accepted" in shown  # the override and its reason
    assert "30.00%" in shown and "lenet5" in shown and "resnet20" in shown
    charts = [attrs for attrs in page.all("svg") if attrs.get("class") == "chart"]
    assert [attrs["aria-label"] for attrs in charts] == [
        "Accuracy on each class",
        "Confusion matrix: true class by row, predicted class by column",
    ]
    assert all(name in shown for name in CIFAR10_CLASSES)  # the heatmap's and the bars' class names


def test_student_page_shows_misclassified_images_from_the_split_with_both_classes(built):
    page = Page(page_of(built, "dan"))
    images = [attrs for attrs in page.all("img") if attrs["src"].startswith("data:image/png;base64,")]
    dan = load_result(built.results / "dan.json")
    wrong = sum(int(p) != int(label) for p, label in zip(dan.predictions, built.split.labels))
    assert len(images) == min(STRIP_IMAGES, wrong) > 0
    mistakes = [(CIFAR10_CLASSES[label], CIFAR10_CLASSES[int(p)])
                for p, label in zip(dan.predictions, built.split.labels) if int(p) != label]  # fmt: skip
    # class by class in turn: the first mistake on an airplane, then the first on an automobile, ...
    first_of_each = sorted({true for true, _ in mistakes}, key=list(CIFAR10_CLASSES).index)
    expected = [next(pair for pair in mistakes if pair[0] == true) for true in first_of_each]
    shown = [attrs["alt"] for attrs in images[: len(expected)]]
    assert shown == [f"a {true} classified as {predicted}" for true, predicted in expected]
    assert len(set(shown)) > 1


def test_each_written_answer_is_shown_with_its_points_and_reason(built):
    from grader.answers import AnswersResult

    bob = AnswersResult.model_validate(load_result(built.results / "bob.json").answers)
    shown = Page(page_of(built, "bob")).shown()
    for question in bob.questions:
        assert f"Question {question.number}: {question.points:g} / {question.max_points:g}" in shown
        assert question_words(question.reason) in shown and question.answer_text in shown
        assert "closeness to the model answer" not in shown  # a similarity figure means nothing to a student


def test_student_strings_appear_literally_and_no_markup_of_theirs_is_live(built):
    raw = page_of(built, HOSTILE_NAME)
    page = Page(raw)
    shown = page.shown()
    assert HOSTILE_NAME in shown  # the name, as written
    assert PAYLOAD in shown  # in the error and in answer 4
    assert "window.pwned" not in "".join(page.scripts)  # the student page runs no script at all
    assert page.all("script") == []
    assert not any(key.startswith("on") for _, attrs in page.tags for key in attrs)
    index = Page((built.output / "index.html").read_text(encoding="utf-8"))
    assert HOSTILE_NAME in index.shown() and PAYLOAD in index.shown()
    assert len(index.all("script")) == 1 and "window.pwned" not in index.scripts[0]
    assert not any(key.startswith("on") for _, attrs in index.tags for key in attrs)


def test_pages_name_no_url_and_fetch_nothing(built):
    for path in [built.output / "index.html", *(built.output / "students").iterdir()]:
        html = path.read_text(encoding="utf-8")
        assert "http://" not in html and "https://" not in html, path.name
        page = Page(html)
        assert all(attrs["src"].startswith("data:") for attrs in page.all("img"))
        assert page.all("link") == [] and page.all("iframe") == []
        policy = next(attrs["content"] for attrs in page.all("meta") if attrs.get("http-equiv"))
        assert policy.startswith("default-src 'none'")


def test_student_page_shows_no_host_path(built):
    hidden = {str(built.results.resolve()), str(built.submissions.resolve()), str(Path.home()), str(built.root)}
    for path in (built.output / "students").iterdir():
        html = path.read_text(encoding="utf-8")
        assert not [folder for folder in hidden if folder in html], path.name


def test_class_page_lists_students_with_links_clusters_errors_and_the_export(built):
    html = (built.output / "index.html").read_text(encoding="utf-8")
    page = Page(html)
    links = {attrs["href"] for attrs in page.all("a")}
    for student in ("alice", "bob", "cat", "dan"):
        assert f"students/{student}.html" in links
        assert (built.output / f"students/{student}.html").is_file()
    shown = page.shown()
    assert "Near-duplicate written answers" in shown
    # bob, cat and dan share every answer: one cluster of three, not three pairs per question
    start = html.index('id="answer-clusters"')
    clusters = Page(html[start : html.index("</table>", start)])
    assert len(clusters.all("tr")) == 2  # the header and one cluster
    assert "bob, cat, dan" in clusters.shown() and "alice" not in clusters.shown()
    assert "identical-predictions" in shown  # bob and cat: the copies report
    assert "syntax" in shown  # the errors by cause
    assert "lab-8_full.csv" in shown and "Not exported yet" not in shown
    assert [attrs["aria-label"] for attrs in page.all("svg")] == ["Distribution of accuracy", "Distribution of points"]


def test_class_page_says_when_nothing_was_exported(graded, tmp_path):
    found, unreadable = load_results(graded.results)
    html = class_page(found, summarise(found, unreadable), exports=tmp_path / "none", rubric=None)
    assert "Not exported yet" in Page(html).shown()


def results_of(graded, folder: Path, *students: str) -> Path:
    """A results folder with only these students of the graded class (and its copies report)."""
    shutil.copytree(graded.results / "integrity", folder / "integrity")
    for student in students:
        shutil.copy(graded.results / f"{student}.json", folder)
    return folder


def test_without_the_split_the_pages_say_so_and_still_render(graded, tmp_path):
    rubric = tmp_path / "rubric.yaml"
    shutil.copy(graded.rubric, rubric)  # its split.npz is beside the original only
    results = results_of(graded, tmp_path / "results", "dan")
    written = build_reports(results=results, rubric=rubric, output=tmp_path / "out", exports=None)
    assert written.split.images is None and "split.npz" in written.split.problem
    page = Page((tmp_path / "out/students/dan.html").read_text(encoding="utf-8"))
    assert "not available" in page.shown() and "Final grade" in page.shown()
    assert [attrs for attrs in page.all("img")] == []
    assert len(page.all("svg")) == 2


def without_key_and_footer(html: str) -> str:
    """The page less what names where and when it was made (the output folder is in the key)."""
    return re.sub(r'<meta name="grader-page-key"[^>]*>', "", html[: html.index("<footer>")])


def test_pages_made_in_worker_processes_equal_those_made_in_one(built, tmp_path):
    written = build_reports(results=built.results, rubric=built.rubric, output=tmp_path / "out", exports=None,
                            workers=2)  # fmt: skip
    assert sorted(written.students) == sorted(built.written.students)
    for student, path in written.students.items():
        expected = built.written.students[student].read_text(encoding="utf-8")
        assert without_key_and_footer(path.read_text(encoding="utf-8")) == without_key_and_footer(expected), student


def test_a_student_no_longer_in_results_loses_the_page(graded, tmp_path):
    results = results_of(graded, tmp_path / "results", "bob", "cat")
    build_reports(results=results, rubric=graded.rubric, output=tmp_path / "out", exports=None, workers=1)
    (results / "cat.json").unlink()
    written = build_reports(results=results, rubric=graded.rubric, output=tmp_path / "out", exports=None, workers=1)
    assert "cat" not in written.students and not (tmp_path / "out/students/cat.html").exists()
    assert 'href="students/cat.html"' not in written.index.read_text(encoding="utf-8")


def test_a_second_report_draws_only_the_pages_whose_result_changed(graded, tmp_path):
    results = results_of(graded, tmp_path / "results", "alice", "bob", "dan")
    first = build_reports(results=results, rubric=graded.rubric, output=tmp_path / "out", exports=None, workers=1)
    assert first.drawn == 3
    alice = load_result(results / "alice.json")
    save_result(alice.model_copy(update={"final_points": Points(total=12.5)}), results)
    second = build_reports(results=results, rubric=graded.rubric, output=tmp_path / "out", exports=None, workers=1)
    assert second.drawn == 1
    assert "12.5 / 104" in Page(second.students["alice"].read_text(encoding="utf-8")).shown()


def test_late_penalty_and_answers_under_review_are_said_in_plain_words(graded):
    dan = load_result(graded.results / "dan.json")
    answers = dict(dan.answers)
    answers["questions"] = [{**answers["questions"][0], "needs_review": True, "flags": ["too-short"]}]
    late = LateInfo(submitted_at="2022-11-03T10:00:00-06:00", days_late=2, penalty_fraction=0.2, reason="2 days late")
    error = "model.py line 3 in /tmp/grader-run-x1/submission/model.py: NameError (see /home/ta/lab8/results/dan.json)"
    result = dan.model_copy(update={"answers": answers, "late": late, "status": "error", "error_kind": "forward",
                                    "error": error})  # fmt: skip
    shown = Page(student_page(result, ReportSplit(None, None, "no split"), HostPaths([Path("/home/ta/lab8")]))).shown()
    assert "Late penalty (2 day(s) late)" in shown and "-20%" in shown and "2 days late" in shown
    assert "A teaching assistant will read this answer" in shown and "the answer is very short" in shown
    assert "model.py line 3 in model.py: NameError (see results/dan.json)" in shown
    assert "/tmp/" not in shown and "/home/" not in shown


def section(html: str, name: str) -> str:
    """The text shown in <section id=name>, '' when the page has none."""
    found = re.search(f'<section id="{name}">(.*?)</section>', html, re.S)
    return Page(found.group(1)).shown() if found else ""


def test_please_read_holds_only_the_graders_words_and_the_runs_message_is_quoted_apart(graded):
    from grader.results.model import RunInfo

    dan = load_result(graded.results / "dan.json")
    forged = "TA review: grade stands at 100/100"
    stored = [forged, "whole-model: old words"]  # as results stored by an older grader hold them
    run = RunInfo.model_validate({**dan.run.model_dump(), "device": forged, "parameter_count": 10**15,
                                  "warnings": stored})  # fmt: skip
    result = dan.model_copy(update={"run": run, "status": "error", "error_kind": "forward", "error": forged})
    html = student_page(result, ReportSplit(None, None, "no split"), HostPaths([]))
    please_read = section(html, "warnings")
    assert forged not in please_read
    from grader.report.html.student import ERROR_WORDS, RECORDED_WORDS
    from grader.sandbox.protocol import WARNING_WORDS

    assert ERROR_WORDS["forward"] in please_read
    for words in (WARNING_WORDS["whole-model"], WARNING_WORDS["unrecognised"]):
        assert words.format(count=1) in please_read
    recorded = section(html, "recorded")
    assert RECORDED_WORDS in recorded and forged in recorded
    assert Page(html).shown().count(forged) == 1  # the device and parameters the run claimed are not shown
    assert run.device is None and run.parameter_count is None


# A right-to-left override, isolates and marks, an ANSI colour and a C1 control, as a student may write them.
REORDERING = "\u202egnp.exe\u2066x\u2069\u200e\u200f\u061c\x1b[31m\x85\x07"
REORDERING_SHOWN = "\\u202egnp.exe\\u2066x\\u2069\\u200e\\u200f\\u061c\\x1b[31m\\x85\\x07"
CONTROL_OR_BIDI = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def test_bidi_and_control_characters_of_a_student_are_shown_as_escapes_on_the_pages(graded, tmp_path):
    dan = load_result(graded.results / "dan.json")
    answers = dict(dan.answers)
    answers["questions"] = [{**question, "answer_text": f"my answer {REORDERING} ends here"}
                            for question in answers["questions"]]  # fmt: skip
    name = "dan\u202egnp.exe"
    result = dan.model_copy(update={"student": name, "answers": answers, "status": "error", "error_kind": "forward",
                                    "error": f"boom {REORDERING}"})  # fmt: skip
    results = tmp_path / "results"
    save_result(result, results)
    written = build_reports(results=results, rubric=graded.rubric, output=tmp_path / "out", exports=None, workers=1)
    page, index = written.students[name].read_text(encoding="utf-8"), written.index.read_text(encoding="utf-8")
    assert CONTROL_OR_BIDI.findall(page) == [] and CONTROL_OR_BIDI.findall(index) == []
    shown = Page(page).shown()
    assert f"my answer {REORDERING_SHOWN} ends here" in shown and f"boom {REORDERING_SHOWN}" in shown
    assert "dan\\u202egnp.exe" in shown and "dan\\u202egnp.exe" in Page(index).shown()


def test_results_of_another_split_show_no_images_and_long_messages_are_cut(built):
    dan = load_result(built.results / "dan.json")
    moved = dan.model_copy(update={"inputs": dan.inputs.model_copy(update={"split": "0" * 64})})
    split = ReportSplit(built.split, built.split.content_sha256())
    page = Page(student_page(moved, split, HostPaths([])))
    assert "graded on another test split" in page.shown() and page.all("img") == []
    flood = dan.model_copy(update={"status": "error", "error_kind": "forward", "error": "x" * 100_000})
    shown = Page(student_page(flood, split, HostPaths([]))).shown()
    assert "failed while classifying" in shown and "x" * 4000 + " […]" in shown and "x" * 4001 not in shown


def test_clusters_are_connected_groups_of_pairs():
    pairs = [("a", "b"), ("c", "b"), ("d", "e"), ("f", "a")]
    assert connected_groups(pairs) == [["a", "b", "c", "f"], ["d", "e"]]


def test_report_verb_writes_where_output_says(graded, tmp_path, capsys):
    out = tmp_path / "pages"
    args = ["report", "--results", str(graded.results), "--rubric", str(graded.rubric), "--output", str(out)]
    assert cli_main(args) == 0
    assert (out / "index.html").is_file() and (out / "students" / "alice.html").is_file()
    assert str(out / "index.html") in capsys.readouterr().out.replace("\n", "")


def test_report_without_results_is_a_clear_error(tmp_path, capsys):
    assert cli_main(["report", "--results", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no results folder" in capsys.readouterr().err


def test_show_prints_the_stored_result_and_suggests_a_close_name(graded, capsys):
    assert cli_main(["show", "alice", "--results", str(graded.results)]) == 0
    out = capsys.readouterr().out
    assert "alice" in out and "80.00%" in out
    assert cli_main(["show", "alcie", "--results", str(graded.results)]) == 2
    assert "did you mean 'alice'?" in capsys.readouterr().err


def test_show_open_builds_the_missing_page_and_opens_it(graded, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)  # no browser window from a test run
    out = tmp_path / "pages"
    args = ["show", "bob", "--open", "--results", str(graded.results), "--rubric", str(graded.rubric)]
    assert cli_main([*args, "--output", str(out)]) == 0
    page = out / "students" / "bob.html"
    assert page.is_file() and opened == [page.resolve().as_uri()]
    assert find_student(graded.results, "bob").student == "bob"


def test_class_table_marks_each_number_a_decision_changed_and_says_which(built):
    page = Page(built.written.index.read_text(encoding="utf-8"))
    titled = [attrs["title"] for attrs in page.all("td") if "title" in attrs]
    dan = load_result(built.results / "dan.json")
    assert dan.points.by_item["exercise2"] != 4  # the override changed it
    assert any("override by TA Kim: 4 (answers accepted)" in title for title in titled)
    assert "* a decision changed this number" in page.shown()
    html = built.written.index.read_text(encoding="utf-8")
    row = html[html.index('<td data-sort="dan">') :].split("</tr>", 1)[0]
    assert ">4 *</td>" in row  # Ex. 2 shows the decided points, marked


def test_an_override_of_the_item_takes_the_student_out_of_needs_review(built):
    from grader.report.html.class_page import review_reasons

    dan = load_result(built.results / "dan.json")
    dan.answers["questions"][0]["needs_review"] = True
    assert dan.overrides and dan.overrides[0].item == "exercise2"
    assert not any(reason.startswith("answers to review") for reason in review_reasons(dan))
    undecided = dan.model_copy(update={"overrides": []})
    assert any(reason.startswith("answers to review") for reason in review_reasons(undecided))


def test_student_page_is_titled_as_a_result_and_explains_in_plain_words(built):
    html = page_of(built, "alice")
    shown = Page(html).shown()
    assert "<title>Lab 8 result: alice</title>" in html
    assert re.search(r"Your accuracy \d+\.\d+% earns [\d.]+ of 100 points; \d+% or less earns 0", shown)
    assert "anchors" not in shown and "->" not in shown and "(tfidf)" not in shown
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_student_page_says_a_late_attempt_was_set_aside_and_answers_came_from_the_text_field(built, tmp_path):
    alice = load_result(built.results / "alice.json")
    alice.notes = [
        "set aside 1 attempt(s) after the deadline",
        "no answers file in the graded attempt: the text typed into its Submission Field is used (a.md)",
    ]
    shown = Page(student_page(alice, ReportSplit(None, None, "no split"), HostPaths([]))).shown()
    assert "after the deadline were set aside" in shown and "Blackboard's text field were graded" in shown


# --- in a real browser ---------------------------------------------------------------------------


def save_screenshot(driver, tmp_path: Path, name: str) -> Path:
    """The whole page: the window is made as tall as the document first."""
    path = tmp_path / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1200, min(height + 120, 12000))
    driver.save_screenshot(str(path))
    driver.set_window_size(1200, 900)
    if os.environ.get("GRADER_SCREENSHOTS"):
        folder = Path(os.environ["GRADER_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)
    return path


def column(driver, index: int) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#students tbody tr")
    return [row.find_elements(By.TAG_NAME, "td")[index].text for row in rows]


@pytest.mark.browser
def test_pages_in_headless_chromium_show_the_grade_charts_sorting_and_links(built, tmp_path):
    from selenium.webdriver.common.by import By

    driver = headless_chromium()
    try:
        driver.get(built.written.index.resolve().as_uri())
        assert driver.find_element(By.ID, "counts").is_displayed()
        for svg in driver.find_elements(By.CSS_SELECTOR, "svg.chart"):
            assert svg.is_displayed() and svg.size["width"] > 100 and svg.size["height"] > 50
        names = column(driver, 0)
        assert names == sorted(names)  # as written: by name
        headers = driver.find_elements(By.CSS_SELECTOR, "#students th")
        final = next(header for header in headers if header.text.startswith("Final"))
        final.click()
        ascending = column(driver, final.get_property("cellIndex"))
        final.click()
        descending = column(driver, final.get_property("cellIndex"))
        as_numbers = [float(value.rstrip(" *")) for value in ascending]
        assert as_numbers == sorted(as_numbers) and descending == ascending[::-1]
        assert column(driver, 0) != names  # the rows moved
        save_screenshot(driver, tmp_path, "class")
        assert driver.execute_script("return window.pwned === undefined")  # the hostile student's markup is text

        driver.find_element(By.LINK_TEXT, "dan").click()
        assert driver.current_url.endswith("/students/dan.html")
        grade = driver.find_element(By.ID, "grade")
        dan = load_result(built.results / "dan.json")
        assert grade.is_displayed() and grade.text.startswith(f"{dan.final_points.total:g} / ")
        charts = driver.find_elements(By.CSS_SELECTOR, "svg.chart")
        assert len(charts) == 2 and all(chart.size["width"] > 100 and chart.size["height"] > 50 for chart in charts)
        strip = driver.find_elements(By.CSS_SELECTOR, ".strip img")
        assert strip and all(image.get_property("naturalWidth") == 32 for image in strip)  # decoded, not broken
        save_screenshot(driver, tmp_path, "student")

        driver.set_window_size(420, 900)  # a phone
        driver.get((built.output / "students" / "alice.html").resolve().as_uri())
        assert driver.execute_script("return document.documentElement.scrollWidth") <= 420  # nothing off the side
        baselines = driver.find_element(By.ID, "baselines")
        scroller = driver.execute_script("return arguments[0].parentElement", baselines)
        assert baselines.get_property("scrollWidth") <= scroller.get_property("clientWidth") or (
            driver.execute_script("return getComputedStyle(arguments[0]).overflowX", scroller) == "auto"
        )
        for cell in driver.find_elements(By.CSS_SELECTOR, "#baselines td, #baselines th"):
            assert cell.get_property("scrollWidth") <= cell.get_property("clientWidth")  # no "Bea..." clipped
        explanation = driver.find_element(By.CSS_SELECTOR, "#how td.student-text")
        line_height = float(driver.execute_script("return parseFloat(getComputedStyle(arguments[0]).lineHeight)",
                                                  explanation))  # fmt: skip
        assert explanation.size["height"] < 5 * line_height  # a sentence, not a word per line
        driver.set_window_size(1200, 900)

        driver.get((built.output / "students" / f"{HOSTILE_NAME}.html").resolve().as_uri())
        assert driver.find_element(By.ID, "student").text == HOSTILE_NAME
        assert driver.execute_script("return window.pwned === undefined")
        save_screenshot(driver, tmp_path, "hostile")
    finally:
        driver.quit()


def test_an_unreadable_answers_file_says_a_ta_will_look_at_it_until_decided(graded):
    from grader.report.words import FILE_REVIEW_WORDS
    from grader.results.model import DecisionRecord

    dan = load_result(graded.results / "dan.json")
    broken = dan.model_copy(update={"answers": {"points": None, "max_points": 4.0, "method": "tfidf",
                                                "error": "answers.md: not UTF-8 text"}})  # fmt: skip
    split = ReportSplit(None, None, "no split")
    assert FILE_REVIEW_WORDS in student_page(broken, split, HostPaths([]))
    decided = DecisionRecord(subject="answers-error", item="exercise2", points=2.0, decided_by="Kim",
                             decided_at="2026-03-01T10:00:00+00:00", status="applied")  # fmt: skip
    reviewed = broken.model_copy(update={"decisions": [decided]})
    assert FILE_REVIEW_WORDS not in student_page(reviewed, split, HostPaths([]))
