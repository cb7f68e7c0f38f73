"""The page shell every HTML report shares: one jinja2 environment that escapes everything, the style sheet,
and a Content-Security-Policy that lets the page fetch nothing and run only the grader's own script.

Every string a student controls (name, answers, error messages) reaches a page through a template variable,
so autoescape writes it as text, after `neutralise` has written its control and bidi characters as escapes, as
the terminal report does (a right-to-left override would otherwise reorder the page around it); charts are the
one thing marked safe, and they come from matplotlib.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from grader.report.text import neutralise

STYLE = """
:root { --ink: #1f2933; --muted: #52606d; --line: #d9e2ec; --good: #1d7a46; --bad: #b42318; --warn: #a15c07; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 0 auto;
       max-width: 1100px; padding: 1.5rem; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid var(--line); padding-bottom: .2rem; margin-top: 2rem; }
.muted { color: var(--muted); } .good { color: var(--good); } .bad { color: var(--bad); } .warn { color: var(--warn); }
.grade { font-size: 2.4rem; font-weight: 700; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .7rem; text-align: left; vertical-align: top; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.sortable { cursor: pointer; user-select: none; } th.sortable::after { content: " \\2195"; color: var(--muted); }
th[aria-sort="ascending"]::after { content: " \\2191"; } th[aria-sort="descending"]::after { content: " \\2193"; }
svg.chart { max-width: 100%; height: auto; display: block; }
.strip { display: flex; flex-wrap: wrap; gap: .6rem; }
.strip figure { margin: 0; width: 96px; font-size: .75rem; text-align: center; }
.strip img { width: 96px; height: 96px; image-rendering: pixelated; display: block; }
.answer { white-space: pre-wrap; background: #f5f7fa; border-left: 3px solid var(--line); padding: .4rem .7rem;
          margin: .3rem 0 .6rem; overflow-wrap: anywhere; }
.student-text { white-space: pre-wrap; overflow-wrap: anywhere; }
pre.recorded { white-space: pre-wrap; overflow-wrap: anywhere; background: #f5f7fa; border: 1px dashed var(--muted);
               padding: .4rem .7rem; font-size: .85rem; }
.pill { display: inline-block; border-radius: .6rem; padding: 0 .5rem; font-size: .8rem; background: #fdf3e1;
        color: var(--warn); margin-right: .3rem; }
footer { margin-top: 2.5rem; font-size: .8rem; color: var(--muted); }
.scroll { overflow-x: auto; max-width: 100%; }
@media (max-width: 640px) {
  body { padding: .8rem; }
  .grade { font-size: 1.8rem; }
  table.stacked, table.stacked tbody, table.stacked tr, table.stacked th, table.stacked td { display: block; }
  table.stacked th, table.stacked td { border: 0; padding: .1rem 0; }
  table.stacked tr { border-bottom: 1px solid var(--line); padding: .3rem 0; }
  table.stacked td.number { text-align: left; }
}
"""


def _shown_as_text(value: object) -> object:
    """Every value a template prints: a string neutralised; markup (the grader's charts, style and script) as it is."""
    return value if isinstance(value, Markup) or not isinstance(value, str) else neutralise(value)


_environment = Environment(
    loader=PackageLoader("grader.report.html", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    finalize=_shown_as_text,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def template(name: str):
    """A page template of templates/: it extends shell.html and fills {% block body %}."""
    return _environment.get_template(name)


def content_policy(script: str | None) -> str:
    """Nothing is fetched (images are data: URIs, styles inline); the only script that may run is `script`,
    named by its hash, so markup that slipped into a page still could not run one."""
    scripts = "'none'"
    if script:
        digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
        scripts = f"'sha256-{digest}'"
    return f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src {scripts}; form-action 'none'"


def render(page, *, title: str, script: str | None = None, key: str | None = None, **values) -> str:
    """The full HTML document; `script` is the grader's own JavaScript, never anything from a student; `key`
    names what the page was made from (build.page_key), so that an unchanged page is not drawn again."""
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return page.render(
        title=title,
        style=Markup(STYLE),
        script=Markup(script) if script else None,
        policy=content_policy(script),
        key=key,
        footer=f"Lab 8 grader, report generated {generated}",
        **values,
    )


def chart(svg: str) -> Markup:
    """A chart from charts.py, the one kind of markup a page takes as it is."""
    return Markup(svg)
