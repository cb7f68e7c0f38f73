"""Late submissions: which attempt counts, and how much a late one loses.

Blackboard has no late flag; lateness is computed here from the submission time the
receipt records and the due date in rubric.yaml.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

DAY = timedelta(days=1)


class PenaltyStep(BaseModel):
    """From `days_late` days late on, the penalty is `fraction` of the points (until a later step)."""

    model_config = ConfigDict(extra="forbid")

    days_late: int = Field(ge=1, description="first day late this step applies to (1 = up to 24 h late)")
    fraction: float = Field(ge=0, le=1, description="share of the points taken away, 0.25 = a quarter")


class LatePolicy(BaseModel):
    """rubric.yaml `late:`. Days late count every started day after the grace period ends."""

    model_config = ConfigDict(extra="forbid")

    due: AwareDatetime = Field(description="due date with its time zone, e.g. 2022-11-01T23:59:00-06:00")
    grace_minutes: int = Field(default=0, ge=0, description="minutes after `due` that still count as on time")
    penalty_per_day: float | None = Field(
        default=0.1, ge=0, le=1, description="share of the points lost per started day late; null when `table` is used"
    )
    table: list[PenaltyStep] | None = Field(
        default=None, description="penalty steps by days late, instead of `penalty_per_day`; the last step holds on"
    )
    cap: float = Field(default=1.0, ge=0, le=1, description="the most a late submission can lose, as a share")

    @model_validator(mode="after")
    def _one_rule(self) -> LatePolicy:
        if self.table is not None:
            if "penalty_per_day" in self.model_fields_set and self.penalty_per_day is not None:
                raise ValueError("late: give either penalty_per_day or a table, not both")
            if not self.table:
                raise ValueError("late.table is empty: give at least one {days_late, fraction} step or drop it")
            days = [step.days_late for step in self.table]
            if days != sorted(set(days)):
                raise ValueError(f"late.table: days_late must increase strictly, found {days}")
            # A table replaces the per-day rate; a rate left at its default must not linger beside it.
            self.penalty_per_day = None
        elif self.penalty_per_day is None:
            raise ValueError("late: give either penalty_per_day or a table")
        return self

    @property
    def deadline(self) -> datetime:
        """The last moment that is still on time: the due date plus the grace period."""
        return self.due + timedelta(minutes=self.grace_minutes)

    def days_late(self, submitted_at: datetime) -> int:
        overdue = as_aware(submitted_at, self.due) - self.deadline
        if overdue <= timedelta(0):
            return 0
        return math.ceil(overdue / DAY)

    def fraction_for(self, days_late: int) -> float:
        if days_late <= 0:
            return 0.0
        if self.table is not None:
            reached = [step.fraction for step in self.table if step.days_late <= days_late]
            fraction = reached[-1] if reached else 0.0
        else:
            fraction = days_late * (self.penalty_per_day or 0.0)
        return round(min(fraction, self.cap, 1.0), 6)


class AttemptPolicy(BaseModel):
    """rubric.yaml `attempts:`: which of a student's Blackboard attempts is graded."""

    model_config = ConfigDict(extra="forbid")

    keep: Literal["newest", "newest-before-deadline"] = Field(
        default="newest-before-deadline",
        description="newest-before-deadline falls back to the newest attempt when every attempt is late",
    )


class LateOutcome(BaseModel):
    """What the late policy did to one student's points; `model_dump()` goes into the result's `late`."""

    days_late: int
    penalty_fraction: float
    points_before: float | None
    points_after: float | None
    reason: str


def as_aware(moment: datetime, reference: datetime) -> datetime:
    """A time without a zone is taken to be in the zone of `reference` (Blackboard stamps server-local time)."""
    if moment.tzinfo is not None and moment.utcoffset() is not None:
        return moment
    return moment.replace(tzinfo=reference.tzinfo)


def apply_late_penalty(points: float | None, submitted_at: datetime | None, policy: LatePolicy | None) -> LateOutcome:
    """Points after the late penalty; `points` of None (nothing graded) stays None."""
    if policy is None:
        return LateOutcome(
            days_late=0, penalty_fraction=0.0, points_before=points, points_after=points, reason="no late policy"
        )
    if submitted_at is None:
        return LateOutcome(
            days_late=0,
            penalty_fraction=0.0,
            points_before=points,
            points_after=points,
            reason="submission time unknown: no late penalty applied",
        )
    days = policy.days_late(submitted_at)
    fraction = policy.fraction_for(days)
    after = None if points is None else round(max(points * (1 - fraction), 0.0), 4)
    return LateOutcome(
        days_late=days,
        penalty_fraction=fraction,
        points_before=points,
        points_after=after,
        reason=_reason(days, fraction, submitted_at, policy),
    )


def _reason(days: int, fraction: float, submitted_at: datetime, policy: LatePolicy) -> str:
    when = as_aware(submitted_at, policy.due).isoformat(timespec="minutes")
    if days == 0:
        return f"on time (submitted {when}, due {policy.due.isoformat(timespec='minutes')})"
    unit = "day" if days == 1 else "days"
    capped = " (capped)" if policy.table is None and fraction < days * (policy.penalty_per_day or 0.0) else ""
    overdue = as_aware(submitted_at, policy.due) - policy.due
    hours = overdue.days * 24 + overdue.seconds // 3600
    return (
        f"{days} {unit} late, counting each day begun (submitted {when}, {hours // 24} d {hours % 24} h after the "
        f"due time): -{fraction:.0%} of the points{capped}"
    )
