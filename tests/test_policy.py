"""Late penalties, attempt policy and TA overrides."""

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from grader.pipeline.policy import CoursePolicy
from grader.policy.late import AttemptPolicy, LatePolicy, apply_late_penalty
from grader.policy.overrides import (
    TOTAL,
    OverridesError,
    apply,
    apply_overrides,
    check_limits,
    load_overrides,
    parse_overrides,
    validate,
)
from grader.rubric.config import load_rubric

CENTRAL = timezone(timedelta(hours=-6))
DUE = datetime(2022, 11, 1, 23, 59, tzinfo=CENTRAL)


def policy(**changes) -> LatePolicy:
    return LatePolicy(**{"due": DUE, "grace_minutes": 15, "penalty_per_day": 0.1, **changes})


def test_on_time_and_within_grace_lose_nothing():
    for submitted in (DUE - timedelta(hours=3), DUE + timedelta(minutes=15)):
        outcome = apply_late_penalty(80.0, submitted, policy())
        assert outcome.days_late == 0
        assert outcome.points_after == 80.0
        assert "on time" in outcome.reason


def test_every_started_day_after_grace_counts():
    late = policy()
    assert late.days_late(DUE + timedelta(minutes=16)) == 1
    assert late.days_late(DUE + timedelta(hours=24, minutes=15)) == 1
    assert late.days_late(DUE + timedelta(hours=24, minutes=16)) == 2
    outcome = apply_late_penalty(80.0, DUE + timedelta(hours=30), late)
    assert (outcome.days_late, outcome.penalty_fraction, outcome.points_after) == (2, 0.2, 64.0)
    assert "2 days late" in outcome.reason
    # 1 day 6 hours counts as 2 days: the reason says why, with the time it really was.
    assert "counting each day begun" in outcome.reason and "1 d 6 h after the due time" in outcome.reason


def test_submission_time_in_another_zone_is_compared_as_an_instant():
    utc_on_time = datetime(2022, 11, 2, 5, 59, tzinfo=timezone.utc)  # 23:59 in Central
    assert policy().days_late(utc_on_time) == 0


def test_naive_submission_time_is_read_in_the_zone_of_the_due_date():
    assert policy().days_late(datetime(2022, 11, 2, 0, 10)) == 0
    assert policy().days_late(datetime(2022, 11, 2, 0, 20)) == 1


def test_cap_limits_the_penalty():
    outcome = apply_late_penalty(100.0, DUE + timedelta(days=9), policy(cap=0.5))
    assert outcome.penalty_fraction == 0.5
    assert outcome.points_after == 50.0
    assert "capped" in outcome.reason


def test_table_steps_hold_until_the_next_step():
    table = policy(penalty_per_day=None, table=[{"days_late": 1, "fraction": 0.1}, {"days_late": 3, "fraction": 0.5}])
    assert [table.fraction_for(days) for days in (0, 1, 2, 3, 7)] == [0.0, 0.1, 0.1, 0.5, 0.5]


def test_table_without_explicit_rate_replaces_the_default_rate():
    table = LatePolicy(due=DUE, table=[{"days_late": 1, "fraction": 0.3}])
    assert table.penalty_per_day is None
    assert table.fraction_for(5) == 0.3


@pytest.mark.parametrize(
    "changes",
    [
        {"due": datetime(2022, 11, 1, 23, 59)},  # no time zone
        {"table": [{"days_late": 1, "fraction": 0.1}]},  # both a rate and a table
        {"penalty_per_day": None, "table": [{"days_late": 2, "fraction": 0.1}, {"days_late": 1, "fraction": 0.2}]},
        {"penalty_per_day": 1.5},
    ],
)
def test_invalid_late_policies_are_refused(changes):
    with pytest.raises(ValidationError):
        policy(**changes)


def test_missing_points_or_time_pass_through():
    assert apply_late_penalty(None, DUE + timedelta(days=2), policy()).points_after is None
    unknown = apply_late_penalty(50.0, None, policy())
    assert (unknown.days_late, unknown.points_after) == (0, 50.0)
    assert apply_late_penalty(50.0, DUE + timedelta(days=2), None).points_after == 50.0


def test_attempt_policy_default_and_values():
    assert AttemptPolicy().keep == "newest-before-deadline"
    assert AttemptPolicy(keep="newest").keep == "newest"
    with pytest.raises(ValidationError):
        AttemptPolicy(keep="oldest")


def test_deadline_includes_the_grace_period():
    assert policy().deadline == DUE + timedelta(minutes=15)


# Overrides


def write(tmp_path, text):
    path = tmp_path / "overrides.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_overrides_load_from_a_mapping_or_a_list(tmp_path):
    mapping = load_overrides(
        write(tmp_path, "alice:\n  items: {total: 90}\n  reason: regraded by hand\n  decided_by: TA Kim\n")
    )
    listed = load_overrides(
        write(
            tmp_path,
            "- student: alice\n  items: {total: 90}\n  reason: regraded by hand\n  decided_by: TA Kim\n",
        )
    )
    assert mapping.by_student == listed.by_student
    assert mapping.for_student("alice").records() == [
        {"item": "total", "points": 90.0, "reason": "regraded by hand", "decided_by": "TA Kim"}
    ]


def test_missing_overrides_file_means_none(tmp_path):
    assert load_overrides(tmp_path / "overrides.yaml").by_student == {}


def test_load_errors_name_the_file_and_the_key(tmp_path):
    path = write(tmp_path, "alice:\n  items: {total: lots}\n  reason: x\n  decided_by: TA Kim\n")
    with pytest.raises(OverridesError, match=r"overrides\.yaml: alice\.items\.total"):
        load_overrides(path)
    path = write(tmp_path, "bob:\n  items: {total: 3}\n  decided_by: TA Kim\n")
    with pytest.raises(OverridesError, match=r"bob\.reason"):
        load_overrides(path)


def test_a_student_overridden_twice_is_an_error(tmp_path):
    twice = "alice:\n  items: {total: 1}\n  reason: a\n  decided_by: b\n"
    with pytest.raises(OverridesError, match="duplicate key 'alice'"):
        load_overrides(write(tmp_path, twice + twice))
    entry = "- {student: alice, items: {total: 1}, reason: a, decided_by: b}\n"
    with pytest.raises(OverridesError, match="second override"):
        load_overrides(write(tmp_path, entry + entry))


def test_unknown_student_or_item_is_an_error_with_a_suggestion(tmp_path):
    overrides = load_overrides(
        write(
            tmp_path,
            "alcie:\n  items: {total: 90}\n  reason: r\n  decided_by: d\n"
            "bob:\n  items: {exercise3: 1}\n  reason: r\n  decided_by: d\n",
        )
    )
    with pytest.raises(OverridesError) as error:
        validate(overrides, ["alice", "bob"], ["exercise1", "exercise2"])
    message = str(error.value)
    assert "alcie: unknown student (did you mean alice?)" in message
    assert "bob.items.exercise3: unknown item" in message
    validate(overrides.model_copy(update={"by_student": {}}), ["alice"], ["exercise1"])


def test_overriding_an_item_moves_the_total_and_keeps_the_machine_figures(tmp_path):
    overrides = load_overrides(write(tmp_path, "bob:\n  items: {exercise2: 4}\n  reason: r\n  decided_by: d\n"))
    machine = {"exercise1": 63.1, "exercise2": 3.0, "total": 66.1}
    final = apply_overrides(machine, overrides.for_student("bob"))
    assert final == {"exercise1": 63.1, "exercise2": 4.0, "total": 67.1}
    assert machine == {"exercise1": 63.1, "exercise2": 3.0, "total": 66.1}


def test_overriding_the_total_wins_over_item_changes(tmp_path):
    overrides = load_overrides(
        write(tmp_path, "bob:\n  items: {exercise1: 50, total: 90}\n  reason: r\n  decided_by: d\n")
    )
    final = apply({"exercise1": None, "exercise2": None, "total": None}, overrides.for_student("bob"))
    assert final == {"exercise1": 50.0, "exercise2": None, "total": 90.0}


def test_no_override_returns_an_equal_copy():
    machine = {"exercise1": 1.0, "total": 1.0}
    final = apply_overrides(machine, None)
    assert final == machine and final is not machine


def test_an_override_above_the_items_maximum_is_refused_with_the_limit(tmp_path, rubric_file):
    write(
        tmp_path,
        "dave:\n  items: {exercise2: 40}\n  reason: r\n  decided_by: d\n"
        "erin:\n  items: {total: 150}\n  reason: r\n  decided_by: d\n",
    )
    with pytest.raises(OverridesError) as error:
        CoursePolicy.load(load_rubric(rubric_file), rubric_file)
    message = str(error.value)
    assert message.startswith(str(tmp_path / "overrides.yaml"))
    assert "dave.items.exercise2: 40 is more than the item is worth (at most 4)" in message
    assert "erin.items.total: 150 is more than the item is worth (at most 104)" in message


def test_an_override_at_the_maximum_or_zero_is_accepted_and_below_zero_refused(tmp_path, rubric_file):
    write(tmp_path, "dave:\n  items: {exercise1: 100, exercise2: 0, total: 104}\n  reason: r\n  decided_by: d\n")
    policy = CoursePolicy.load(load_rubric(rubric_file), rubric_file)
    assert policy.overrides.for_student("dave").items == {"exercise1": 100, "exercise2": 0, "total": 104}
    write(tmp_path, "dave:\n  items: {exercise2: -1}\n  reason: r\n  decided_by: d\n")
    with pytest.raises(OverridesError, match=r"overrides\.yaml: dave\.items\.exercise2: -1 is negative; at least 0"):
        CoursePolicy.load(load_rubric(rubric_file), rubric_file)


def test_limits_follow_the_rubric():
    overrides = parse_overrides({"dave": {"items": {"exercise2": 6}, "reason": "r", "decided_by": "d"}})
    check_limits(overrides, {"exercise2": 6, TOTAL: 106})
    with pytest.raises(OverridesError, match=r"at most 5\b"):
        check_limits(overrides, {"exercise2": 5, TOTAL: 105})
