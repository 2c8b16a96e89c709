from __future__ import annotations

import pytest

from milliwatt.shield.waf.transformations import TRANSFORMATIONS

CASES = [
    ("lowercase", "SeLeCT\xc4", "select\xc4"),  # bytes above ASCII untouched, as in C's tolower
    ("urlDecode", "a%20b+c%zz%4", "a b c%zz%4"),
    ("urlDecodeUni", "%u0041%uff1c%41+x", "A<A x"),  # full-width < folds to ASCII
    ("htmlEntityDecode", "&lt;a&#x41;&#66&quot;&nbsp;&bogus;", '<aAB"\xa0&bogus;'),
    ("htmlEntityDecode", "&#00000000000000000000000123;", "{"),
    ("jsDecode", "\\x41\\u0042\\n\\'\\101", "AB\n'A"),
    ("cssDecode", "\\6a\\61 vascript\\:", "javascript:"),
    ("escapeSeqDecode", "\\n\\x41\\101\\q", "\nAA\\q"),
    ("cmdLine", "C^a\"t /E'T\\c/p,a;s  (s", "cat/etc/p a s(s"),
    ("compressWhitespace", "a \t\n\xa0 b", "a b"),
    ("removeWhitespace", "s e\tl\xa0ect", "select"),
    ("removeNulls", "a\x00b", "ab"),
    ("replaceNulls", "a\x00b", "a b"),
    ("replaceComments", "un/**/ion/* sel", "un ion "),
    ("removeCommentsChar", "un/**/ion--#", "union"),
    ("normalizePath", "/a/./b/../../../c//d/", "/c/d/"),
    ("normalizePathWin", "\\a\\..\\b\\c", "/b/c"),
    ("base64Decode", "c2VsZWN0!!!", "select"),
    ("base64DecodeExt", "c2Vs ZW.N0", "select"),
    ("hexEncode", "A\xff", "41ff"),
    ("hexDecode", "414243", "ABC"),
    ("length", "abc\x00", "4"),
    ("trim", " \t a \n", "a"),
    ("sqlHexDecode", "0x414243 x", "ABC x"),
    ("utf8toUnicode", "a\xc3\xa9\xe2\x82\xac", "a%u00e9%u20ac"),
    # a lone surrogate (JSON's \ud800), an overlong form, past U+10FFFF: no crash, the bits
    ("utf8toUnicode", "\xed\xa0\x80 \xe0\x80\xaf \xf4\x90\x80\x80", "%ud800 %u002f %u0000"),
]


@pytest.mark.parametrize(("name", "value", "expected"), CASES)
def test_transformation(name: str, value: str, expected: str) -> None:
    assert TRANSFORMATIONS[name.lower()](value) == expected


def test_sha1_is_binary_digest() -> None:
    out = TRANSFORMATIONS["sha1"]("abc")
    assert (
        len(out) == 20
        and TRANSFORMATIONS["hexencode"](out) == "a9993e364706816aba3e25717850c26c9cd0d89d"
    )


@pytest.mark.parametrize("name", sorted(TRANSFORMATIONS))
def test_every_transformation_keeps_one_byte_per_char_and_survives_garbage(name: str) -> None:
    garbage = "".join(chr(i) for i in range(256)) + "%u%uZZZZ%%\\x\\u12&#x;&#;\\"
    out = TRANSFORMATIONS[name](garbage)
    assert all(ord(ch) < 256 for ch in out)
