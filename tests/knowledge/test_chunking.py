from __future__ import annotations

import itertools

import pytest

from milliwatt.knowledge.chunking import chunk_text

GUIDE = """Preface line before any heading.

# Guide

Short intro paragraph.

## Install

```
# a comment in a code block, not a heading
pip install widget
```

Then run it.

## Use

{body}

# Appendix
Last words.
"""


def _guide() -> str:
    body = " ".join(f"Sentence {i} explains step {i} of the procedure." for i in range(80))
    return GUIDE.format(body=body)


def test_chunks_are_exact_slices_with_heading_paths() -> None:
    text = _guide()
    chunks = chunk_text(text)
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
    headings = [c.heading for c in chunks]
    assert headings[0] == ""
    assert "Guide > Install" in headings
    assert headings[-1] == "Appendix"
    # the '#' line inside the fence stayed in the Install section's text
    install = next(c for c in chunks if c.heading == "Guide > Install")
    assert "# a comment in a code block" in install.text
    assert "Then run it." in install.text


def test_long_section_is_split_within_size_and_overlaps() -> None:
    text = _guide()
    use = [
        c for c in chunk_text(text, max_chars=400, overlap_chars=80) if c.heading == "Guide > Use"
    ]
    assert len(use) >= 5
    for chunk in use:
        assert len(chunk.text) <= 400
    for previous, following in itertools.pairwise(use):
        assert following.start < previous.end, "neighbouring chunks should overlap"
        assert previous.end - following.start <= 80
    # splits fall between sentences
    assert all(c.text.endswith(".") for c in use)
    # nothing of the section is lost
    covered = set()
    for chunk in use:
        covered.update(range(chunk.start, chunk.end))
    section = text.index("Sentence 0")
    section_end = text.index("procedure.", text.index("Sentence 79")) + len("procedure.")
    assert set(range(section, section_end)) <= covered


def test_paragraphs_are_packed_and_chunks_never_cross_headings() -> None:
    text = "# A\n\none.\n\ntwo.\n\nthree.\n\n# B\n\nfour."
    chunks = chunk_text(text)
    assert [(c.heading, c.text) for c in chunks] == [
        ("A", "one.\n\ntwo.\n\nthree."),
        ("B", "four."),
    ]


def test_plain_text_and_explicit_sections() -> None:
    text = "# not a heading in plain text\n\nbody"
    assert [c.heading for c in chunk_text(text, markdown=False)] == [""]
    paged = "first page\n\nsecond page"
    chunks = chunk_text(paged, sections=[("page 1", 0, 10), ("page 2", 12, 23)])
    assert [(c.heading, c.text) for c in chunks] == [
        ("page 1", "first page"),
        ("page 2", "second page"),
    ]


def test_one_enormous_word_is_cut() -> None:
    text = "x" * 2500
    chunks = chunk_text(text, markdown=False, max_chars=1000, overlap_chars=0)
    assert "".join(c.text for c in chunks) == text
    assert all(len(c.text) <= 1000 for c in chunks)


def test_empty_and_bad_settings() -> None:
    assert chunk_text("   \n\n  ") == []
    with pytest.raises(ValueError, match="max_chars"):
        chunk_text("x", max_chars=10)
    with pytest.raises(ValueError, match="overlap_chars"):
        chunk_text("x", max_chars=200, overlap_chars=150)
