"""Pydantic models of the rubric's `exercise2:` section (the four written questions)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_RUBRIC_FILE = Path(__file__).with_name("answers_rubric_snippet.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Concept(_Strict):
    """One idea a good answer states; any of its phrasings counts."""

    name: str = Field(description="Short label shown to the TA, e.g. 'autoencoder'.")
    phrasings: list[str] = Field(
        min_length=1,
        description="Alternative wordings. Matched on lemmas, any word order, within one sentence. "
        "A phrasing with a negation ('not interpretable') only matches a negated statement, and vice versa.",
    )
    weight: float = Field(1.0, gt=0, description="Share of the concept score (or, for misconceptions, the deduction).")
    description: str | None = Field(
        None,
        description="The idea in one plain sentence, matched by meaning against the answer's claims "
        "(default: the name). The phrasings are hints; a paraphrase that states this idea also counts.",
    )


class PartialCreditRule(_Strict):
    """Caps the question's points when an essential concept is missing."""

    when_missing: list[str] = Field(min_length=1, description="Concept names; the cap applies if all are missing.")
    cap: float = Field(ge=0, le=1, description="Highest fraction of the question's points then.")
    note: str = Field("", description="Why, shown in the reason.")


class QuestionRubric(_Strict):
    number: int = Field(ge=1, description="Question number as printed in the lab text.")
    prompt: str = Field(description="The question text (used to find and strip repeated questions).")
    points: float = Field(1.0, gt=0)
    reference: str = Field(description="A model answer a careful TA would give full marks.")
    concepts: list[Concept] = Field(default_factory=list)
    full_credit_weight: float | None = Field(
        None, gt=0, description="Concept weight that earns full concept credit (default: all concepts)."
    )
    misconceptions: list[Concept] = Field(
        default_factory=list, description="Wrong claims; each found deducts its weight as a fraction of the points."
    )
    partial_credit: list[PartialCreditRule] = Field(default_factory=list)

    @property
    def prompt_sha256(self) -> str:
        """The question as asked, spacing aside: what a TA's decisions on its answers were about."""
        return hashlib.sha256(" ".join(self.prompt.split()).encode()).hexdigest()

    @model_validator(mode="after")
    def _names_are_known(self) -> QuestionRubric:
        names = [c.name for c in self.concepts]
        if len(set(names)) != len(names):
            raise ValueError(f"question {self.number}: concept names must be unique")
        for rule in self.partial_credit:
            unknown = [n for n in rule.when_missing if n not in names]
            if unknown:
                raise ValueError(f"question {self.number}: partial_credit names unknown concepts {unknown}")
        return self

    @property
    def concept_weight(self) -> float:
        total = sum(c.weight for c in self.concepts)
        return min(total, self.full_credit_weight) if self.full_credit_weight else total


class ScoringSettings(_Strict):
    concept_weight: float = Field(0.6, ge=0, le=1, description="Share of concept coverage in a question's score.")
    similarity_weight: float = Field(0.4, ge=0, le=1, description="Share of semantic similarity to the reference.")
    evidence_gate: float = Field(
        0.5,  # chosen on the lab's tuning answers (docs/EXERCISE2.md, "Measuring it")
        ge=0,
        le=1,
        description="Closeness to the reference counts in full only once this share of the key ideas is stated, "
        "and proportionally less below it: an answer that states no key idea scores 0 however on-topic it sounds.",
    )
    points_step: float = Field(0.25, gt=0, description="Points are rounded to this step.")
    min_words: int = Field(8, ge=0, description="Answers shorter than this are flagged 'too-short'.")
    review_disagreement: float = Field(
        0.45, ge=0, le=1, description="Needs review when concept coverage and similarity differ by this much."
    )
    copy_threshold: float = Field(0.6, gt=0, le=1, description="Share of 6-word runs found in the lab text to flag.")
    duplicate_threshold: float = Field(0.6, gt=0, le=1, description="Class report: shared 3-word runs to flag.")


class ParseLimits(_Strict):
    max_bytes: int = Field(20_000_000, gt=0, description="Larger answer files are refused.")
    max_pages: int = Field(40, gt=0, description="PDF pages read; the rest are ignored with a warning.")
    max_chars: int = Field(200_000, gt=0, description="Extracted text is cut here.")
    timeout_s: float = Field(20.0, gt=0, description="Wall-clock limit for extracting a .docx or .pdf.")
    memory_mb: int = Field(1024, gt=0, description="Address-space limit of the extraction process.")
    scoring_timeout_s: float = Field(
        120.0,
        gt=0,
        description="Wall-clock limit for reading and scoring one student's answers: the worker process doing it "
        "is killed then, and Exercise 2 is 0 with 'scoring stopped after ... s', for review.",
    )


class Exercise2Rubric(_Strict):
    """The `exercise2:` section of rubric.yaml."""

    questions: list[QuestionRubric] = Field(min_length=1)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    limits: ParseLimits = Field(default_factory=ParseLimits)
    lab_text: Path | None = Field(None, description="The lab handout as text, to flag answers copied from it.")

    @model_validator(mode="after")
    def _numbers_are_unique(self) -> Exercise2Rubric:
        numbers = [q.number for q in self.questions]
        if len(set(numbers)) != len(numbers):
            raise ValueError("question numbers must be unique")
        return self

    @property
    def max_points(self) -> float:
        return sum(q.points for q in self.questions)

    @classmethod
    def from_mapping(cls, data: Any, *, where: str = "exercise2") -> Exercise2Rubric:
        """Validate a parsed `exercise2:` mapping; errors name the offending key."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ValueError(_describe(exc, where)) from None

    @classmethod
    def from_yaml(cls, path: Path) -> Exercise2Rubric:
        """Read a rubric file that holds an `exercise2:` section (or only that section's body)."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if isinstance(data, dict) and "exercise2" in data:
            data = data["exercise2"]
        return cls.from_mapping(data, where=f"{Path(path).name}: exercise2")

    @classmethod
    def default(cls) -> Exercise2Rubric:
        return cls.from_yaml(DEFAULT_RUBRIC_FILE)


def _describe(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors():
        key = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{key}: {message}")
    return "invalid rubric: " + "; ".join(lines)
