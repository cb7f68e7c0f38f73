"""The grader's reasons in a student's words, for their page and their exported feedback.

A result's reasons are written for the TA ("accuracy 77.71% on the anchors 10.00%->0, 85.00%->100", "(minilm)",
"closeness to the model answer 0.87"); a student reads what earned the points instead, without method names or
similarity figures. The import's notes (results' `notes`, from the student's manifest.json) become the decisions
the student should know about: a later attempt set aside, answers taken from Blackboard's text field.
Every parser here splits the grader's own fixed phrasing; none backtracks.
"""

from __future__ import annotations

SET_ASIDE = "set aside "  # grader/intake/blackboard/dates.py choose_attempt
ALL_LATE = "every attempt is after the deadline"
TEXT_FIELD = "the text typed into its Submission Field is used"  # grader/intake/blackboard/bulk.py
EARLIER_FILE = " comes from the earlier attempt "
ANCHORS = " on the anchors "
SIMILARITY_PART = "closeness to the model answer"
# Under an answer that waits for a TA (its needs_review, no decision yet), on the page and in the feedback alike.
REVIEW_WORDS = "A teaching assistant will read this answer and may change its points."
# An answers file the grader could not read, while no TA has decided on it (the review's "answers-error").
FILE_REVIEW_WORDS = "A teaching assistant will look into this and may still give your written answers points."
# An undecided answer whose points the TA's grades of similar answers moved (the review's rescore).
RESCORED_WORDS = "Regraded after a teaching assistant graded similar answers"


def _percent(text: str) -> str:
    """'10.00%' -> '10%', '77.71%' stays."""
    number = text.strip().rstrip("%")
    return (number.rstrip("0").rstrip(".") if "." in number else number) + "%"


def _exercise1_words(reason: str, points: str, maximum: str) -> str | None:
    """'accuracy 77.71% on the anchors 10.00%->0, 85.00%->100' -> 'Your accuracy 77.71% earns 93.1 of 100 points;
    10% or less earns 0, 85% or more earns 100'; None if the reason is not in that form."""
    head, found, table = reason.partition(ANCHORS)
    if not found or not head.startswith("accuracy "):
        return None
    anchors = [entry.strip().partition("->") for entry in table.split(",")]
    if not anchors or any(not arrow for _, arrow, _ in anchors):
        return None
    steps = []
    for index, (accuracy, _, earned) in enumerate(anchors):
        bound = " or less" if index == 0 else " or more" if index == len(anchors) - 1 else ""
        steps.append(f"{_percent(accuracy)}{bound} earns {earned.strip()}")
    return f"Your accuracy {head.removeprefix('accuracy ').strip()} earns {points} of {maximum} points; " + ", ".join(
        steps
    )


def _without_method(reason: str) -> str:
    """'4 of 4 answers earned points (minilm); needs review' -> '4 of 4 answers earned points; needs review'."""
    parts = []
    for part in reason.split("; "):
        head, found, method = part.rpartition(" (")
        is_method = found and method.endswith(")") and method[:-1].replace("-", "").replace("_", "").isalnum()
        parts.append(head if is_method else part)
    return "; ".join(parts)


def item_words(item: str, reason: str, points: str, maximum: str) -> str:
    """An item's reason for the student: Exercise 1 as what the accuracy earns, no scoring method's name."""
    if item == "exercise1":
        plain = _exercise1_words(reason, points, maximum)
        if plain is not None:
            return plain
    return _without_method(reason)


def question_words(reason: str) -> str:
    """A question's reason without the similarity figure: '1/1; 4 of 6 key ideas; closeness ... 0.87; missing: x'
    -> '1/1; 4 of 6 key ideas; missing: x'."""
    parts = [part.strip() for part in reason.split(";")]
    kept = [part for part in parts if part and not part.startswith(SIMILARITY_PART)]
    text = "; ".join(kept)
    return text if not reason.rstrip().endswith(".") or text.endswith(".") else text + "."


def import_words(notes: list[str]) -> list[str]:
    """The import's decisions that change what was graded, each in a sentence for the student."""
    said = []
    for note in notes:
        if note.startswith(SET_ASIDE):
            said.append(
                "Your attempt(s) after the deadline were set aside, as the late policy says: your last attempt "
                "before the deadline was graded."
            )
        elif note.startswith(ALL_LATE):
            said.append("Every attempt was after the deadline: your newest attempt was graded.")
        elif TEXT_FIELD in note:
            said.append("You uploaded no answers file: the answers you typed into Blackboard's text field were graded.")
        elif EARLIER_FILE in note:
            role = note.split(" ", 1)[0]
            attempt = note.partition(EARLIER_FILE)[2].partition(":")[0]
            said.append(
                f"Your latest attempt had no {role} file: the one from your earlier attempt {attempt} was used."
            )
    return list(dict.fromkeys(said))


def import_marks(notes: list[str]) -> dict[str, str]:
    """For the TA's table: which number an import decision changed ('final' or 'exercise2') and how."""
    marks = {}
    for note in notes:
        if note.startswith(SET_ASIDE) or note.startswith(ALL_LATE):
            marks["final"] = note
        elif TEXT_FIELD in note:
            marks["exercise2"] = "answers from Blackboard's text field"
    return marks
