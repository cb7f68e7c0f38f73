"""The checker's word lists, read once from language.yaml and validated.

text.py, claims.py and concepts.py hold the logic; what they know of English (stop words, negation
cues, verbs that make a statement, amount words, ...) is data in language.yaml, so a change to it is a
reviewable diff that `make bench-answers` measures. A file that lacks a list, or lists a word twice or
in capitals, is refused with its path and the list's key.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from ..errors import GraderError
from ..strict_yaml import load_unique_keys

LANGUAGE_FILE = Path(__file__).with_name("language.yaml")


class LanguageDataError(GraderError):
    """The language file is missing, not YAML, or a list in it is malformed."""


_SHAPES = {1: "one lower-case word", 2: "two lower-case words with one space between"}


def _words(value: Any, *, words_per_entry: int = 1) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of words")
    seen: set[str] = set()
    for word in value:
        if not isinstance(word, str):
            raise ValueError(f"{word!r} is not a word (quote yes, no, on and off: YAML reads them as true/false)")
        if word != word.lower() or len(word.split()) != words_per_entry or word != " ".join(word.split()):
            raise ValueError(f"{word!r} is not {_SHAPES[words_per_entry]}")
        if word in seen:
            raise ValueError(f"{word!r} is listed twice")
        seen.add(word)
    return value


def _word_pairs(value: Any) -> list[tuple[str, ...]]:
    return [tuple(pair.split()) for pair in _words(value, words_per_entry=2)]


def _word_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise ValueError("expected a non-empty mapping of word -> word")
    _words(list(value))
    _words(list(dict.fromkeys(value.values())))
    return value


Words = Annotated[frozenset[str], BeforeValidator(_words)]
WordPairs = Annotated[frozenset[tuple[str, str]], BeforeValidator(_word_pairs)]
WordMap = Annotated[dict[str, str], BeforeValidator(_word_map)]


class LanguageData(BaseModel):
    """Every list language.yaml must have; what each is for is said beside it in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # text.py
    stopwords: Words
    irregular: WordMap
    negation_cues: Words
    not_negating_next: Words
    scope_breakers: Words
    clause_starters: Words
    clause_joiners: Words
    clause_after_comma: Words
    auxiliaries: Words
    reversing_words: Words
    affirming_words: Words
    stance_clause_breaks: Words
    # claims.py
    predicate_words: Words
    claim_auxiliaries: Words
    subject_words: Words
    clause_breaks: Words
    other_model_words: Words
    other_model_pairs: WordPairs
    yes_words: Words
    no_words: Words
    no_phrases: WordPairs
    foreign_function_words: dict[str, Words]
    # concepts.py
    articles: Words


def load_language(path: Path) -> LanguageData:
    """The validated word lists of one language file; LanguageDataError names the file and the list."""
    try:
        raw = load_unique_keys(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise LanguageDataError(f"{path}: cannot read the checker's language file: {error}") from error
    except yaml.YAMLError as error:
        raise LanguageDataError(f"{path}: not valid YAML: {error}") from error
    try:
        return LanguageData.model_validate(raw)
    except ValidationError as error:
        problems = []
        for problem in error.errors():
            key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
            message = "unknown list" if problem["type"] == "extra_forbidden" else problem["msg"]
            problems.append(f"{key}: {message.removeprefix('Value error, ')}")
        raise LanguageDataError(f"{path}: " + "; ".join(problems)) from None


@cache
def language() -> LanguageData:
    """The packaged language file, read once per process."""
    return load_language(LANGUAGE_FILE)
