"""`grader review`: the app on a real HTTP server (waitress, threads) bound to 127.0.0.1, and the verb's main()."""

from __future__ import annotations

import getpass
import secrets
import socket
import threading
from pathlib import Path

from rich.console import Console
from waitress import wasyncore
from waitress.server import create_server

from grader.errors import GraderError
from grader.report.text import line
from grader.review.app import create_app
from grader.review.counts import review_counts
from grader.review.queue import default_encoder
from grader.review.session import ReviewSession

HOST = "127.0.0.1"
THREADS = 8


class ReviewServerError(GraderError, OSError):
    """The server cannot listen (the port is taken)."""


class ReviewServer:
    """The app of one session on 127.0.0.1: `url` carries the token that lets a browser in."""

    def __init__(self, session: ReviewSession, *, port: int = 0, ta: str = "", token: str | None = None) -> None:
        self.token = token or secrets.token_urlsafe(32)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((HOST, port))
        except OSError as error:
            listener.close()
            raise ReviewServerError(f"cannot listen on {HOST}:{port}: {error.strerror}; try another --port") from error
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.app = create_app(session, token=self.token, default_ta=ta or default_ta(), port=self.port)
        self._map: dict = {}
        self._server = create_server(
            self.app, map=self._map, sockets=[listener], threads=THREADS, clear_untrusted_proxy_headers=True
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/?token={self.token}"

    def run(self) -> None:
        """Serves until Ctrl-C (KeyboardInterrupt) or close()."""
        self._server.run()

    def start(self) -> ReviewServer:
        """Serves in a daemon thread (tests, benchmarks)."""
        self._thread = threading.Thread(target=self.run, name="grader-review", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Lets the requests in progress finish, then closes every connection from the server's own loop (closing
        them from another thread would pull them from under its poll)."""
        self._server.task_dispatcher.shutdown()
        if self._thread is not None and self._thread.is_alive():
            self._server.trigger.pull_trigger(lambda: wasyncore.close_all(self._map))
            self._thread.join(timeout=5)
        else:
            wasyncore.close_all(self._map)


def default_ta() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "TA"


def main(
    *,
    results: Path = Path("results"),
    rubric: Path = Path("rubric.yaml"),
    submissions: Path = Path("submissions"),
    overrides: Path | None = None,
    port: int = 0,
    ta: str | None = None,
    seed_from: tuple[Path, ...] = (),
    console: Console | None = None,
) -> int:
    console = console or Console(soft_wrap=True)
    if not Path(results).is_dir():
        raise ReviewServerError(f"{results}: no results folder; grade first (`grader grade --all`) or pass --results")
    with console.status(line(f"reading the results in {results}")) as status:
        session = ReviewSession(
            results=results,
            rubric=rubric,
            submissions=submissions,
            overrides=overrides,
            encode=default_encoder(),
            progress=lambda message: status.update(line(message)),
            seed_from=seed_from,
        )
    server = ReviewServer(session, port=port, ta=ta or "")
    waiting = len(session.queue.entries)
    if session.seeds:
        seeds = len(session.seeds)
        console.print(line(f"learning from {seeds} decided answer{'s' if seeds != 1 else ''} of an earlier class"))
        unchecked = sum(not seed.question_checked for seed in session.seeds)
        if unchecked:
            matched = "matched by number and points only: use them only if the questions read the same"
            console.print(line((f"{unchecked} of them were graded before results kept the question's text, {matched}",
                                "yellow")))  # fmt: skip
    elif seed_from:
        nothing = "the same number, points and question text"
        console.print(line((f"no decided answer of the earlier class is to a question of this rubric ({nothing}): "
                            "nothing to learn from", "yellow")))  # fmt: skip
    needs_review = review_counts(session.results.values(), session.copies).waiting
    console.print(line(f"{len(session.results)} results; {needs_review} need review (as `grader summary` counts), and "
                       f"the queue holds {waiting} undecided in all; decisions go to"),
                  line((str(session.store.path), "bold")))  # fmt: skip
    console.print(line("Open this URL in a browser on this machine (it holds the access token):"))
    console.print(line((server.url, "bold")))
    console.print(line(("Ctrl-C stops the server; every decision is already stored.", "dim")))
    try:
        server.run()  # waitress ends its loop on Ctrl-C and returns
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    console.print(line("review stopped; the decisions are in ", str(session.store.path)))
    return 0
