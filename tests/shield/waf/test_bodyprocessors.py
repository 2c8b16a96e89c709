from __future__ import annotations

import pytest

from milliwatt.shield.waf.bodyprocessors import (
    parse_json,
    parse_multipart,
    parse_urlencoded,
    parse_xml,
)


def test_urlencoded_decodes_and_keeps_repeats() -> None:
    assert parse_urlencoded("a=1&b=%41+B&a=2&flag&=x&&c=%zz") == [
        ("a", "1"), ("b", "A B"), ("a", "2"), ("flag", ""), ("", "x"), ("c", "%zz"),
    ]  # fmt: skip


def test_json_flattens_with_paths() -> None:
    result = parse_json(
        '{"user": {"name": "Zoë", "tags": ["a", 1, true, null]}, "e": {}}'.encode().decode(
            "latin-1"
        )
    )
    assert result.error == ""
    assert result.args == [
        ("json.user.name", "Zoë".encode().decode("latin-1")),
        ("json.user.tags.0", "a"),
        ("json.user.tags.1", "1"),
        ("json.user.tags.2", "true"),
        ("json.user.tags.3", ""),
        ("json.e", ""),
    ]


@pytest.mark.parametrize("body", ['{"a": ', "[1, 2", "not json", '{"a": "\\ud800"', "\xff\xfe"])
def test_malformed_json_is_an_error_not_an_exception(body: str) -> None:
    result = parse_json(body)
    assert result.error.startswith("JSON parsing error")
    assert result.args == []


def test_deep_json_is_refused() -> None:
    assert parse_json("[" * 5000 + "]" * 5000).error


def test_xml_text_and_attributes() -> None:
    result = parse_xml('<a x="1"><b y="2">hi</b> there</a>')
    assert result.xml is not None and result.error == ""


@pytest.mark.parametrize(
    "body",
    [
        "<a><b></a>",
        "",
        "<a>&undefined;</a>",
        '<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>',
    ],
)
def test_malformed_or_external_xml_is_an_error(body: str) -> None:
    result = parse_xml(body)
    assert result.error.startswith("XML parsing error") or result.xml is not None
    if result.xml is not None:  # an external entity is never fetched
        assert "root:" not in "".join(result.xml.itertext())


CT = "multipart/form-data; boundary=XyZ"


def _multipart(*parts: str, end: str = "--XyZ--\r\n") -> str:
    return "".join(f"--XyZ\r\n{p}\r\n" for p in parts) + end


def test_multipart_fields_files_and_part_headers() -> None:
    body = _multipart(
        'Content-Disposition: form-data; name="title"\r\n\r\nhello',
        'Content-Disposition: form-data; name="up"; filename="a.php"\r\nContent-Type: text/plain\r\n\r\n<?php ?>',  # noqa: E501
    )
    result = parse_multipart(body, CT)
    assert result.error == ""
    assert result.args == [("title", "hello")]
    assert result.files == [("up", "a.php")]
    assert result.file_sizes == [("up", "8")]
    assert ("up", "Content-Type: text/plain") in result.part_headers
    assert result.flags["MULTIPART_STRICT_ERROR"] == "0"
    assert result.flags["FILES_COMBINED_SIZE"] == "8"


@pytest.mark.parametrize(
    ("body", "ctype", "flag"),
    [
        (
            '--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n',
            CT,
            "MULTIPART_UNMATCHED_BOUNDARY",
        ),
        ("junk", "multipart/form-data", "MULTIPART_STRICT_ERROR"),
        ("--XyZ\r\nBad Header: x\r\n\r\nx\r\n--XyZ--", CT, "MULTIPART_INVALID_PART"),
        (
            "--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--",
            CT,
            "MULTIPART_INVALID_PART",
        ),
        ('--XyZ\nContent-Disposition: form-data; name="a"\n\nx\n--XyZ--', CT, "MULTIPART_LF_LINE"),
        (
            '--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--XyZ--\r\ntrailing',
            CT,
            "MULTIPART_DATA_AFTER",
        ),
        (
            "preamble\r\n" + _multipart('Content-Disposition: form-data; name="a"\r\n\r\nx'),
            CT,
            "MULTIPART_DATA_BEFORE",
        ),
        (
            _multipart('Content-Disposition: form-data; name="a"\r\n\r\nx'),
            'multipart/form-data; boundary="XyZ"',
            "MULTIPART_BOUNDARY_QUOTED",
        ),
    ],
)
def test_malformed_multipart_raises_flags(body: str, ctype: str, flag: str) -> None:
    result = parse_multipart(body, ctype)
    assert result.flags[flag] == "1"
    assert result.flags["MULTIPART_STRICT_ERROR"] == "1"
