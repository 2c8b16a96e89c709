"""How often the WAF blocks benign traffic: chat-completion requests built from real prompts.

    python bench/waf_false_positives.py [--paranoia N] [--every K] [--rules DIR]

The prompts: BIPIA's clean contexts (emails, tables, code answers) with their questions, BFCL
questions sent with their function definitions as OpenAI `tools`, and GSM8K questions. Each is
POSTed as JSON to /v1/chat/completions through WafMiddleware in blocking mode, in front of an
app that answers 200. Prints the blocked rate per source and the rules behind each block;
ends with one line of key=value figures. The goal is a blocked rate <= 0.1% at paranoia 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / ".." / "shared" / "corpora"
SYSTEM = "You are milliwatt, a helpful assistant. Answer briefly and plainly."
HEADERS = {
    "content-type": "application/json",
    "accept": "application/json",
    "user-agent": "OpenAI/Python 1.40.0",
    "authorization": "Bearer sk-local-0123456789abcdef",
}


@dataclass(frozen=True)
class Benign:
    source: str  # corpus and line, e.g. "gsm8k:17"
    body: bytes  # the chat-completion request


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                yield number, json.loads(line)


def _chat(user: str, **extra: object) -> bytes:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    # encoded as the OpenAI client sends it (httpx: compact, UTF-8 as is)
    payload = {"model": "milliwatt", "messages": messages, **extra}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _tool(function: dict) -> dict:
    params = dict(function.get("parameters") or {})
    if params.get("type") == "dict":  # BFCL's spelling of a JSON-schema object
        params["type"] = "object"
    spec = {
        "name": function["name"].replace(".", "_"),
        "description": function.get("description", ""),
    }
    return {"type": "function", "function": {**spec, "parameters": params}}


def benign_requests(corpora: Path, every: int = 1) -> list[Benign]:
    """Every `every`-th prompt of each corpus, as chat-completion bodies."""
    out: list[Benign] = []
    bipia = corpora / "injection" / "bipia"
    for kind in ("email", "table", "code"):
        for n, row in _jsonl(bipia / kind / "train.jsonl"):
            context = row["context"]
            if isinstance(context, list):
                context = "\n".join(context)
            question = row.get("question") or "What is wrong with this code and how do I fix it?"
            if kind == "code":
                question += (
                    "\n" + "\n".join(row.get("error", [])) + "\n" + "\n".join(row.get("code", []))
                )
            out.append(Benign(f"bipia-{kind}:{n}", _chat(f"Context:\n{context}\n\n{question}")))
    for path in sorted((corpora / "bfcl").glob("BFCL_v4_*.json")):
        for n, row in _jsonl(path):
            turns = row["question"][0]
            user = next(m["content"] for m in turns if m["role"] == "user")
            tools = [_tool(f) for f in row.get("function", [])]
            out.append(Benign(f"bfcl-{path.stem[8:]}:{n}", _chat(user, tools=tools)))
    for n, row in _jsonl(corpora / "gsm8k" / "test.jsonl"):
        out.append(Benign(f"gsm8k:{n}", _chat(row["question"])))
    return [b for i, b in enumerate(out) if i % every == 0]


async def _ok(scope: dict, receive: object, send: object) -> None:
    body = b'{"choices": []}'
    await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})  # type: ignore[operator]


async def run_through_waf(requests: list[Benign], waf: object, audit: Path | None) -> list[int]:
    """The status each request got from WafMiddleware in front of an app that answers 200."""
    import httpx

    from milliwatt.shield.http import WafMiddleware

    app = WafMiddleware(_ok, waf, audit)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    statuses: list[int] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for req in requests:
            r = await client.post("/v1/chat/completions", content=req.body, headers=HEADERS)
            statuses.append(r.status_code)
    return statuses


def modsecurity_statuses(requests: list[Benign], paranoia: int) -> list[bool]:
    """For each request, whether nginx+ModSecurity with the same CRS let it through."""
    import shutil
    import subprocess
    import tempfile

    import waf_vs_modsecurity as vs  # beside this script

    vs.ensure_nginx()
    work = Path(tempfile.mkdtemp(prefix="waf-fp-"))
    procs: list[subprocess.Popen] = []
    try:
        _, port = vs.start_nginx(work, paranoia, procs)
        head = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
        return [
            vs.verdict(port, (
                f"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n{head}"
                f"Content-Length: {len(r.body)}\r\n\r\n"
            ).encode() + r.body) == "passed"
            for r in requests
        ]  # fmt: skip
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paranoia", type=int, default=1, choices=(1, 2, 3, 4))
    ap.add_argument("--every", type=int, default=1, help="use every K-th prompt")
    ap.add_argument("--rules", type=Path, default=CORPORA / "crs" / "rules")
    ap.add_argument("--audit-log", type=Path, default=None, help="keep the audit records here")
    ap.add_argument(
        "--modsecurity", action="store_true", help="also send them through nginx+ModSecurity"
    )
    ap.add_argument(
        "--no-api-exclusions", action="store_true",
        help="plain CRS, without the exclusions `milliwatt serve` loads for its chat API",
    )  # fmt: skip
    args = ap.parse_args()
    if not CORPORA.is_dir() or not args.rules.is_dir():
        sys.exit(f"corpora or CRS rules not found ({CORPORA}, {args.rules})")
    sys.path.insert(0, str(ROOT / "src"))
    from milliwatt.shield.auditlog import read_records
    from milliwatt.shield.http import api_exclusions, load_waf

    audit = args.audit_log or Path(f"/tmp/milliwatt-fp-{time.time_ns()}.jsonl")
    extra = "" if args.no_api_exclusions else api_exclusions()
    waf = load_waf(crs_dir=args.rules, paranoia=args.paranoia, extra_rules=extra)
    requests = benign_requests(CORPORA, args.every)
    started = time.perf_counter()
    statuses = asyncio.run(run_through_waf(requests, waf, audit))
    seconds = time.perf_counter() - started
    per_source: dict[str, Counter] = defaultdict(Counter)
    for req, status in zip(requests, statuses, strict=True):
        per_source[req.source.split(":")[0]][status == 200] += 1
    setup = "plain CRS" if args.no_api_exclusions else "CRS + milliwatt API exclusions"
    print(f"{len(requests)} benign chat requests, paranoia {args.paranoia}, {setup}, {waf.source}")
    for source, c in sorted(per_source.items()):
        total = c[True] + c[False]
        rate = 100 * c[False] / total
        print(f"  {source:22s} {total:5d} requests  {c[False]:3d} blocked ({rate:.2f}%)")
    blocked = [r for r in read_records(audit) if r.get("status")] if audit.exists() else []
    by_rule: Counter = Counter()
    examples: dict[int, str] = {}
    for record in blocked:
        for m in record["matched_rules"]:
            if m["id"] < 949000:
                by_rule[(m["id"], m["msg"])] += 1
                examples.setdefault(m["id"], m["data"][:160])
    for (rule, msg), n in by_rule.most_common(12):
        print(f"  rule {rule} x{n}: {msg}\n      e.g. {examples[rule]}")
    n_blocked = sum(s != 200 for s in statuses)
    rate = 100.0 * n_blocked / max(len(statuses), 1)
    print(f"blocked rate: {rate:.3f}% ({n_blocked}/{len(statuses)}), audit log {audit}")
    figures = (
        f"fp_rate_pct={rate:.3f} blocked={n_blocked} total={len(statuses)} "
        f"paranoia={args.paranoia} api_exclusions={int(not args.no_api_exclusions)} "
        f"ms_per_request={1000 * seconds / max(len(statuses), 1):.2f}"
    )
    if args.modsecurity:
        passed = modsecurity_statuses(requests, args.paranoia)
        ms_blocked = sum(not p for p in passed)
        both = sum(not p and s != 200 for p, s in zip(passed, statuses, strict=True))
        ms_rate = 100.0 * ms_blocked / max(len(passed), 1)
        print(f"nginx+ModSecurity, same CRS: {ms_rate:.3f}% blocked ({ms_blocked}); "
              f"blocked by both: {both}")  # fmt: skip
        for req, ok, status in zip(requests, passed, statuses, strict=True):
            if ok != (status == 200):
                print(f"  verdicts differ on {req.source}: ModSecurity "
                      f"{'passed' if ok else 'blocked'}, milliwatt {status}")  # fmt: skip
        figures += f" modsecurity_fp_rate_pct={ms_rate:.3f} blocked_by_both={both}"
    print(figures)


if __name__ == "__main__":
    main()
