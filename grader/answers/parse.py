"""Reading a student's answers file (.md, .txt, .docx, .pdf) into plain text, within limits.

Markdown and plain text are read here, size-capped. Word and PDF files are parsed in a
separate process (_extract.py) under memory, CPU and wall-clock limits, since their parsers
are large and the files are untrusted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .rubric import ParseLimits

TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".text")
DOCUMENT_SUFFIXES = (".docx", ".pdf")
UNSUPPORTED_SUFFIXES = (".doc", ".odt", ".rtf", ".pages", ".ipynb")
_EXTRACTOR = Path(__file__).with_name("_extract.py")
_OUTPUT_CAP = 8_000_000  # bytes of JSON accepted back from the extractor


class AnswersFileError(Exception):
    """The answers file cannot be read; the message says why, for the student's result."""


@dataclass
class ParsedText:
    text: str
    warnings: list[str] = field(default_factory=list)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    if text.count("\x00") > max(8, len(text) // 100):
        raise AnswersFileError("not a text file (binary content)")
    return text.replace("\x00", "")


def _read_text(path: Path, limits: ParseLimits) -> ParsedText:
    data = path.read_bytes()
    text = _decode(data)
    warnings = []
    if len(text) > limits.max_chars:
        text = text[: limits.max_chars]
        warnings.append(f"text cut at {limits.max_chars} characters")
    return ParsedText(text, warnings)


def _extract_document(path: Path, kind: str, limits: ParseLimits) -> ParsedText:
    args = [kind, str(path), str(limits.max_pages), str(limits.max_chars), str(limits.memory_mb), str(limits.timeout_s)]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")}
    try:
        proc = subprocess.run(
            [sys.executable, "-I", str(_EXTRACTOR), *args],
            capture_output=True,
            timeout=limits.timeout_s,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise AnswersFileError(f"reading it took longer than {limits.timeout_s:g}s") from None
    if len(proc.stdout) > _OUTPUT_CAP:
        raise AnswersFileError("extracted text is too large")
    try:
        result = json.loads(proc.stdout.decode("utf-8", errors="replace"))
    except json.JSONDecodeError:
        why = "killed at its limits" if proc.returncode < 0 else f"exit code {proc.returncode}"
        raise AnswersFileError(f"unreadable (the reader stopped: {why})") from None
    if "error" in result:
        raise AnswersFileError(str(result["error"]))
    return ParsedText(str(result.get("text", "")), [str(w) for w in result.get("warnings", [])])


def read_answers_file(path: Path, limits: ParseLimits) -> ParsedText:
    """Plain text of an answers file; raises AnswersFileError with a reason the student can act on."""
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AnswersFileError(f"cannot open ({exc.strerror})") from None
    if not path.is_file():
        raise AnswersFileError("not a regular file")
    if size > limits.max_bytes:
        raise AnswersFileError(f"file too large ({size} bytes; limit {limits.max_bytes})")
    if size == 0:
        raise AnswersFileError("empty file")
    accepted = ", ".join((*TEXT_SUFFIXES[:1], TEXT_SUFFIXES[2], *DOCUMENT_SUFFIXES))
    if suffix in TEXT_SUFFIXES:
        return _read_text(path, limits)
    if suffix in DOCUMENT_SUFFIXES:
        return _extract_document(path, suffix.lstrip("."), limits)
    raise AnswersFileError(f"unsupported format {suffix or '(no extension)'}; accepted: {accepted}")
