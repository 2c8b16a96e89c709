"""Structure-aware chunking: sections by heading, then paragraphs packed up to a size.

Every chunk is an exact slice of the document text (`text[start:end]`), so a citation's
offsets point at what was retrieved. Neighbouring chunks of a section overlap by the tail
of the previous one, so a sentence cut at a boundary is still whole in one of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# about 200 tokens of English: inside the embedder's 256-token window with its heading
MAX_CHARS = 900
OVERLAP_CHARS = 150

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~)", re.MULTILINE)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Chunk:
    text: str
    heading: str  # the heading path, "Guide > Install > Linux"; "" before any heading
    start: int  # character offsets into the document text
    end: int


@dataclass(frozen=True)
class _Section:
    heading: str
    start: int
    end: int


def chunk_text(
    text: str,
    *,
    markdown: bool = True,
    sections: Sequence[tuple[str, int, int]] | None = None,
    max_chars: int = MAX_CHARS,
    overlap_chars: int = OVERLAP_CHARS,
) -> list[Chunk]:
    """Split a document into chunks that never cross a section.

    Sections are the given (heading, start, end) spans (a PDF's pages), else those opened
    by Markdown headings outside code fences, else (markdown=False) the whole text.
    """
    if max_chars < 100:
        raise ValueError(f"max_chars must be at least 100, got {max_chars}")
    if not 0 <= overlap_chars < max_chars // 2:
        raise ValueError(f"overlap_chars must be in [0, {max_chars // 2}), got {overlap_chars}")
    if sections is not None:
        parts = [_Section(h, s, e) for h, s, e in sections]
    elif markdown:
        parts = _sections(text)
    else:
        parts = [_Section("", 0, len(text))]
    chunks: list[Chunk] = []
    for section in parts:
        # pieces leave room for the overlap that the next chunk repeats
        spans = list(_pieces(text, section.start, section.end, max_chars - overlap_chars))
        for start, end in _pack(text, spans, max_chars, overlap_chars):
            chunks.append(Chunk(text[start:end], section.heading, start, end))
    return chunks


def _sections(text: str) -> list[_Section]:
    fenced = _fenced_ranges(text)
    headings = [
        m for m in _HEADING.finditer(text) if not any(a <= m.start() < b for a, b in fenced)
    ]
    sections: list[_Section] = []
    path: list[tuple[int, str]] = []  # (level, title) of the open headings
    previous_end = 0
    previous_heading = ""
    for m in headings:
        sections.append(_Section(previous_heading, previous_end, m.start()))
        level = len(m.group(1))
        path = [(lvl, title) for lvl, title in path if lvl < level] + [(level, m.group(2))]
        previous_heading = " > ".join(title for _, title in path)
        previous_end = m.end()
    sections.append(_Section(previous_heading, previous_end, len(text)))
    return [s for s in sections if text[s.start : s.end].strip()]


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    marks = [m.start() for m in _FENCE.finditer(text)]
    if len(marks) % 2:
        marks.append(len(text))  # an unclosed fence runs to the end
    return list(zip(marks[::2], marks[1::2], strict=True))


def _pieces(text: str, start: int, end: int, limit: int) -> Iterator[tuple[int, int]]:
    """Paragraph spans, trimmed of blank space; one longer than limit is split by sentence."""
    cursor = start
    for brk in [*_PARAGRAPH_BREAK.finditer(text, start, end), None]:
        stop = brk.start() if brk is not None else end
        span = _trim(text, cursor, stop)
        if span is not None:
            if span[1] - span[0] <= limit:
                yield span
            else:
                yield from _split_long(text, span[0], span[1], limit)
        if brk is not None:
            cursor = brk.end()


def _split_long(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    cursor = start
    while end - cursor > max_chars:
        window = text[cursor : cursor + max_chars]
        cut = max((m.start() for m in _SENTENCE_END.finditer(window)), default=-1)
        if cut < max_chars // 3:
            cut = window.rfind(" ")  # no sentence end: fall back to a word boundary
        if cut < max_chars // 3:
            cut = max_chars  # one enormous word: cut it
        yield cursor, cursor + cut
        cursor += cut
        while cursor < end and text[cursor].isspace():
            cursor += 1
    if cursor < end:
        yield cursor, end


def _pack(
    text: str, spans: list[tuple[int, int]], max_chars: int, overlap_chars: int
) -> Iterator[tuple[int, int]]:
    """Greedily join neighbouring spans up to max_chars, each chunk starting with overlap."""
    if not spans:
        return
    chunk_start, chunk_end = spans[0]
    for start, end in spans[1:]:
        if end - chunk_start <= max_chars:
            chunk_end = end
            continue
        yield chunk_start, chunk_end
        chunk_start = _overlap_start(text, chunk_start, chunk_end, start, overlap_chars)
        if end - chunk_start > max_chars:
            chunk_start = start
        chunk_end = end
    yield chunk_start, chunk_end


def _overlap_start(text: str, prev_start: int, prev_end: int, next_start: int, size: int) -> int:
    """Where the next chunk begins so that it repeats about `size` characters, at a word."""
    if size == 0:
        return next_start
    candidate = max(prev_start, prev_end - size)
    sentence = _SENTENCE_END.search(text, candidate, prev_end)
    if sentence is not None:
        begin = sentence.end()
    else:
        space = text.find(" ", candidate, prev_end)
        begin = space + 1 if space != -1 else next_start
    while begin < next_start and text[begin].isspace():
        begin += 1
    return begin


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
