"""The web app of `grader review` (Flask): the queue, one page per question with its answers grouped by meaning, one
page per error or integrity flag, and the forms that record decisions.

Only the TA who has the printed URL gets in: it carries a random token (as Jupyter's does), which the first request
trades for an HttpOnly, SameSite=Strict cookie; any request with neither is refused (403), as is one whose Host is
not this server's own address (a web page cannot reach it by a DNS name of its own). Every form carries a second
random value, checked on each POST with the cookie. Pages fetch nothing, run only this module's script (named by
its hash in the Content-Security-Policy) and post only to this server.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from importlib import resources
from urllib.parse import urlencode

from flask import Flask, abort, flash, redirect, render_template, request
from jinja2 import StrictUndefined
from markupsafe import Markup
from werkzeug.wrappers import Response

from grader.report.html.shell import STYLE as REPORT_STYLE
from grader.report.text import neutralise
from grader.review.session import DecisionRefused, ReviewSession
from grader.review.views import answer_link, case_link, case_view, question_view, queue_view

TOKEN_COOKIE = "grader_review_token"
TA_COOKIE = "grader_review_ta"
FORM_LIMIT_BYTES = 64 * 1024
SCRIPT = resources.files("grader.review").joinpath("templates/review.js").read_text(encoding="utf-8").strip()
STYLE = REPORT_STYLE + resources.files("grader.review").joinpath("templates/review.css").read_text(encoding="utf-8")


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def content_policy() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src 'none'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


def _shown_as_text(value: object) -> object:
    """What every template prints: a string with its control and bidi characters written as escapes."""
    return value if isinstance(value, Markup) or not isinstance(value, str) else neutralise(value)


def refused(reason: str) -> Response:
    return Response(f"403 refused: {reason}\n", status=403, mimetype="text/plain")


def _expected(raw: str) -> int | None:
    return int(raw) if raw.strip().isdigit() else None


def create_app(session: ReviewSession, *, token: str, default_ta: str, port: int) -> Flask:
    """The app for one session; `port` is the one the server listens on (a request for another Host is refused)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),  # signs the flash messages' cookie; new at every start
        SESSION_COOKIE_NAME="grader_review_session",
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        MAX_CONTENT_LENGTH=FORM_LIMIT_BYTES,
        MAX_FORM_MEMORY_SIZE=FORM_LIMIT_BYTES,
    )
    app.jinja_env.finalize = _shown_as_text
    app.jinja_env.undefined = StrictUndefined
    csrf = secrets.token_urlsafe(32)
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
    policy = content_policy()

    @app.before_request
    def guard() -> Response | None:
        if request.host not in hosts:
            return refused("this server answers only at its own address, 127.0.0.1")
        supplied = request.args.get("token")
        if supplied is not None:
            if not _same(supplied, token) or request.method != "GET":
                return refused("wrong token: open the URL `grader review` printed")
            rest = urlencode([(key, value) for key, value in request.args.items(multi=True) if key != "token"])
            path = request.path if not request.path.startswith("//") else "/"
            response = redirect(path + (f"?{rest}" if rest else ""), code=303)
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/")
            return response
        if not _same(request.cookies.get(TOKEN_COOKIE, ""), token):
            return refused("no token: open the URL `grader review` printed (it ends in ?token=...)")
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None and origin not in {f"http://{host}" for host in hosts}:
                return refused("a form from another site")
            if not _same(request.form.get("csrf", ""), csrf):
                return refused("the form is from an earlier server: reload the page")
        session.refresh()
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"  # no-referrer would make a form's Origin "null"
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    def page(name: str, **values) -> str:
        numbers = sorted(session.questions)
        ta = request.cookies.get(TA_COOKIE) or default_ta
        return render_template(
            name, style=Markup(STYLE), script=Markup(SCRIPT), csrf=csrf, ta=ta, numbers=numbers, **values
        )

    def ta_name() -> str:
        return request.cookies.get(TA_COOKIE) or default_ta

    @app.get("/")
    def queue() -> str:
        with session.lock:
            return page("queue.html", title="Review queue", view=queue_view(session))

    @app.get("/question/<int:number>")
    def question(number: int) -> str:
        if number not in session.questions:
            abort(404)
        with session.lock:
            return page("question.html", title=f"Question {number}", view=question_view(session, number))

    @app.get("/case")
    def case() -> str:
        with session.lock:
            found = session.find_case(request.args.get("student", ""), request.args.get("subject", ""))
            if found is None:
                abort(404)
            return page("case.html", title=found.title, view=case_view(session, found))

    @app.post("/decide")
    def decide() -> Response:
        form = request.form
        number = _expected(form.get("question", ""))
        if number is None or number not in session.questions:
            abort(400)
        student = form.get("student", "")
        try:
            outcome = session.decide_answer(
                question=number,
                student=student,
                scope=form.get("scope", "answer"),
                points=form.get("points", ""),
                comment=form.get("comment", ""),
                decided_by=ta_name(),
                seen_sha256=form.get("sha256", ""),
                expected=_expected(form.get("expected", "")),
                seen_group=form.get("subgroup_key" if form.get("scope") == "subgroup" else "group_key", ""),
            )
            flash(outcome.message, "done" if outcome.ok else "problem")
        except DecisionRefused as error:
            flash(str(error), "problem")
            return redirect(answer_link(number, student), code=303)
        return redirect(f"/question/{number}", code=303)

    @app.post("/decide-case")
    def decide_case() -> Response:
        form = request.form
        student, subject = form.get("student", ""), form.get("subject", "")
        try:
            outcome = session.decide_case(
                student=student,
                subject=subject,
                points=form.get("points", ""),
                comment=form.get("comment", ""),
                decided_by=ta_name(),
                seen_sha256=form.get("sha256", ""),
                expected=_expected(form.get("expected", "")),
            )
            flash(outcome.message, "done" if outcome.ok else "problem")
        except DecisionRefused as error:
            flash(str(error), "problem")
            return redirect(case_link(student, subject), code=303)
        return redirect("/", code=303)

    @app.post("/withdraw")
    def withdraw() -> Response:
        form = request.form
        student, subject = form.get("student", ""), form.get("subject", "")
        try:
            outcome = session.withdraw(
                student=student, subject=subject, decided_by=ta_name(), expected=_expected(form.get("expected", ""))
            )
            flash(outcome.message, "done" if outcome.ok else "problem")
        except DecisionRefused as error:
            flash(str(error), "problem")
        number = _expected(subject[1:]) if subject.startswith("q") else None
        return redirect(answer_link(number, student) if number else case_link(student, subject), code=303)

    @app.post("/ta")
    def set_ta() -> Response:
        name = " ".join(request.form.get("name", "").split())
        response = redirect("/", code=303)
        if 0 < len(name) <= 100:
            response.set_cookie(TA_COOKIE, name, httponly=True, samesite="Strict", path="/")
            flash(f"deciding as {name}", "done")
        else:
            flash("a name of 1 to 100 characters", "problem")
        return response

    return app
