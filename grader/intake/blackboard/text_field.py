"""Answers typed into Blackboard's Submission Field: the receipt's text (HTML in Ultra) as a plain answers file."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

TEXT_FIELD_ANSWERS = "answers_from_text_field.md"
# Tags after which the text continues on a new line; every other tag is dropped, its text kept.
BLOCK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "ul", "ol"}
HIDDEN_TAGS = {"script", "style"}
LOOKS_LIKE_HTML = re.compile(r"</?(?:p|div|br|span|li|ul|ol|b|i|em|strong|h[1-6]|table|tr|td|font)\b[^>]*>", re.I)


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in HIDDEN_TAGS:
            self.hidden += 1
        elif tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_TAGS:
            self.hidden = max(0, self.hidden - 1)
        elif tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def text_field_as_text(field: str) -> str:
    """The field's words: HTML tags stripped (blocks become lines), entities decoded, blank runs collapsed."""
    if LOOKS_LIKE_HTML.search(field):
        parser = _TextOnly()
        parser.feed(field)
        parser.close()
        text = "".join(parser.parts)
    else:
        text = html.unescape(field)
    text = text.replace("\xa0", " ").replace("\r\n", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def write_text_field_answers(path: Path, field: str) -> Path | None:
    """Writes the field's words to `path` (a new file); None when it holds none."""
    text = text_field_as_text(field)
    if not text.strip():
        return None
    with open(path, "x", encoding="utf-8") as target:
        target.write(text)
    return path
