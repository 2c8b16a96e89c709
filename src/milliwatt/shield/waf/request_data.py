"""Filling a transaction's variables from the request and response."""

from __future__ import annotations

import re
from typing import Protocol

from milliwatt.shield.waf.api import HttpRequest, HttpResponse, Interruption
from milliwatt.shield.waf.bodyprocessors import PROCESSORS, parse_urlencoded
from milliwatt.shield.waf.ruleset import RuleSet
from milliwatt.shield.waf.variables import TxData

_PERCENT = re.compile(r"%([0-9a-fA-F]{2})")


class Loading(Protocol):
    """What loading request and response data reads and sets: a transaction's data side."""

    data: TxData
    engine: str
    body_processor: str | None
    force_request_body: bool
    request_body_access: bool
    response_body_access: bool
    request_body_limit: int
    response_body_limit: int
    interruption: Interruption | None
    log_lines: list[str]

    @property
    def ruleset(self) -> RuleSet: ...

    def data_changed(self) -> None: ...


def _latin1(text: str) -> str:
    """Header and URI text as one char per byte (non-latin-1 input is taken as UTF-8)."""
    try:
        text.encode("latin-1")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("latin-1")


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def parse_cookies(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    cookies: list[tuple[str, str]] = []
    for k, v in headers:
        if k.lower() != "cookie":
            continue
        for piece in v.split(";"):
            piece = piece.strip()
            if not piece:
                continue
            name, _, value = piece.partition("=")
            cookies.append((name.strip(), value.strip()))
    return cookies


def load_request(tx: Loading, request: HttpRequest) -> None:
    tx.data_changed()
    s, c = tx.data.scalars, tx.data.collections
    uri = _latin1(request.uri)
    headers = [(_latin1(k), _latin1(v)) for k, v in request.headers]
    path_and_query = uri
    if not uri.startswith("/") and "://" in uri.split("?", 1)[0]:  # absolute form
        after = uri.split("://", 1)[1]
        slash = after.find("/")
        path_and_query = after[slash:] if slash >= 0 else ""
    path, qmark, query = path_and_query.partition("?")
    # ModSecurity exposes the path percent-decoded (REQUEST_URI keeps it raw)
    path = _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), path.split("#", 1)[0])
    query = query.split("#", 1)[0]
    basename = path.replace("\\", "/").rsplit("/", 1)[-1]
    s.update(
        REQUEST_METHOD=_latin1(request.method),
        REQUEST_URI=uri,
        REQUEST_URI_RAW=uri,
        REQUEST_FILENAME=path,
        REQUEST_BASENAME=basename,
        PATH_INFO=path,
        QUERY_STRING=query,
        REQUEST_PROTOCOL=_latin1(request.version),
        REQUEST_LINE=f"{_latin1(request.method)} {uri} {_latin1(request.version)}",
        SERVER_NAME=(_header(headers, "host") or "").split(":", 1)[0],
    )
    args_get = parse_urlencoded(query) if qmark else []
    c["ARGS_GET"] = args_get
    c["ARGS"] = list(args_get)
    c["REQUEST_HEADERS"] = headers
    c["REQUEST_COOKIES"] = parse_cookies(headers)
    _combined_size(tx)
    ctype = (_header(headers, "content-type") or "").lower()
    if ctype.startswith("application/x-www-form-urlencoded"):
        tx.body_processor = "URLENCODED"
    elif ctype.startswith("multipart/form-data"):
        tx.body_processor = "MULTIPART"
    if tx.body_processor:
        s["REQBODY_PROCESSOR"] = tx.body_processor


def _combined_size(tx: Loading) -> None:
    total = sum(len(k) + len(v) for k, v in tx.data.collections["ARGS"])
    tx.data.scalars["ARGS_COMBINED_SIZE"] = str(total)


def load_request_body(tx: Loading, body: bytes) -> None:
    tx.data_changed()
    s, c = tx.data.scalars, tx.data.collections
    limit = tx.request_body_limit
    s["REQUEST_BODY_LENGTH"] = str(len(body))
    if not tx.request_body_access:
        return
    if len(body) > limit:
        s["INBOUND_DATA_ERROR"] = "1"
        if tx.engine == "on":  # what is past the limit would go uninspected: refuse, as ModSecurity
            tx.interruption = Interruption(413, 0, "deny", f"request body over {limit} bytes")
            return
        body = body[:limit]
    text = body.decode("latin-1")
    processor = tx.body_processor
    if processor in (None, "URLENCODED") or tx.force_request_body:
        s["REQUEST_BODY"] = text
    if not body or processor is None:
        return
    parse = PROCESSORS.get(processor)
    if parse is None:
        s["REQBODY_ERROR"] = "1"
        s["REQBODY_ERROR_MSG"] = f"unknown body processor {processor}"
        return
    ctype = _header(c["REQUEST_HEADERS"], "content-type") or ""
    result = parse(text, ctype)
    arguments_limit = tx.ruleset.arguments_limit
    if arguments_limit and len(result.args) > arguments_limit and not result.error:
        # as ModSecurity: the rest goes uninspected, so the body counts as unparsed (200002)
        result.args = result.args[:arguments_limit]
        result.error = f"Request exceeded SecArgumentsLimit ({arguments_limit})"
    if result.error:
        s["REQBODY_ERROR"] = s["REQBODY_PROCESSOR_ERROR"] = "1"
        s["REQBODY_ERROR_MSG"] = result.error
        tx.log_lines.append(f"Request body processing error: {result.error}")
    c["ARGS_POST"] = result.args
    c["ARGS"] = c["ARGS_GET"] + result.args
    c["FILES"] = result.files
    c["FILES_SIZES"] = result.file_sizes
    c["MULTIPART_PART_HEADERS"] = result.part_headers
    s.update(result.flags)
    if result.xml is not None:
        tx.data.xml = result.xml
    _combined_size(tx)


def load_response(tx: Loading, response: HttpResponse, with_body: bool) -> None:
    tx.data_changed()
    s, c = tx.data.scalars, tx.data.collections
    if not with_body:
        headers = [(_latin1(k), _latin1(v)) for k, v in response.headers]
        c["RESPONSE_HEADERS"] = headers
        s["RESPONSE_STATUS"] = str(response.status)
        s["RESPONSE_PROTOCOL"] = s.get("REQUEST_PROTOCOL", "HTTP/1.1")
        s["STATUS_LINE"] = f"{s['RESPONSE_PROTOCOL']} {response.status}"
        ctype = _header(headers, "content-type") or ""
        s["RESPONSE_CONTENT_TYPE"] = ctype
        length = _header(headers, "content-length")
        if length is not None:
            s["RESPONSE_CONTENT_LENGTH"] = length
        return
    if not tx.response_body_access:
        return
    mime = s.get("RESPONSE_CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if mime not in tx.ruleset.response_mime_types:
        return
    body = response.body[: tx.response_body_limit]
    if len(response.body) > len(body):
        s["OUTBOUND_DATA_ERROR"] = "1"
    s["RESPONSE_BODY"] = body.decode("latin-1")
