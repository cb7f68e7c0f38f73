"""Build the set's Word and PDF answer files from their text sources (standard library only).

    python tests/data/exercise2_lab/make_documents.py [OUT_DIR]

Each sources/NAME.docx.txt becomes NAME.docx and each sources/NAME.pdf.txt becomes NAME.pdf,
written next to this script unless OUT_DIR is given. Source syntax, one paragraph per line:

    #. text      an item of Word's automatic numbered list; Word shows the number, the text has none
    **text**     a bold paragraph (a heading, as students make them)
    (blank)      ignored in a .docx; an empty line in a .pdf

The output is the same bytes on every run (fixed zip dates, uncompressed zip entries, no PDF
dates), so the tests can rebuild the files and compare them with the committed ones.
"""

from __future__ import annotations

import sys
import textwrap
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"
NUMBERED = "#. "

_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_WORD_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

_PAGE_WIDTH, _PAGE_HEIGHT = 595, 842  # A4 in points
_MARGIN, _FONT_SIZE, _LEADING = 56, 11, 14
_LINES_PER_PAGE = 50
_WRAP_CHARS = 82  # fits Helvetica 11pt inside the margins


def _bold(line: str) -> tuple[str, bool]:
    if len(line) > 4 and line.startswith("**") and line.endswith("**"):
        return line[2:-2], True
    return line, False


# --- Word -------------------------------------------------------------------------------------


def _docx_paragraph(line: str) -> str:
    numbered = line.startswith(NUMBERED)
    text, bold = _bold(line[len(NUMBERED) :] if numbered else line)
    properties = '<w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr>' if numbered else ""
    run_properties = "<w:rPr><w:b/></w:rPr>" if bold else ""
    return f'<w:p>{properties}<w:r>{run_properties}<w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'


def _docx_parts(source: str) -> dict[str, str]:
    lines = [line for line in source.splitlines() if line.strip()]
    has_list = any(line.startswith(NUMBERED) for line in lines)
    body = "".join(_docx_paragraph(line) for line in lines)
    section = (
        '<w:sectPr><w:pgSz w:w="11906" w:h="16838"/><w:pgMar w:top="1440" w:right="1440" w:bottom="1440" '
        'w:left="1440" w:header="708" w:footer="708" w:gutter="0"/></w:sectPr>'
    )
    overrides = f'<Override PartName="/word/document.xml" ContentType="{_WORD_TYPE}.document.main+xml"/>'
    document_rels = ""
    parts = {}
    if has_list:
        overrides += f'<Override PartName="/word/numbering.xml" ContentType="{_WORD_TYPE}.numbering+xml"/>'
        document_rels = f'<Relationship Id="rId1" Type="{_DOC_REL}/numbering" Target="numbering.xml"/>'
        parts["word/numbering.xml"] = (
            f'<w:numbering xmlns:w="{_W_NS}"><w:abstractNum w:abstractNumId="0">'
            '<w:multiLevelType w:val="hybridMultilevel"/><w:lvl w:ilvl="0"><w:start w:val="1"/>'
            '<w:numFmt w:val="decimal"/><w:lvlText w:val="%1."/><w:lvlJc w:val="left"/>'
            '<w:pPr><w:ind w:left="720" w:hanging="360"/></w:pPr></w:lvl></w:abstractNum>'
            '<w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num></w:numbering>'
        )
    parts["[Content_Types].xml"] = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        f'<Default Extension="xml" ContentType="application/xml"/>{overrides}</Types>'
    )
    parts["_rels/.rels"] = (
        f'<Relationships xmlns="{_REL_NS}">'
        f'<Relationship Id="rId1" Type="{_DOC_REL}/officeDocument" Target="word/document.xml"/></Relationships>'
    )
    parts["word/_rels/document.xml.rels"] = f'<Relationships xmlns="{_REL_NS}">{document_rels}</Relationships>'
    parts["word/document.xml"] = f'<w:document xmlns:w="{_W_NS}"><w:body>{body}{section}</w:body></w:document>'
    return parts


def write_docx(source: str, path: Path) -> None:
    order = ["[Content_Types].xml", "_rels/.rels", "word/document.xml", "word/_rels/document.xml.rels"]
    parts = _docx_parts(source)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name in order + sorted(set(parts) - set(order)):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            archive.writestr(info, _XML_HEAD + parts[name])


# --- PDF --------------------------------------------------------------------------------------


def _pdf_lines(source: str) -> list[tuple[str, bool]]:
    """The source as (line, bold) pairs, wrapped to the page width; blank lines kept."""
    lines: list[tuple[str, bool]] = []
    for raw in source.splitlines():
        text, bold = _bold(raw.strip())
        wrapped = textwrap.wrap(text, _WRAP_CHARS, break_long_words=False, break_on_hyphens=False)
        lines.extend((piece, bold) for piece in wrapped or [""])
    return lines


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def _page_content(lines: list[tuple[str, bool]]) -> str:
    top = _PAGE_HEIGHT - _MARGIN
    commands = [f"BT /F1 {_FONT_SIZE} Tf {_LEADING} TL {_MARGIN} {top} Td"]
    for text, bold in lines:
        if bold:
            commands.append(f"/F2 {_FONT_SIZE} Tf {_pdf_string(text)} Tj T* /F1 {_FONT_SIZE} Tf")
        else:
            commands.append(f"{_pdf_string(text)} Tj T*" if text else "T*")
    commands.append("ET")
    return "\n".join(commands)


def write_pdf(source: str, path: Path) -> None:
    if not source.isascii():
        raise ValueError(f"{path.name}: PDF sources must be ASCII (the built-in Helvetica font has no other glyphs)")
    lines = _pdf_lines(source)
    pages = [lines[i : i + _LINES_PER_PAGE] for i in range(0, len(lines), _LINES_PER_PAGE)]
    # Objects: 1 catalog, 2 page tree, 3-4 fonts, then a page and its content stream per page.
    page_ids = [5 + 2 * i for i in range(len(pages))]
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{n} 0 R' for n in page_ids)}] /Count {len(pages)} >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    for page_id, page in zip(page_ids, pages, strict=True):
        content = _page_content(page)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_PAGE_WIDTH} {_PAGE_HEIGHT}] /Contents {page_id + 1} 0 R "
            "/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>"
        )
        objects.append(f"<< /Length {len(content)} >>\nstream\n{content}\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("ascii")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("ascii")
    out += b"".join(f"{offset:010d} 00000 n \n".encode("ascii") for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode("ascii")
    path.write_bytes(bytes(out))


# --- What a reader should get back -------------------------------------------------------------


def expected_text(source: str, suffix: str) -> str:
    """The text a reader extracts from the built file: Word list numbers written out, bold marks gone."""
    lines, number = [], 0
    for raw in source.splitlines():
        if not raw.strip():
            continue
        if suffix == ".docx" and raw.startswith(NUMBERED):
            number += 1
            raw = f"{number}. {raw[len(NUMBERED) :]}"
        lines.append(_bold(raw.strip())[0])
    return "\n".join(lines)


def build_all(out_dir: Path = HERE) -> list[Path]:
    """Write every document built from sources/ into out_dir; returns their paths."""
    writers = {".docx": write_docx, ".pdf": write_pdf}
    built = []
    for source in sorted(SOURCES.glob("*.txt")):
        target = Path(out_dir) / source.stem  # "good_07.docx.txt" -> "good_07.docx"
        writer = writers.get(target.suffix)
        if writer is None:
            raise ValueError(f"{source.name}: name it NAME.docx.txt or NAME.pdf.txt")
        writer(source.read_text(encoding="utf-8"), target)
        built.append(target)
    return built


if __name__ == "__main__":
    for written in build_all(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(written)
