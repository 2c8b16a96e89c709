"""Fuzz the request path: URI, header, cookie and body parsing (URL-encoded, multipart, JSON,
XML) and every rule that reads them. Any request must give a verdict or MalformedRequest.

    python fuzz/fuzz_request.py -runs=2000                      # baseline rules (CI)
    MILLIWATT_CRS_DIR=../shared/corpora/crs/rules \
        python fuzz/fuzz_request.py -max_total_time=3600 fuzz/corpus/request   # long run, CRS
"""

from __future__ import annotations

import os
import sys

import atheris

with atheris.instrument_imports():
    from milliwatt.shield.waf import WAF, HttpRequest, HttpResponse, MalformedRequest, WafSettings

CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xYzZY",
    "multipart/form-data",
    "application/json",
    "text/xml",
    "application/soap+xml; charset=utf-8",
    "text/plain",
]
METHODS = ["GET", "POST", "PUT", "OPTIONS", "PROPFIND", "G\x00T", ""]
_WAF: WAF | None = None


def _waf() -> WAF:
    global _WAF
    if _WAF is None:
        # the CRS of $MILLIWATT_CRS_DIR when set, else the baseline rules: short runs stay short
        rules = "crs" if os.environ.get("MILLIWATT_CRS_DIR") else "baseline"
        _WAF = WAF.load(settings=WafSettings(rules=rules))
    return _WAF


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    method = fdp.PickValueInList(METHODS)
    uri = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 200))
    headers = [("Host", "localhost")]
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        headers.append((fdp.ConsumeUnicodeNoSurrogates(12), fdp.ConsumeUnicodeNoSurrogates(60)))
    if fdp.ConsumeBool():
        headers.append(("Content-Type", fdp.PickValueInList(CONTENT_TYPES)))
    if fdp.ConsumeBool():
        headers.append(("Cookie", fdp.ConsumeUnicodeNoSurrogates(80)))
    body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
    tx = _waf().transaction()
    try:
        if tx.process_request(HttpRequest(method, uri, "HTTP/1.1", headers, body)) is None:
            tx.process_response(HttpResponse(200, [("Content-Type", "text/html")], body[:512]))
    except MalformedRequest:
        pass  # refused with 400: the expected answer to unparseable HTTP
    tx.finish()


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
