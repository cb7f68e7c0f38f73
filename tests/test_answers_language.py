"""The Exercise 2 checker's word lists (grader/answers/language.yaml): packaged, complete, refused when malformed."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
import yaml

from grader.answers import claims, concepts, text
from grader.answers.language import LANGUAGE_FILE, LanguageData, LanguageDataError, language, load_language

REPO = Path(__file__).resolve().parents[1]
USERS = (text, claims, concepts)


def _packaged_lists() -> dict:
    return yaml.safe_load(LANGUAGE_FILE.read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "language.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_packaged_language_file_loads_with_every_list_non_empty():
    words = load_language(LANGUAGE_FILE)
    for key in LanguageData.model_fields:
        assert getattr(words, key), key
    assert all(words.foreign_function_words.values())
    assert words == language()
    assert language() is language()  # read once per process


def test_checker_modules_use_the_packaged_lists():
    words = language()
    assert text.STOPWORDS is words.stopwords
    assert text.NEGATION_CUES is words.negation_cues
    assert claims._OTHER_MODEL_PAIRS is words.other_model_pairs
    assert concepts._ARTICLES is words.articles
    assert text.lemma("was") == "be"  # from the `irregular` mapping, not a suffix rule


def test_every_list_in_the_file_is_read_by_the_checker():
    sources = "".join(Path(module.__file__).read_text(encoding="utf-8") for module in USERS)
    unused = [key for key in LanguageData.model_fields if f".{key}" not in sources]
    assert unused == []


def test_language_file_is_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    globs = setuptools["package-data"]["grader.answers"]
    assert any(fnmatch.fnmatch(LANGUAGE_FILE.name, glob) for glob in globs)


def test_missing_list_is_refused_naming_file_and_key(tmp_path):
    data = _packaged_lists()
    del data["negation_cues"]
    path = _write(tmp_path, data)
    with pytest.raises(LanguageDataError) as error:
        load_language(path)
    assert str(path) in str(error.value)
    assert "negation_cues: Field required" in str(error.value)


def test_word_listed_twice_is_refused_naming_file_and_key(tmp_path):
    data = _packaged_lists()
    data["stopwords"].append("not")
    path = _write(tmp_path, data)
    with pytest.raises(LanguageDataError) as error:
        load_language(path)
    assert str(path) in str(error.value)
    assert "stopwords: 'not' is listed twice" in str(error.value)


def test_word_listed_twice_in_one_language_is_refused(tmp_path):
    data = _packaged_lists()
    data["foreign_function_words"]["french"].append("est")
    with pytest.raises(LanguageDataError, match=r"foreign_function_words\.french: 'est' is listed twice"):
        load_language(_write(tmp_path, data))


def test_key_given_twice_is_refused_naming_file_and_key(tmp_path):
    path = tmp_path / "language.yaml"
    path.write_text(LANGUAGE_FILE.read_text(encoding="utf-8") + "\nscope_breakers: [but]\n", encoding="utf-8")
    with pytest.raises(LanguageDataError) as error:
        load_language(path)
    assert str(path) in str(error.value)
    assert "duplicate key 'scope_breakers'" in str(error.value)


def test_irregular_form_given_twice_is_refused(tmp_path):
    path = tmp_path / "language.yaml"
    packaged = LANGUAGE_FILE.read_text(encoding="utf-8")
    path.write_text(packaged.replace("ca: can,", "ca: can, was: were,"), encoding="utf-8")
    with pytest.raises(LanguageDataError, match="duplicate key 'was'"):
        load_language(path)


@pytest.mark.parametrize(
    ("key", "entry", "message"),
    [
        ("yes_words", "Yeah", "yes_words: 'Yeah' is not one lower-case word"),
        ("no_words", False, "no_words: False is not a word (quote yes, no"),
        ("other_model_pairs", "svm", "other_model_pairs: 'svm' is not two lower-case words"),
        ("articles", "the  end", "articles: 'the  end' is not one lower-case word"),
    ],
)
def test_malformed_word_is_refused_naming_the_key(tmp_path, key, entry, message):
    data = _packaged_lists()
    data[key].append(entry)
    with pytest.raises(LanguageDataError, match=message.replace("(", r"\(")):
        load_language(_write(tmp_path, data))


def test_empty_or_unknown_list_is_refused(tmp_path):
    data = _packaged_lists()
    data["articles"] = []
    data["colour_words"] = ["red"]
    with pytest.raises(LanguageDataError) as error:
        load_language(_write(tmp_path, data))
    assert "articles: expected a non-empty list of words" in str(error.value)
    assert "colour_words: unknown list" in str(error.value)


def test_unreadable_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(LanguageDataError, match="absent.yaml: cannot read"):
        load_language(path)
    path.write_text("stopwords: [a, b\n", encoding="utf-8")
    with pytest.raises(LanguageDataError, match="absent.yaml: not valid YAML"):
        load_language(path)
