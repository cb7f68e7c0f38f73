"""Pydantic models of an Exercise 2 result, one per student."""

from __future__ import annotations

from pydantic import BaseModel, Field, computed_field

ANSWER_TEXT_LIMIT = 2000


class QuestionResult(BaseModel):
    number: int
    points: float
    max_points: float
    concepts_found: list[str] = Field(default_factory=list)
    concepts_missing: list[str] = Field(default_factory=list)
    misconceptions_found: list[str] = Field(default_factory=list)
    concept_coverage: float | None = Field(None, description="Share of the concept weight found (None: no concepts).")
    similarity: float = Field(0.0, description="Cosine similarity to the reference answer, by the method used.")
    semantic_score: float = Field(0.0, description="Calibrated closeness to the reference, 0 to 1.")
    flags: list[str] = Field(default_factory=list)
    p_off: float | None = Field(
        None,
        description="Calibrated chance that `points` are off from a TA's grade by 0.5 or more, before any TA decision "
        "(grader/answers/confidence.py, the calibration of the method that graded); None: not judged.",
    )
    needs_review: bool = Field(
        False, description="A TA should read this answer: p_off is at least NEEDS_REVIEW_P_OFF, or it was not scored."
    )
    reason: str = ""
    answer_text: str = ""
    prompt_sha256: str | None = Field(
        None,
        description="The question's text as graded (QuestionRubric.prompt_sha256); None: graded before it was kept.",
    )


class AnswersResult(BaseModel):
    points: float | None = Field(description="None only when the answers file is missing or unreadable.")
    max_points: float
    method: str = Field(description="Similarity method that scored: 'minilm' or 'tfidf'.")
    questions: list[QuestionResult] = Field(default_factory=list)
    error: str | None = None
    file: str | None = Field(None, description="Name of the answers file graded.")
    split_by: str | None = Field(None, description="How answers were told apart: markers, questions, order, ...")
    warnings: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def needs_review(self) -> bool:
        return self.error is not None or any(q.needs_review for q in self.questions)


class DuplicatePair(BaseModel):
    student_a: str
    student_b: str
    question: int
    similarity: float
