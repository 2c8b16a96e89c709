"""Request body processors: URLENCODED, MULTIPART, JSON, XML.

Each takes the body (latin-1 `str`, one char per byte) and returns what it found; malformed
input never raises, it comes back as `error` (ModSecurity's REQBODY_ERROR) with a message.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from milliwatt.shield.waf.transformations import url_decode

_JSON_MAX_DEPTH = 1024  # ModSecurity's default SecRequestBodyJsonDepthLimit


@dataclass
class BodyResult:
    args: list[tuple[str, str]] = field(default_factory=list)
    files: list[tuple[str, str]] = field(default_factory=list)  # field name -> file name
    file_sizes: list[tuple[str, str]] = field(default_factory=list)
    part_headers: list[tuple[str, str]] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)  # MULTIPART_* variables
    xml: ET.Element | None = None
    error: str = ""


def parse_urlencoded(text: str) -> list[tuple[str, str]]:
    """`a=1&b=%41` -> [("a", "1"), ("b", "A")]; a name without `=` gets "" as value."""
    args: list[tuple[str, str]] = []
    for piece in text.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        args.append((url_decode(name), url_decode(value)))
    return args


def urlencoded(body: str, content_type: str = "") -> BodyResult:
    return BodyResult(args=parse_urlencoded(body))


def _flatten(value: object, prefix: str, out: list[tuple[str, str]], depth: int) -> None:
    if depth > _JSON_MAX_DEPTH:
        raise ValueError("JSON nesting too deep")
    if isinstance(value, dict):
        if not value:
            out.append((prefix, ""))
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}", out, depth + 1)
    elif isinstance(value, list):
        if not value:
            out.append((prefix, ""))
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}.{i}", out, depth + 1)
    elif value is None:
        out.append((prefix, ""))
    elif isinstance(value, bool):
        out.append((prefix, "true" if value else "false"))
    elif isinstance(value, str):
        out.append((prefix, value.encode("utf-8", "surrogatepass").decode("latin-1")))
    else:
        out.append((prefix, json.dumps(value)))


def parse_json(body: str, content_type: str = "") -> BodyResult:
    """Flattens to ARGS named like `json.user.name`, `json.items.0`."""
    try:
        doc = json.loads(body.encode("latin-1").decode("utf-8"))
        args: list[tuple[str, str]] = []
        _flatten(doc, "json", args, 0)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        return BodyResult(error=f"JSON parsing error: {str(exc)[:120]}")
    return BodyResult(args=args)


def parse_xml(body: str, content_type: str = "") -> BodyResult:
    # expat does not fetch external entities; entity expansion is bounded by expat itself
    try:
        parser = ET.XMLParser()
        parser.feed(body.encode("latin-1"))
        root = parser.close()
    except ET.ParseError as exc:
        return BodyResult(error=f"XML parsing error: {exc}")
    return BodyResult(xml=root)


_BOUNDARY = re.compile(r"boundary\s*=\s*(\"[^\"]*\"|[^;,\s]*)", re.I)
_DISPOSITION_PARAM = re.compile(r';\s*([a-zA-Z*]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def parse_multipart(body: str, content_type: str) -> BodyResult:
    result = BodyResult()
    flags = {k: "0" for k in _MULTIPART_FLAGS}
    result.flags = flags
    m = _BOUNDARY.search(content_type)
    if m is None or not m.group(1).strip('"'):
        result.error = "Multipart: Boundary not found in C-T."
        flags["MULTIPART_STRICT_ERROR"] = "1"
        return result
    raw = m.group(1)
    boundary = raw.strip('"')
    if raw.startswith('"'):
        flags["MULTIPART_BOUNDARY_QUOTED"] = "1"
    if re.search(r"boundary\s+=|=\s+", content_type[m.start() :], re.I):
        flags["MULTIPART_BOUNDARY_WHITESPACE"] = "1"
    delimiter = "--" + boundary
    first = body.find(delimiter)
    if first < 0:
        result.error = "Multipart: final boundary missing."
        flags["MULTIPART_UNMATCHED_BOUNDARY"] = flags["MULTIPART_STRICT_ERROR"] = "1"
        return result
    if body[:first].strip("\r\n"):
        flags["MULTIPART_DATA_BEFORE"] = "1"
    chunks = body[first + len(delimiter) :].split("\n" + delimiter)
    closed = False
    for index, chunk in enumerate(chunks):
        if chunk.startswith("--"):
            closed = True
            if chunk[2:].strip("\r\n"):
                flags["MULTIPART_DATA_AFTER"] = "1"
            break
        if index == len(chunks) - 1 and not chunk.strip("\r\n-"):
            break
        if not _parse_part(chunk.removesuffix("\r"), result, flags):
            break
    if not closed and not result.error:
        result.error = "Multipart: final boundary missing."
        flags["MULTIPART_UNMATCHED_BOUNDARY"] = "1"
    sizes = 0
    for _, size in result.file_sizes:
        sizes += int(size)
    flags["FILES_COMBINED_SIZE"] = str(sizes)
    strict = ("MULTIPART_BOUNDARY_QUOTED", "MULTIPART_BOUNDARY_WHITESPACE", "MULTIPART_DATA_BEFORE",
              "MULTIPART_DATA_AFTER", "MULTIPART_HEADER_FOLDING", "MULTIPART_LF_LINE",
              "MULTIPART_MISSING_SEMICOLON", "MULTIPART_INVALID_QUOTING", "MULTIPART_INVALID_PART",
              "MULTIPART_INVALID_HEADER_FOLDING", "MULTIPART_FILE_LIMIT_EXCEEDED")  # fmt: skip
    if result.error or any(flags[k] == "1" for k in strict):
        flags["MULTIPART_STRICT_ERROR"] = "1"
    return result


_MULTIPART_FLAGS = (
    "MULTIPART_BOUNDARY_QUOTED", "MULTIPART_BOUNDARY_WHITESPACE", "MULTIPART_DATA_AFTER",
    "MULTIPART_DATA_BEFORE", "MULTIPART_FILE_LIMIT_EXCEEDED", "MULTIPART_HEADER_FOLDING",
    "MULTIPART_INVALID_HEADER_FOLDING", "MULTIPART_INVALID_PART", "MULTIPART_INVALID_QUOTING",
    "MULTIPART_LF_LINE", "MULTIPART_MISSING_SEMICOLON", "MULTIPART_STRICT_ERROR",
    "MULTIPART_UNMATCHED_BOUNDARY", "MULTIPART_CRLF_LF_LINES",
)  # fmt: skip


_BAD_PART_HEADER = (
    "Multipart parsing error: Multipart: Invalid part header (contains invalid character)."
)


def _parse_part(chunk: str, result: BodyResult, flags: dict[str, str]) -> bool:
    """One part after its boundary line; False (with result.error set) stops parsing."""
    if chunk.startswith("\r\n"):
        chunk = chunk[2:]
    elif chunk.startswith("\n"):
        chunk = chunk[1:]
        flags["MULTIPART_LF_LINE"] = "1"
    else:
        result.error = "Multipart: Invalid boundary in part (data after boundary)."
        flags["MULTIPART_INVALID_PART"] = "1"
        return False
    head, sep, content = chunk.partition("\r\n\r\n")
    if not sep:
        head, sep, content = chunk.partition("\n\n")
        if sep:
            flags["MULTIPART_LF_LINE"] = "1"
    if not sep:
        result.error = "Multipart: Invalid part header (header not terminated)."
        flags["MULTIPART_INVALID_PART"] = "1"
        return False
    lines: list[str] = []
    for line in head.replace("\r\n", "\n").split("\n"):
        if line[:1] in (" ", "\t") and lines:
            flags["MULTIPART_HEADER_FOLDING"] = "1"
            lines[-1] += " " + line.strip()
            continue
        lines.append(line)
    name: str | None = None
    filename: str | None = None
    for line in lines:
        key, colon, value = line.partition(":")
        if (
            not colon
            or not key
            or any(c in key for c in " \t")
            or not all(0x21 <= ord(c) <= 0x7E for c in key)
        ):
            result.error = _BAD_PART_HEADER
            flags["MULTIPART_INVALID_PART"] = "1"
            return False
        if key.lower() == "content-disposition":
            value = value.strip()
            if not value.lower().startswith("form-data"):
                result.error = "Multipart: Invalid Content-Disposition header."
                flags["MULTIPART_INVALID_PART"] = "1"
                return False
            rest = value[len("form-data") :]
            if rest and not rest.lstrip().startswith(";"):
                flags["MULTIPART_MISSING_SEMICOLON"] = "1"
            for pm in _DISPOSITION_PARAM.finditer(rest):
                pname, pvalue = pm.group(1).lower(), pm.group(2).strip()
                if pvalue.startswith('"'):
                    pvalue = pvalue[1:-1].replace('\\"', '"').replace("\\\\", "\\")
                elif "'" in pvalue:
                    flags["MULTIPART_INVALID_QUOTING"] = "1"
                if pname == "name":
                    name = pvalue
                elif pname in ("filename", "filename*"):
                    filename = pvalue
    if name is None:
        result.error = "Multipart: Part missing name."
        flags["MULTIPART_INVALID_PART"] = "1"
        return False
    for line in lines:
        result.part_headers.append((name, line))
    flags["MULTIPART_NAME"] = name
    if filename is not None:
        flags["MULTIPART_FILENAME"] = filename
        result.files.append((name, filename))
        result.file_sizes.append((name, str(len(content))))
    else:
        result.args.append((name, content))
    return True


PROCESSORS = {
    "URLENCODED": urlencoded,
    "MULTIPART": parse_multipart,
    "JSON": parse_json,
    "XML": parse_xml,
}
