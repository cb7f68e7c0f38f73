"""`grader review` in headless Chromium (marker `browser`): a TA grades a group with the keyboard and the Blackboard
export follows; two browsers decide at the same moment and both decisions survive a regrade; a browser without the
token is refused. The class is test_review.py's, graded through the fake sandbox."""

from __future__ import annotations

import html
import io
import threading
from pathlib import Path

import pytest
from helpers import FakeBackend, headless_chromium, logits_with_accuracy
from rich.console import Console
from test_review import HOSTILE, export_rows, graded_once, klass  # noqa: F401 - the class the tests share

from grader.batch.run import BatchOptions, grade_all
from grader.results.store import load_result, result_path
from grader.review.server import ReviewServer
from grader.review.session import ReviewSession, anchor
from grader.review.store import DecisionStore

pytestmark = pytest.mark.browser


@pytest.fixture
def served(klass):  # noqa: F811 - the fixture imported above
    session = ReviewSession(results=klass.results, rubric=klass.rubric, submissions=klass.submissions)
    server = ReviewServer(session, ta="Kim").start()
    yield server
    server.close()


@pytest.fixture
def drivers():
    opened = []

    def start():
        opened.append(headless_chromium())
        return opened[-1]

    yield start
    for driver in opened:
        driver.quit()


def keys(driver, *typed: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    for text in typed:
        ActionChains(driver).send_keys(text).perform()


def flash(driver) -> str:
    """The message the page shows after a form was sent, once the next page is there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shown = WebDriverWait(driver, 60).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".flash"))
    return " ".join(element.text for element in shown)


def test_a_ta_grades_a_group_with_a_key_and_the_blackboard_export_reflects_it(served, drivers, klass, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    before = export_rows(klass, tmp_path / "before")
    driver = drivers()
    driver.get(served.url)
    assert driver.find_element(By.ID, "counts").is_displayed()
    assert "token" not in driver.current_url  # traded for a cookie at once
    driver.get(f"http://127.0.0.1:{served.port}/question/1#{anchor('bob', 'q1')}")
    card = driver.find_element(By.ID, anchor("bob", "q1"))
    assert "current" in card.get_attribute("class")
    keys(driver, "0", "+")  # a quarter point
    assert card.find_element(By.NAME, "points").get_property("value") == "0.25"
    keys(driver, "c", "Labels are not needed: an autoencoder learns from its input.", Keys.ESCAPE, "g")
    assert "recorded 3 decisions" in flash(driver)
    assert driver.execute_script("return window.pwned === undefined")  # the hostile student's markup stayed text

    decided = {decision.student: decision for decision in DecisionStore.of_results(klass.results).active()}
    assert set(decided) == {"bob", "cat", "dan"} and {d.points for d in decided.values()} == {0.25}
    after = export_rows(klass, tmp_path / "after")
    for student in ("bob", "cat", "dan"):
        result = load_result(result_path(klass.results, student))
        question = next(q for q in result.answers["questions"] if q["number"] == 1)
        shift = 0.25 - question["points"]
        assert float(grade_of(after[student])) == pytest.approx(float(grade_of(before[student])) + shift, abs=0.01)
        words = html.unescape(after[student]["Feedback to Learner"])
        assert "Question 1: 0.25 / 1 - graded by Kim" in words
        assert "TA's comment: Labels are not needed: an autoencoder learns from its input." in words
    assert grade_of(after["alice"]) == grade_of(before["alice"])


def grade_of(row: dict[str, str]) -> str:
    return next(value for name, value in row.items() if name.startswith("Lab 8"))


def test_two_browsers_decide_at_once_and_both_decisions_survive_a_regrade(served, drivers, klass):  # noqa: F811
    from selenium.webdriver.common.by import By

    first, second = drivers(), drivers()
    choices = ((first, "Kim", "alice", 2, "0.5"), (second, "Lee", "bob", 3, "1"))
    buttons = []
    for driver, name, student, question, points in choices:
        driver.get(served.url)
        field = driver.find_element(By.ID, "ta-name")
        field.clear()
        field.send_keys(name)
        driver.find_element(By.CSS_SELECTOR, "#ta-form button").click()
        assert f"deciding as {name}" in flash(driver)
        driver.get(f"http://127.0.0.1:{served.port}/question/{question}")
        card = driver.find_element(By.ID, anchor(student, f"q{question}"))
        box = card.find_element(By.NAME, "points")
        box.clear()
        box.send_keys(points)
        buttons.append(card.find_element(By.CSS_SELECTOR, "button[value='answer']"))
    start = threading.Barrier(2)

    def press(button) -> None:
        start.wait()
        button.click()

    pressing = [threading.Thread(target=press, args=(button,)) for button in buttons]
    for thread in pressing:
        thread.start()
    for thread in pressing:
        thread.join(timeout=60)
    for driver, *_ in choices:
        assert "recorded 1 decision" in flash(driver)

    stored = {(d.student, d.subject): d for d in DecisionStore.of_results(klass.results).active()}
    assert {key: (d.decided_by, d.points) for key, d in stored.items()} == {
        ("alice", "q2"): ("Kim", 0.5), ("bob", "q3"): ("Lee", 1.0)}  # fmt: skip
    regrade = FakeBackend(
        {"alice": logits_with_accuracy(klass.labels, 0.8), "bob": logits_with_accuracy(klass.labels, 0.5)}
    )
    options = BatchOptions(rubric=klass.rubric, submissions=klass.submissions, results=klass.results,
                           sandbox=regrade, force=True, workers=1)  # fmt: skip
    grade_all(options, Console(file=io.StringIO()))
    assert {Path(job.submission_dir).name for job in regrade.jobs} >= {"alice", "bob"}  # graded again for real
    for (student, subject), decision in stored.items():
        result = load_result(result_path(klass.results, student))
        [record] = result.decisions
        assert (record.subject, record.points, record.decided_by, record.status) == (
            subject, decision.points, decision.decided_by, "applied")  # fmt: skip
    second.get(f"http://127.0.0.1:{served.port}/question/3")
    card = second.find_element(By.ID, anchor("bob", "q3"))
    assert "decided: 1 / 1" in card.text and "Lee" in card.text


def test_a_browser_without_the_token_is_refused(served, drivers):
    from selenium.webdriver.common.by import By

    driver = drivers()
    for path in ("/", "/question/1", "/?token=guess"):
        driver.get(f"http://127.0.0.1:{served.port}{path}")
        assert "403 refused" in driver.find_element(By.TAG_NAME, "body").text
    driver.get(served.url)
    assert driver.find_element(By.ID, "counts").is_displayed()
    assert HOSTILE not in driver.title
