"""When an attempt was submitted, read from the receipt's date in either locale, and which attempt is graded."""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from grader.policy.late import AttemptPolicy

if TYPE_CHECKING:
    from grader.intake.blackboard.receipts import Receipt

# Abbreviations Blackboard servers print. CST is read as US Central, as Blackboard's US-locale receipts mean it;
# an abbreviation not listed here (IST is India or Ireland) leaves the time without an offset.
ZONE_HOURS = {
    "UTC": 0, "GMT": 0, "WET": 0, "BST": 1, "WEST": 1, "CET": 1, "CEST": 2, "EET": 2, "EEST": 3, "MSK": 3,
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    "AKST": -9, "AKDT": -8, "HST": -10, "AST": -4, "ADT": -3, "NST": -3.5, "NDT": -2.5,
    "SGT": 8, "HKT": 8, "AWST": 8, "JST": 9, "KST": 9, "ACST": 9.5, "ACDT": 10.5, "AEST": 10, "AEDT": 11,
    "NZST": 12, "NZDT": 13,
}  # fmt: skip
MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
MONTHS |= {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_TIME = r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?"
US_DATE = re.compile(
    r"(?P<month>[A-Za-z]+)\.? (?P<day>\d{1,2}), (?P<year>\d{4}),? " + _TIME + r"\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?"
)
GB_DATE = re.compile(r"(?P<day>\d{1,2}) (?P<month>[A-Za-z]+)\.? (?P<year>\d{4}),? " + _TIME)
ZONE_TAIL = re.compile(r"(?:^|\s)(?P<zone>[A-Z]{2,5}|(?:UTC|GMT)?[+-]\d{1,2}(?::?\d{2})?)\s*$")
OFFSET = re.compile(r"^(?:UTC|GMT)?(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?$")


def parse_submission_date(raw: str) -> tuple[datetime | None, str | None]:
    """(time, problem). The time is aware when the zone is known, naive when not, None when unreadable."""
    text = raw.replace("o'clock", " ").replace("\u202f", " ").replace("\xa0", " ")
    text = re.sub(r"\s+", " ", text).strip()
    match = US_DATE.search(text) or GB_DATE.search(text)
    if not match or match["month"].lower() not in MONTHS:
        return None, f"cannot read the submission date {raw!r}"
    hour = int(match["hour"])
    ampm = (match.groupdict().get("ampm") or "").lower().replace(".", "")
    if ampm:
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    try:
        moment = datetime(
            int(match["year"]), MONTHS[match["month"].lower()], int(match["day"]),
            hour, int(match["minute"]), int(match["second"] or 0),
        )  # fmt: skip
    except ValueError as error:
        return None, f"cannot read the submission date {raw!r}: {error}"
    zone = ZONE_TAIL.search(text[match.end() :])
    if not zone or zone["zone"] in ("AM", "PM"):
        return moment, f"no time zone in {raw!r}: time kept without offset"
    offset = _zone_offset(zone["zone"])
    if offset is None:
        return moment, f"unknown time zone {zone['zone']!r}: time kept without offset"
    return moment.replace(tzinfo=offset), None


def _zone_offset(zone: str) -> timezone | None:
    if zone in ZONE_HOURS:
        return timezone(timedelta(hours=ZONE_HOURS[zone]))
    match = OFFSET.match(zone)
    if not match:
        return None
    delta = timedelta(hours=int(match["hours"]), minutes=int(match["minutes"] or 0))
    return timezone(-delta if match["sign"] == "-" else delta)


NO_DUE_DATE = (
    "no due date known (no `late:` section in the rubric): kept each student's newest attempt "
    "instead of the newest before the deadline"
)


def choose_attempt(attempts: list[Receipt], policy: AttemptPolicy, due: datetime | None) -> tuple[Receipt, list[str]]:
    """The attempt to grade, with notes on what was set aside.

    Without a due date the newest is kept; the import says that once (NO_DUE_DATE), not per student.
    """
    ordered = sorted(attempts, key=lambda receipt: (receipt.attempt_time, receipt.receipt_name))
    newest = ordered[-1]
    if policy.keep == "newest" or due is None:
        return newest, []
    on_time = [receipt for receipt in ordered if receipt.moment(due) <= due]
    if not on_time:
        return newest, ["every attempt is after the deadline: kept the newest"]
    chosen = on_time[-1]
    later = len(ordered) - len(on_time)
    return chosen, [f"set aside {later} attempt(s) after the deadline"] if later else []
