from __future__ import annotations

from pathlib import Path

import pytest

from milliwatt.knowledge.loaders import (
    LoadError,
    discover,
    kind_of_media_type,
    load_file,
    parse_bytes,
)

from .pdf_maker import make_pdf

HTML = b"""<html><head><title>Widget</title></head><body>
<nav>Home | Shop | About</nav>
<article><h1>Widget manual</h1>
<p>The widget measures the humidity of soil in a garden bed.</p>
<h2>Batteries</h2><p>The widget runs for two years on a single AA battery.</p>
</article><footer>Copyright</footer></body></html>"""


def test_markdown_and_text(tmp_path: Path) -> None:
    md = tmp_path / "a.md"
    md.write_text("# Title\n\nBody.", encoding="utf-8")
    doc = load_file(md)
    assert doc.markdown and doc.text == "# Title\n\nBody." and doc.source == str(md.resolve())
    txt = tmp_path / "b.txt"
    txt.write_bytes(b"\xef\xbb\xbfplain")  # a BOM is dropped
    assert load_file(txt).text == "plain" and not load_file(txt).markdown


def test_html_keeps_headings_and_drops_navigation() -> None:
    doc = parse_bytes(HTML, "page.html", "html")
    assert doc.markdown
    assert "## Batteries" in doc.text
    assert "two years" in doc.text
    assert "Home | Shop" not in doc.text


def test_pdf_pages_become_sections() -> None:
    doc = parse_bytes(make_pdf(["Alpha page text.", "Beta page (two)."]), "x.pdf", "pdf")
    assert doc.sections is not None
    assert [s[0] for s in doc.sections] == ["page 1", "page 2"]
    for _heading, start, end in doc.sections:
        assert doc.text[start:end].strip()
    assert "Beta page (two)." in doc.text


def test_content_hash_follows_bytes() -> None:
    a = parse_bytes(b"same", "a", "text")
    assert a.content_hash == parse_bytes(b"same", "b", "text").content_hash
    assert a.content_hash != parse_bytes(b"other", "a", "text").content_hash


def test_discover_walks_folders_and_skips_hidden_and_unsupported(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    for name in ("a.md", "sub/b.html", "sub/c.pdf", "d.png", ".git/e.md", "sub/.f.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = discover([tmp_path])
    assert [p.relative_to(tmp_path.resolve()).as_posix() for p in found] == [
        "a.md",
        "sub/b.html",
        "sub/c.pdf",
    ]


@pytest.mark.parametrize(
    ("data", "kind", "message"),
    [
        (b"\xff\xfe\x00bad", "text", "not UTF-8"),
        (b"a\x00b", "text", "NUL"),
        (b"not a pdf at all", "pdf", "not a readable PDF"),
        (b"<html><body></body></html>", "html", "no readable text"),
        (b"x", "docx", "unknown document kind"),
    ],
)
def test_bad_content_is_named(data: bytes, kind: str, message: str) -> None:
    with pytest.raises(LoadError, match=message) as info:
        parse_bytes(data, "the-source", kind)
    assert "the-source" in str(info.value)


def test_bad_paths_are_named(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no such file"):
        discover([tmp_path / "missing.md"])
    image = tmp_path / "photo.png"
    image.write_bytes(b"x")
    with pytest.raises(LoadError, match=r"unsupported file type '\.png'"):
        discover([image])


def test_media_types() -> None:
    assert kind_of_media_type("text/html; charset=utf-8", "u") == "html"
    assert kind_of_media_type("application/pdf", "u") == "pdf"
    with pytest.raises(LoadError, match="unsupported content type 'image/png'"):
        kind_of_media_type("image/png", "u")
