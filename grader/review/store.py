"""The TA's decisions, one row each, in an SQLite file beside the results (results/review.sqlite).

Several writers at once are the normal case: two TAs in two browsers on one `grader review`, two servers on one
results folder, `grade --all` reading while they write. SQLite in WAL mode serialises the writers, and each
decision is one short transaction that takes the write lock first (BEGIN IMMEDIATE), checks what it expects to
replace, and appends; a writer that finds the lock taken waits (the busy timeout) instead of failing. Rows are
never changed or deleted: a later row on the same subject supersedes the earlier one (`supersedes` names it), and
withdrawing a decision is a row too, so the whole history stays readable.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from grader.errors import GraderError
from grader.review.subjects import subject_question

STORE_NAME = "review.sqlite"
SCHEMA_VERSION = 2  # 2: the machine's rescores
BUSY_TIMEOUT_SECONDS = 30.0  # a writer waits this long for another's transaction (each takes milliseconds)
MAX_COMMENT_CHARS = 2000
MAX_NAME_CHARS = 100

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    student TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    item TEXT NOT NULL,
    points REAL,
    comment TEXT NOT NULL DEFAULT '',
    decided_by TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    withdrawn INTEGER NOT NULL DEFAULT 0,
    supersedes INTEGER REFERENCES decisions(id)
);
CREATE INDEX IF NOT EXISTS decisions_by_subject ON decisions (student, subject, id);
CREATE TABLE IF NOT EXISTS rescores (
    student TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    item TEXT NOT NULL,
    points REAL NOT NULL,
    followed TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (student, subject)
);
"""
COLUMNS = "id, student, subject, text_sha256, item, points, comment, decided_by, decided_at, withdrawn, supersedes"
RESCORE_COLUMNS = "student, subject, text_sha256, item, points, followed"
# The standing row of every subject: its newest one, unless that withdrew the decision.
ACTIVE = f"""
SELECT {COLUMNS} FROM decisions
WHERE id IN (SELECT MAX(id) FROM decisions {{where}} GROUP BY student, subject) AND withdrawn = 0 ORDER BY id
"""


class ReviewStoreError(GraderError, RuntimeError):
    """The decisions file cannot be used; the message names it."""


class Decision(BaseModel):
    """One TA's decision on one subject (an answer, an error, an integrity flag) of one student."""

    model_config = ConfigDict(frozen=True)

    student: str = Field(min_length=1)
    subject: str = Field(min_length=1, description="q<N>, error, answers-error or integrity:<code>")
    text_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="What was decided on: the answer as the TA saw it")
    item: str = Field(min_length=1, description="The graded item whose points it decides")
    points: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="None: the machine's stand")
    comment: str = Field(default="", max_length=MAX_COMMENT_CHARS)
    decided_by: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    decided_at: AwareDatetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    withdrawn: bool = Field(default=False, description="Takes the subject's decision back: the machine's again")
    id: int | None = None
    supersedes: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.student, self.subject

    @property
    def question(self) -> int | None:
        return subject_question(self.subject)


class Rescore(BaseModel):
    """The machine's points for an undecided answer, rescored from the TA's decisions on similar answers. Not a
    decision: the review replaces them all whenever the decisions change, and a TA's decision wins over one."""

    model_config = ConfigDict(frozen=True)

    student: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    text_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="The answer as it was rescored")
    item: str = Field(min_length=1)
    points: float = Field(ge=0, allow_inf_nan=False)
    followed: list[str] = Field(default_factory=list, description="Whose decided answers it followed")

    @property
    def question(self) -> int | None:
        return subject_question(self.subject)


@dataclass(frozen=True)
class Conflict:
    """A decision not recorded: the subject's standing decision was no longer the one the TA had seen."""

    refused: Decision
    current: Decision | None


@dataclass
class Recorded:
    recorded: list[Decision] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def store_path(results_dir: Path) -> Path:
    return Path(results_dir) / STORE_NAME


def _row(values: tuple) -> Decision:
    names = [name.strip() for name in COLUMNS.split(",")]
    row = dict(zip(names, values))
    row["decided_at"] = datetime.fromisoformat(row["decided_at"])
    row["withdrawn"] = bool(row["withdrawn"])
    return Decision.model_validate(row)


class DecisionStore:
    """The decisions file of one results folder; every call opens its own connection, so threads and processes
    share nothing but the file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def of_results(cls, results_dir: Path) -> DecisionStore:
        return cls(store_path(results_dir))

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        except sqlite3.Error as error:
            raise ReviewStoreError(f"{self.path}: cannot open the review decisions: {error}") from error
        try:
            connection.execute("PRAGMA synchronous = FULL")  # a recorded decision survives a power cut
            yield connection
        except sqlite3.DatabaseError as error:
            raise ReviewStoreError(f"{self.path}: not a readable review decisions file: {error}") from error
        finally:
            connection.close()

    def _prepare(self, connection: sqlite3.Connection) -> None:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ReviewStoreError(f"{self.path}: written by a newer grader (schema {version}); update the grader")
        if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self._switch_to_wal(connection)
        if version < SCHEMA_VERSION:
            connection.executescript(SCHEMA)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @staticmethod
    def _switch_to_wal(connection: sqlite3.Connection) -> None:
        """SQLite may refuse the switch at once ("database is locked") without waiting its busy timeout while another
        process opens the new file too: wait for it here, as long as that timeout."""
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def record(
        self, decisions: Sequence[Decision], *, expected: Mapping[tuple[str, str], int | None] | None = None
    ) -> Recorded:
        """Appends `decisions` in one transaction. For a subject named in `expected`, only while its standing
        decision is still the one with that id (None: none): otherwise it is a conflict, not recorded."""
        expected = expected or {}
        outcome = Recorded()
        with self._writing() as connection:
            for decision in decisions:
                current = self._standing(connection, decision.student, decision.subject)
                if decision.key in expected and expected[decision.key] != (current.id if current else None):
                    outcome.conflicts.append(Conflict(decision, current))
                    continue
                outcome.recorded.append(self._append(connection, decision, current))
        return outcome

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, which takes the write lock first (BEGIN IMMEDIATE): all of it or nothing."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            self._prepare(connection)
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    def _standing(self, connection: sqlite3.Connection, student: str, subject: str) -> Decision | None:
        row = connection.execute(
            f"SELECT {COLUMNS} FROM decisions WHERE student = ? AND subject = ? ORDER BY id DESC LIMIT 1",
            (student, subject),
        ).fetchone()
        decision = None if row is None else _row(row)
        return None if decision is None or decision.withdrawn else decision

    def _last_id(self, connection: sqlite3.Connection, student: str, subject: str) -> int | None:
        row = connection.execute(
            "SELECT MAX(id) FROM decisions WHERE student = ? AND subject = ?", (student, subject)
        ).fetchone()
        return row[0]

    def _append(self, connection: sqlite3.Connection, decision: Decision, current: Decision | None) -> Decision:
        supersedes = self._last_id(connection, decision.student, decision.subject)
        cursor = connection.execute(
            f"INSERT INTO decisions ({COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                decision.student,
                decision.subject,
                decision.text_sha256,
                decision.item,
                decision.points,
                decision.comment,
                decision.decided_by,
                decision.decided_at.isoformat(),
                int(decision.withdrawn),
                supersedes,
            ),
        )
        return decision.model_copy(update={"id": cursor.lastrowid, "supersedes": supersedes})

    def _select(self, query: str, parameters: tuple = ()) -> list[Decision]:
        if not self.path.exists():  # no TA has decided yet; reading never creates the file
            return []
        with self._connect() as connection:
            if connection.execute("PRAGMA user_version").fetchone()[0] == 0:
                return []
            return [_row(values) for values in connection.execute(query, parameters).fetchall()]

    def active(self) -> list[Decision]:
        """The standing decision of every subject that has one."""
        return self._select(ACTIVE.format(where=""))

    def for_student(self, student: str) -> list[Decision]:
        return self._select(ACTIVE.format(where="WHERE student = ?"), (student,))

    def since(self, last_id: int) -> list[Decision]:
        """Every row appended after the one with `last_id`, withdrawals included, oldest first."""
        return self._select(f"SELECT {COLUMNS} FROM decisions WHERE id > ? ORDER BY id", (last_id,))

    def last_id(self) -> int:
        rows = self._select(f"SELECT {COLUMNS} FROM decisions ORDER BY id DESC LIMIT 1")
        return rows[0].id if rows and rows[0].id is not None else 0

    def replace_rescores(self, rescores: Sequence[Rescore]) -> set[str]:
        """Stores `rescores` in place of all earlier ones, in one transaction; the students whose rescores changed."""
        if not rescores and not self.path.exists():
            return set()
        new = {(r.student, r.subject): r for r in rescores}
        with self._writing() as connection:
            old = {(r.student, r.subject): r for r in self._read_rescores(connection, "", ())}
            connection.execute("DELETE FROM rescores")
            rows = [(*r.model_dump(exclude={"followed"}).values(), json.dumps(r.followed)) for r in new.values()]
            connection.executemany(f"INSERT INTO rescores ({RESCORE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows)
        return {key[0] for key in old.keys() | new.keys() if old.get(key) != new.get(key)}  # key: (student, subject)

    @staticmethod
    def _read_rescores(connection: sqlite3.Connection, where: str, parameters: tuple) -> list[Rescore]:
        query = f"SELECT {RESCORE_COLUMNS} FROM rescores {where} ORDER BY student, subject"
        return [
            Rescore(
                student=student,
                subject=subject,
                text_sha256=digest,
                item=item,
                points=points,
                followed=json.loads(followed),  # a student's name may hold any character but a slash
            )
            for student, subject, digest, item, points, followed in connection.execute(query, parameters)
        ]

    def rescores_for(self, student: str | None = None) -> list[Rescore]:
        """The stored rescores (of one student, or of all); none before the review's first rescoring."""
        if not self.path.exists():
            return []
        with self._connect() as connection:
            if connection.execute("PRAGMA user_version").fetchone()[0] < 2:
                return []
            where, parameters = ("WHERE student = ?", (student,)) if student is not None else ("", ())
            return self._read_rescores(connection, where, parameters)

    def history(self, student: str, subject: str) -> list[Decision]:
        """Every row on one subject, oldest first, withdrawn ones and superseded ones included."""
        query = f"SELECT {COLUMNS} FROM decisions WHERE student = ? AND subject = ? ORDER BY id"
        return self._select(query, (student, subject))
