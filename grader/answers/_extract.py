"""Text extraction from an untrusted .docx or .pdf, run as a separate, limited process.

Usage: python -I _extract.py KIND PATH MAX_PAGES MAX_CHARS MEMORY_MB TIMEOUT_S
Prints one JSON object: {"text", "warnings"} or {"error"}. Imports only the standard library
and the one parsing library, so a parser bug, a zip bomb or an endless PDF loop costs this
process, never the grading batch.
"""

import json
import sys
import zipfile

_MAX_UNZIPPED = 200_000_000
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _limit(memory_mb: int, cpu_s: float) -> None:
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        cpu = max(1, int(cpu_s) + 1)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass  # no rlimits on this OS: the parent's wall-clock timeout still applies


def _paragraph_text(paragraph, counters: dict) -> str:
    """Paragraph text, with Word's automatic list numbers ("1.") written out as students see them."""
    text = "".join(node.text or "" for node in paragraph.iter(_W + "t"))
    num_pr = paragraph.find(f"{_W}pPr/{_W}numPr")
    if num_pr is not None and text.strip():
        ilvl = num_pr.find(_W + "ilvl")
        num_id = num_pr.find(_W + "numId")
        level = int(ilvl.get(_W + "val", "0")) if ilvl is not None else 0
        key = num_id.get(_W + "val", "0") if num_id is not None else "0"
        if level == 0:
            counters[key] = counters.get(key, 0) + 1
            text = f"{counters[key]}. {text}"
    return text


def extract_docx(path: str, max_chars: int) -> dict:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        return {"error": f"not a Word .docx file ({exc})"}
    with archive:
        names = set(archive.namelist())
        if "word/document.xml" not in names:
            return {"error": "not a Word .docx file (no word/document.xml)"}
        if sum(info.file_size for info in archive.infolist()) > _MAX_UNZIPPED:
            return {"error": "Word file unpacks to more than 200 MB"}
    try:
        import docx
    except ImportError:
        return {"error": "cannot read .docx files: python-docx is not installed"}
    document = docx.Document(path)
    lines, counters, size = [], {}, 0
    for block in document.element.body.iterchildren():
        if block.tag == _W + "p":
            found = [_paragraph_text(block, counters)]
        elif block.tag == _W + "tbl":
            found = [_paragraph_text(p, counters) for p in block.iter(_W + "p")]
        else:
            continue
        for line in found:
            lines.append(line)
            size += len(line) + 1
        if size > max_chars:
            return {"text": "\n".join(lines)[:max_chars], "warnings": [f"text cut at {max_chars} characters"]}
    return {"text": "\n".join(lines), "warnings": []}


def extract_pdf(path: str, max_pages: int, max_chars: int) -> dict:
    with open(path, "rb") as handle:
        head = handle.read(1024)
    if b"%PDF-" not in head:
        return {"error": "not a PDF (no %PDF header)"}
    try:
        from pypdf import PdfReader
    except ImportError:
        return {"error": "cannot read PDF files: pypdf is not installed"}
    reader = PdfReader(path, strict=False)
    if reader.is_encrypted and not reader.decrypt(""):
        return {"error": "PDF is password-protected"}
    warnings = []
    n_pages = len(reader.pages)
    if n_pages > max_pages:
        warnings.append(f"read the first {max_pages} of {n_pages} pages")
    parts, size = [], 0
    for index in range(min(n_pages, max_pages)):
        page_text = reader.pages[index].extract_text() or ""
        parts.append(page_text)
        size += len(page_text)
        if size > max_chars:
            warnings.append(f"text cut at {max_chars} characters")
            break
    return {"text": "\n".join(parts)[:max_chars], "warnings": warnings}


def main(argv: list) -> dict:
    kind, path, max_pages, max_chars, memory_mb, timeout_s = argv
    _limit(int(memory_mb), float(timeout_s))
    try:
        if kind == "docx":
            return extract_docx(path, int(max_chars))
        return extract_pdf(path, int(max_pages), int(max_chars))
    except MemoryError:
        return {"error": "ran out of memory while reading the file"}
    except Exception as exc:  # a malformed file may fail anywhere inside the parser
        return {"error": f"unreadable ({type(exc).__name__}: {str(exc)[:200]})"}


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(sys.argv[1:])))
