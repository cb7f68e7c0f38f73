"""The lab's graded Exercise 2 answer set (tests/data/exercise2_lab/) stays complete, well formed and readable.

These tests check the fixture, not the answer checker: the checker's agreement with the human grades is
measured by `make bench-answers`.
"""

from __future__ import annotations

import importlib.util
import shutil
import zipfile
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import pytest

from benchmarks.lab_set import QUESTIONS, LabSetError, load_lab_set
from grader.answers.parse import read_answers_file
from grader.answers.rubric import ParseLimits

LAB_SET = Path(__file__).parent / "data" / "exercise2_lab"
# Written blind to the checker after it was built: DEV may tune it, ROUND2 only measures it.
DEV = LAB_SET.with_name("exercise2_lab_dev")
ROUND2 = LAB_SET.with_name("exercise2_lab_round2")
HAS_READERS = importlib.util.find_spec("docx") is not None and importlib.util.find_spec("pypdf") is not None
needs_readers = pytest.mark.skipif(not HAS_READERS, reason="python-docx and pypdf are needed to read .docx/.pdf")

MIN_FILES = 60
MIN_PER_KIND = {
    "good": 5,
    "partial": 5,
    "paraphrase": 5,
    "keywords": 4,
    "negated": 4,
    "off-topic": 4,
    "copied": 3,
    "other-language": 2,
    "odd-numbering": 5,
    "mixed": 3,
}
MIN_PER_FORMAT = {".docx": 4, ".pdf": 4}


def _load_make_documents():
    spec = importlib.util.spec_from_file_location("make_documents", LAB_SET / "make_documents.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_documents = _load_make_documents()


@pytest.fixture(scope="module")
def lab_set():
    return load_lab_set(LAB_SET)


@pytest.fixture(scope="module")
def read_back(lab_set):
    """Each .docx/.pdf read once through the grader's own reader (a subprocess each, so not per test)."""
    return {a.file: read_answers_file(a.path, ParseLimits()) for a in _documents(lab_set)}


def _documents(lab_set):
    return [a for a in lab_set if a.path.suffix in MIN_PER_FORMAT]


def _has_word_list(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return "word/numbering.xml" in archive.namelist()


def _words(text: str) -> str:
    return " ".join(text.split())


def _copy_of_the_set(tmp_path: Path) -> Path:
    folder = tmp_path / "exercise2_lab"
    shutil.copytree(LAB_SET, folder)
    return folder


def test_the_set_has_enough_files_of_every_kind_and_format(lab_set):
    kinds = Counter(a.kind for a in lab_set)
    formats = Counter(a.path.suffix for a in lab_set)
    assert len(lab_set) >= MIN_FILES
    short = {kind: kinds[kind] for kind, least in MIN_PER_KIND.items() if kinds[kind] < least}
    assert not short, f"kinds below their minimum count: {short}"
    assert all(formats[suffix] >= least for suffix, least in MIN_PER_FORMAT.items()), formats


def test_every_question_has_points_in_quarter_steps_and_a_reason(lab_set):
    for answer in lab_set:
        assert sorted(answer.points) == list(QUESTIONS) == sorted(answer.why), answer.file
        assert all(value in (0, 0.25, 0.5, 0.75, 1) for value in answer.points.values()), answer.file


@pytest.mark.parametrize("folder", [DEV, ROUND2], ids=["dev", "round2"])
def test_the_later_sets_are_complete_with_points_in_quarter_steps(folder):
    answers = load_lab_set(folder)
    kinds = Counter(a.kind for a in answers)
    assert len(answers) >= 30 and min(kinds[k] for k in ("negated", "off-topic", "paraphrase", "partial")) >= 5
    for answer in answers:
        assert all(value in (0, 0.25, 0.5, 0.75, 1) for value in answer.points.values()), answer.file


@pytest.mark.parametrize("folder", [LAB_SET, DEV, ROUND2], ids=["first", "dev", "round2"])
def test_kinds_stay_within_their_points(folder):
    """The kinds' definitions, as the README states them: a file that breaks one is mislabelled."""
    for answer in load_lab_set(folder):
        values = answer.points.values()
        if answer.kind in ("keywords", "negated", "copied"):
            assert max(values) <= 0.25, answer.file
        elif answer.kind == "off-topic":
            assert max(values) == 0, answer.file
        elif answer.kind == "paraphrase":
            assert min(values) >= 0.75, answer.file
        elif answer.kind == "mixed":
            assert max(values) >= 0.75 and min(values) <= 0.25, answer.file


def test_every_answers_file_in_the_folder_is_graded(tmp_path):
    folder = _copy_of_the_set(tmp_path)
    (folder / "late_01.md").write_text("1. Yes.\n", encoding="utf-8")
    with pytest.raises(LabSetError, match="without grades: late_01.md"):
        load_lab_set(folder)


def test_a_graded_file_that_is_missing_is_named(tmp_path):
    folder = _copy_of_the_set(tmp_path)
    (folder / "good_01.md").unlink()
    with pytest.raises(LabSetError, match="not found .*good_01.md"):
        load_lab_set(folder)


@pytest.mark.parametrize(
    ("line", "broken", "message"),
    [
        ("points: {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}", "points: {1: 1.0, 2: 0.7, 3: 1.0, 4: 1.0}", "steps of 0.25"),
        ("points: {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}", "points: {1: 1.0, 2: 1.0, 3: 1.0}", "points must be given"),
        ("kind: good", 'kind: "<b>clever</b>"', "kind"),
    ],
)
def test_a_malformed_entry_is_refused_naming_the_file(tmp_path, line, broken, message):
    folder = _copy_of_the_set(tmp_path)
    manifest = folder / "graded.yaml"
    text = manifest.read_text(encoding="utf-8")
    first_entry_end = text.index("- file:", text.index("- file: good_01.md") + 1)
    assert text.index(line) < first_entry_end  # the change lands in good_01.md's entry
    manifest.write_text(text.replace(line, broken, 1), encoding="utf-8")
    with pytest.raises(LabSetError, match=f"graded.yaml: good_01.md: .*{message}"):
        load_lab_set(folder)


@needs_readers
def test_every_document_reads_back_as_its_source_text(lab_set, read_back):
    documents = _documents(lab_set)
    assert documents
    for answer in documents:
        source = LAB_SET / "sources" / f"{answer.file}.txt"
        parsed = read_back[answer.file]
        expected = make_documents.expected_text(source.read_text(encoding="utf-8"), answer.path.suffix)
        assert len(parsed.text) > 300 and not parsed.warnings, answer.file
        assert _words(parsed.text) == _words(expected), answer.file


@needs_readers
def test_word_auto_numbered_lists_come_back_numbered(lab_set, read_back):
    numbered = [a for a in lab_set if a.path.suffix == ".docx" and _has_word_list(a.path)]
    assert len(numbered) >= 3
    for answer in numbered:
        lines = read_back[answer.file].text.splitlines()
        assert [line[:3] for line in lines if line[:1].isdigit()] == ["1. ", "2. ", "3. ", "4. "], answer.file


@needs_readers
def test_pdfs_are_valid_and_some_span_two_pages_read_in_order(lab_set, read_back):
    from pypdf import PdfReader

    pdfs = [a for a in lab_set if a.path.suffix == ".pdf"]
    long_ones = []
    for answer in pdfs:
        reader = PdfReader(answer.path, strict=True)
        if len(reader.pages) >= 2:
            long_ones.append(answer)
            last_page_words = reader.pages[-1].extract_text().split()[-6:]
            text = read_back[answer.file].text
            assert _words(text).endswith(" ".join(last_page_words)), answer.file
            first_page_words = reader.pages[0].extract_text().split()[:6]
            assert _words(text).startswith(" ".join(first_page_words)), answer.file
    assert len(long_ones) >= 2


def test_documents_are_well_formed_office_zips(lab_set):
    for answer in (a for a in lab_set if a.path.suffix == ".docx"):
        with zipfile.ZipFile(answer.path) as archive:
            assert archive.testzip() is None
            for name in archive.namelist():
                ElementTree.fromstring(archive.read(name))  # raises on malformed XML
            assert {"[Content_Types].xml", "_rels/.rels", "word/document.xml"} <= set(archive.namelist())


def test_rebuilding_the_documents_gives_the_committed_bytes(tmp_path):
    built = make_documents.build_all(tmp_path)
    sources = sorted(p.name.removesuffix(".txt") for p in (LAB_SET / "sources").glob("*.txt"))
    assert sorted(p.name for p in built) == sources
    for path in built:
        assert path.read_bytes() == (LAB_SET / path.name).read_bytes(), f"{path.name}: run make_documents.py"


def test_every_source_has_its_document_in_the_set(lab_set):
    listed = {a.file for a in lab_set}
    sources = {p.name.removesuffix(".txt") for p in (LAB_SET / "sources").glob("*.txt")}
    assert sources <= listed
    assert {a.file for a in _documents(lab_set)} == sources


def test_a_pdf_source_outside_ascii_is_refused(tmp_path):
    with pytest.raises(ValueError, match="must be ASCII"):
        make_documents.write_pdf("1. Ja, über einen Autoencoder.\n", tmp_path / "x.pdf")
