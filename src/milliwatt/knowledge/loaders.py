"""Turn files (Markdown, text, HTML, PDF) and folders of them into plain documents."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdx"})
TEXT_SUFFIXES = frozenset({".txt", ".text", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES


class LoadError(ValueError):
    """A source could not be read as a document; the message names it and says why."""


@dataclass(frozen=True)
class Document:
    source: str  # a resolved file path or a URL: what citations name
    text: str
    content_hash: str  # of the raw bytes, so an unchanged source is skipped on re-ingest
    markdown: bool = False  # headings in the text open sections
    sections: tuple[tuple[str, int, int], ...] | None = None  # explicit (heading, start, end)


def discover(paths: Iterable[Path]) -> list[Path]:
    """Files to ingest: the named files, and supported files found in named folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and p.suffix.lower() in SUPPORTED_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise LoadError(
                    f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                    f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"
                )
            found.append(path)
        else:
            raise LoadError(f"{path}: no such file or folder")
    return list(dict.fromkeys(p.resolve() for p in found))


def load_file(path: Path) -> Document:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_bytes(data, str(path.resolve()), _kind_of_suffix(path.suffix.lower(), path))


def parse_bytes(data: bytes, source: str, kind: str) -> Document:
    """Parse raw content of a kind ("markdown", "text", "html" or "pdf")."""
    digest = hashlib.sha256(data).hexdigest()
    if kind == "pdf":
        return _parse_pdf(data, source, digest)
    if kind == "html":
        import trafilatura  # 0.2 s to import: only when there is HTML to read

        text = trafilatura.extract(
            data, output_format="markdown", include_tables=True, favor_recall=True
        )
        if not text or not text.strip():
            raise LoadError(f"{source}: no readable text found in this HTML")
        return Document(source, text, digest, markdown=True)
    if kind not in ("markdown", "text"):
        raise LoadError(f"{source}: unknown document kind {kind!r}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"{source}: not UTF-8 text (bad byte at offset {exc.start})") from None
    if "\x00" in text:
        raise LoadError(f"{source}: contains NUL bytes; it looks binary, not text")
    return Document(source, text, digest, markdown=kind == "markdown")


def kind_of_media_type(media_type: str, source: str) -> str:
    """The document kind for an HTTP Content-Type."""
    base = media_type.split(";")[0].strip().lower()
    kinds = {
        "text/html": "html",
        "application/xhtml+xml": "html",
        "application/pdf": "pdf",
        "text/markdown": "markdown",
        "text/x-markdown": "markdown",
        "text/plain": "text",
    }
    if base not in kinds:
        raise LoadError(f"{source}: unsupported content type {base or '(none)'!r}")
    return kinds[base]


def _kind_of_suffix(suffix: str, path: Path) -> str:
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown"
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in PDF_SUFFIXES:
        return "pdf"
    raise LoadError(f"{path}: unsupported file type {suffix or '(none)'!r}")


def _parse_pdf(data: bytes, source: str, digest: str) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise LoadError(f"{source}: the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except PyPdfError as exc:
        raise LoadError(f"{source}: not a readable PDF ({exc})") from None
    # pages become sections, so a citation says which page a passage is on
    parts: list[str] = []
    sections: list[tuple[str, int, int]] = []
    offset = 0
    for number, page in enumerate(pages, start=1):
        if page.strip():
            sections.append((f"page {number}", offset, offset + len(page)))
        parts.append(page)
        offset += len(page) + 2
    if not sections:
        raise LoadError(f"{source}: the PDF has no extractable text (scanned images?)")
    return Document(source, "\n\n".join(parts), digest, sections=tuple(sections))
