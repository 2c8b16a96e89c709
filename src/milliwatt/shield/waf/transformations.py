"""Transformations (`t:name`), registered by name.

Values are `str` holding one byte per character (latin-1), as ModSecurity works on bytes;
every function keeps that invariant (code points above 0xFF are folded to one byte the way
ModSecurity folds them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable

Transformation = Callable[[str], str]
TRANSFORMATIONS: dict[str, Transformation] = {}

_HEX = "0123456789abcdefABCDEF"
_WS = " \t\n\r\f\v\xa0"


def transformation(*names: str) -> Callable[[Transformation], Transformation]:
    def register(fn: Transformation) -> Transformation:
        for name in names:
            TRANSFORMATIONS[name.lower()] = fn
        return fn

    return register


def _fold(code: int) -> str:
    """A code point as one byte: full-width ASCII (U+FF01-FF5E) to ASCII, else the low byte."""
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    return chr(code & 0xFF)


@transformation("lowercase")
def lowercase(value: str) -> str:
    return value.lower() if value.isascii() else _ascii_lower(value)


def _ascii_lower(value: str) -> str:
    return value.translate(_LOWER)


_LOWER = {c: c + 32 for c in range(65, 91)}
_UPPER = {c: c - 32 for c in range(97, 123)}


@transformation("uppercase")
def uppercase(value: str) -> str:
    return value.translate(_UPPER)


_PERCENT = re.compile(r"%(?:[uU]([0-9a-fA-F]{4})|([0-9a-fA-F]{2}))")
_PERCENT_PLAIN = re.compile(r"%([0-9a-fA-F]{2})")


@transformation("urlDecode")
def url_decode(value: str) -> str:
    if "%" not in value and "+" not in value:
        return value
    return _PERCENT_PLAIN.sub(lambda m: chr(int(m.group(1), 16)), value.replace("+", " "))


@transformation("urlDecodeUni")
def url_decode_uni(value: str) -> str:
    if "%" not in value and "+" not in value:
        return value

    def decode(m: re.Match[str]) -> str:
        if m.group(1):
            return _fold(int(m.group(1), 16))
        return chr(int(m.group(2), 16))

    return _PERCENT.sub(decode, value.replace("+", " "))


_ENTITY = re.compile(r"&(?:#[xX]([0-9a-fA-F]+);?|#([0-9]+);?|(quot|amp|lt|gt|nbsp);)", re.I)
_NAMED = {"quot": '"', "amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0"}


@transformation("htmlEntityDecode")
def html_entity_decode(value: str) -> str:
    if "&" not in value:
        return value

    def decode(m: re.Match[str]) -> str:
        if m.group(1):
            return chr(int(m.group(1), 16) & 0xFF)
        if m.group(2):
            return chr(int(m.group(2)) & 0xFF)
        return _NAMED[m.group(3).lower()]

    return _ENTITY.sub(decode, value)


_JS = re.compile(r"\\(?:[uU]([0-9a-fA-F]{4})|[xX]([0-9a-fA-F]{2})|([0-7]{1,3})|(.))", re.S)
_JS_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


@transformation("jsDecode")
def js_decode(value: str) -> str:
    if "\\" not in value:
        return value

    def decode(m: re.Match[str]) -> str:
        if m.group(1):
            return _fold(int(m.group(1), 16))
        if m.group(2):
            return chr(int(m.group(2), 16))
        if m.group(3):
            return chr(int(m.group(3), 8) & 0xFF)
        ch = m.group(4)
        return _JS_SIMPLE.get(ch, ch)

    return _JS.sub(decode, value)


_ESC = re.compile(r"\\(?:[xX]([0-9a-fA-F]{2})|([0-7]{1,3})|([abfnrtv\\?'\"]))")


@transformation("escapeSeqDecode")
def escape_seq_decode(value: str) -> str:
    if "\\" not in value:
        return value

    def decode(m: re.Match[str]) -> str:
        if m.group(1):
            return chr(int(m.group(1), 16))
        if m.group(2):
            return chr(int(m.group(2), 8) & 0xFF)
        ch = m.group(3)
        return _JS_SIMPLE.get(ch, ch)

    return _ESC.sub(decode, value)


_CSS = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\n\f\r]?|(\n)|(.))", re.S)


@transformation("cssDecode")
def css_decode(value: str) -> str:
    if "\\" not in value:
        return value

    def decode(m: re.Match[str]) -> str:
        if m.group(1):
            return _fold(int(m.group(1), 16))
        if m.group(2):
            return ""
        return m.group(3)

    # a lone trailing backslash is dropped, as ModSecurity does
    out = _CSS.sub(decode, value)
    return out[:-1] if out.endswith("\\") and value.endswith("\\") else out


_UTF8 = re.compile("[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


@transformation("utf8toUnicode")
def utf8_to_unicode(value: str) -> str:
    if value.isascii():
        return value

    def encode(m: re.Match[str]) -> str:
        # the code point from the bits, as ModSecurity computes it: surrogates (a lone \ud800
        # in JSON), overlong forms and values past U+10FFFF are not valid UTF-8 to a decoder
        first, *rest = (ord(c) for c in m.group())
        code = first & (0x7F >> (len(rest) + 1))
        for byte in rest:
            code = (code << 6) | (byte & 0x3F)
        return f"%u{code & 0xFFFF:04x}"

    return _UTF8.sub(encode, value)


@transformation("removeNulls")
def remove_nulls(value: str) -> str:
    return value.replace("\x00", "")


@transformation("replaceNulls")
def replace_nulls(value: str) -> str:
    return value.replace("\x00", " ")


_WS_RUN = re.compile(f"[{_WS}]+")
_WS_ALL = {ord(c): None for c in _WS}


@transformation("compressWhitespace")
def compress_whitespace(value: str) -> str:
    return _WS_RUN.sub(" ", value)


@transformation("removeWhitespace")
def remove_whitespace(value: str) -> str:
    return value.translate(_WS_ALL)


_CMD_DROP = {ord(c): None for c in "\\\"'^"}
_CMD_SPACE_BEFORE = re.compile(r"[ ]+(?=[/(])")


@transformation("cmdLine")
def cmd_line(value: str) -> str:
    out = value.translate(_CMD_DROP)
    out = _WS_RUN.sub(" ", out.replace(",", " ").replace(";", " "))
    return _CMD_SPACE_BEFORE.sub("", out).lower()


_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.S)


@transformation("replaceComments")
def replace_comments(value: str) -> str:
    return _COMMENT.sub(" ", value) if "/*" in value else value


_ANY_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)|<!--.*?(?:-->|\Z)|--.*|#.*", re.S)


@transformation("removeComments")
def remove_comments(value: str) -> str:
    return _ANY_COMMENT.sub("", value)


_COMMENT_CHARS = re.compile(r"/\*|\*/|--|#|<!--|-->")


@transformation("removeCommentsChar")
def remove_comments_char(value: str) -> str:
    return _COMMENT_CHARS.sub("", value)


def _normalize(value: str) -> str:
    if "/" not in value:
        return value
    absolute = value.startswith("/")
    trailing = value.endswith("/") or value.endswith("/.") or value.endswith("/..")
    parts: list[str] = []
    for seg in value.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not absolute:
                parts.append("..")
            continue
        parts.append(seg)
    out = ("/" if absolute else "") + "/".join(parts)
    if trailing and parts:
        out += "/"
    return out


@transformation("normalizePath", "normalisePath")
def normalize_path(value: str) -> str:
    return _normalize(value)


@transformation("normalizePathWin", "normalisePathWin")
def normalize_path_win(value: str) -> str:
    return _normalize(value.replace("\\", "/"))


_B64_PREFIX = re.compile(r"[A-Za-z0-9+/]*")


@transformation("base64Decode")
def base64_decode(value: str) -> str:
    data = _B64_PREFIX.match(value.strip()).group()  # type: ignore[union-attr]
    return _b64(data)


@transformation("base64DecodeExt")
def base64_decode_ext(value: str) -> str:
    return _b64(re.sub(r"[^A-Za-z0-9+/]", "", value))


def _b64(data: str) -> str:
    data = data[: len(data) - len(data) % 4 if len(data) % 4 == 1 else len(data)]
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4)).decode("latin-1")
    except (binascii.Error, ValueError):
        return ""


@transformation("base64Encode")
def base64_encode(value: str) -> str:
    return base64.b64encode(value.encode("latin-1")).decode("ascii")


@transformation("hexEncode")
def hex_encode(value: str) -> str:
    return value.encode("latin-1").hex()


@transformation("hexDecode")
def hex_decode(value: str) -> str:
    try:
        return bytes.fromhex(value).decode("latin-1")
    except ValueError:
        return value


@transformation("sha1")
def sha1(value: str) -> str:
    return hashlib.sha1(value.encode("latin-1")).digest().decode("latin-1")


@transformation("md5")
def md5(value: str) -> str:
    return hashlib.md5(value.encode("latin-1")).digest().decode("latin-1")


@transformation("length")
def length(value: str) -> str:
    return str(len(value))


@transformation("trim")
def trim(value: str) -> str:
    return value.strip(_WS)


@transformation("trimLeft")
def trim_left(value: str) -> str:
    return value.lstrip(_WS)


@transformation("trimRight")
def trim_right(value: str) -> str:
    return value.rstrip(_WS)


_SQL_HEX = re.compile(r"0x((?:[0-9a-fA-F]{2})+)")


@transformation("sqlHexDecode")
def sql_hex_decode(value: str) -> str:
    return _SQL_HEX.sub(lambda m: bytes.fromhex(m.group(1)).decode("latin-1"), value)


@transformation("urlEncode")
def url_encode(value: str) -> str:
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*-._")
    return "".join(c if c in safe else "+" if c == " " else f"%{ord(c):02x}" for c in value)


def lookup(name: str) -> Transformation | None:
    return TRANSFORMATIONS.get(name.lower())
