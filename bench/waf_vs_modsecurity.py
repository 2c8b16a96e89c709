"""milliwatt's WAF against nginx + ModSecurity v3, both running the same OWASP CRS v4 rules.

    python bench/waf_vs_modsecurity.py [--paranoia N] [--seconds S] [--rounds N] [--limit N]

One run: installs Debian's nginx with libnginx-mod-http-modsecurity when missing (needs root),
starts one nginx upstream on loopback, nginx+ModSecurity (one worker) and
`milliwatt shield proxy` (one worker) in front of it, sends every request of the CRS regression
tests once to each (verdict: passed = the upstream answered, blocked = it did not), then loads
each with wrk cycling through the same requests, in rounds that alternate between the two;
then the same for ordinary traffic (browser headers, a cookie, search queries, form and JSON
bodies: `bench/waf_engine.py`'s generator), which both should pass.
Throughput per core divides requests by the CPU seconds the server process used, so other load
on the machine does not skew the ratio.
Ends with one line of key=value figures.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / ".." / "shared" / "corpora"
CRS = CORPORA / "crs"
MODULE = Path("/usr/lib/nginx/modules/ngx_http_modsecurity_module.so")
UPSTREAM_MARK = b"x-upstream: reached"  # header only the upstream sets
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Probe:
    name: str  # rule_id/test_id of the regression test
    raw: bytes  # the request exactly as sent on the wire
    method: str
    uri: str
    version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def ensure_nginx() -> None:
    if MODULE.is_file() and shutil.which("nginx") and shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        sys.exit("nginx, libnginx-mod-http-modsecurity and wrk are missing; run as root to install")
    print("installing nginx, libnginx-mod-http-modsecurity and wrk ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    # without recommends: modsecurity-crs (CRS v3) would land in /usr/share/modsecurity-crs
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends",
         "nginx", "libnginx-mod-http-modsecurity", "wrk"],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _raw(method: str, uri: str, version: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = f"{method} {uri} {version}".rstrip() + "\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("utf-8", "surrogateescape") + b"\r\n" + body


def load_probes(tests: Path) -> list[Probe]:
    """One probe per regression-test stage, built the way go-ftw builds it."""
    probes: list[Probe] = []
    for path in sorted(tests.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for test in doc.get("tests") or []:
            for stage in test.get("stages") or []:
                spec = stage.get("input", stage.get("stage", {}).get("input", {})) or {}
                name = f"{doc.get('rule_id', path.stem)}/{test.get('test_id')}"
                probe = _probe(name, spec)
                if probe is not None:
                    probes.append(probe)
    return probes


def _probe(name: str, spec: dict) -> Probe | None:
    if spec.get("encoded_request"):
        raw = base64.b64decode(spec["encoded_request"])
        return Probe(name, raw, "", "", "", (), b"")
    if spec.get("raw_request"):
        raw = str(spec["raw_request"]).encode("utf-8", "surrogateescape")
        return Probe(name, raw, "", "", "", (), b"")
    method = str(spec.get("method", "GET"))
    uri = str(spec.get("uri", "/"))
    version = str(spec.get("version", "HTTP/1.1"))
    data = spec.get("data") or ""
    body = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else b""
    # keep-alive for the load test: drop the tests' Connection headers
    headers = [(str(k), str(v)) for k, v in (spec.get("headers") or {}).items()]
    headers = [(k, v) for k, v in headers if k.lower() != "connection"]
    names = {k.lower() for k, _ in headers}
    if spec.get("autocomplete_headers", True) and body and "content-length" not in names:
        headers.append(("Content-Length", str(len(body))))
    raw = _raw(method, uri, version, headers, body)
    return Probe(name, raw, method, uri, version, tuple(headers), body)


# -- servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server on port {port} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"nothing listens on port {port} after {seconds}s")


def nginx_conf(work: Path, name: str, server: str) -> Path:
    conf = work / f"{name}.conf"
    conf.write_text(
        f"load_module {MODULE};\n"
        "worker_processes 1;\ndaemon off;\nmaster_process on;\n"
        f"pid {work}/{name}.pid;\nerror_log {work}/{name}.error.log warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n access_log off;\n"
        f" client_body_temp_path {work}/{name}.body; proxy_temp_path {work}/{name}.proxy;\n"
        f" fastcgi_temp_path {work}/f; uwsgi_temp_path {work}/u; scgi_temp_path {work}/s;\n"
        f"{server}\n}}\n"
    )
    return conf


def modsecurity_rules(work: Path, paranoia: int) -> Path:
    """ModSecurity's configuration, mirroring milliwatt's engine defaults and settings."""
    engine = (ROOT / "src/milliwatt/shield/waf/engine.conf").read_text()
    # ModSecurity takes one SecDefaultAction per phase; crs-setup.conf sets them after
    engine = "\n".join(
        line for line in engine.splitlines() if not line.startswith("SecDefaultAction")
    )
    main = work / "modsecurity.conf"
    main.write_text(
        f"{engine}\n"
        f"SecAuditEngine RelevantOnly\nSecAuditLogParts ABHZ\nSecAuditLog {work}/modsec_audit.log\n"
        f"Include {CRS.resolve()}/crs-setup.conf.example\n"
        f'SecAction "id:900001,phase:1,pass,nolog,setvar:tx.blocking_paranoia_level={paranoia},'
        'setvar:tx.inbound_anomaly_score_threshold=5,setvar:tx.outbound_anomaly_score_threshold=4"\n'
        f"Include {CRS.resolve()}/rules/*.conf\n"
    )
    return main


def start_nginx(work: Path, paranoia: int, procs: list[subprocess.Popen]) -> tuple[int, int]:
    """Starts the upstream and nginx+ModSecurity in front of it; returns both ports."""
    up, ms = free_port(), free_port()
    upstream = nginx_conf(work, "upstream", (
        f" server {{ listen 127.0.0.1:{up}; keepalive_requests 100000;\n"
        "  location / { add_header X-Upstream reached always; return 200 \"ok\\n\"; } }"
    ))  # fmt: skip
    modsec = nginx_conf(work, "modsec", (
        f" upstream app {{ server 127.0.0.1:{up}; keepalive 32; }}\n"
        f" server {{ listen 127.0.0.1:{ms}; keepalive_requests 100000;\n"
        f"  client_max_body_size 16m;\n"
        f"  modsecurity on; modsecurity_rules_file {modsecurity_rules(work, paranoia)};\n"
        "  location / { proxy_pass http://app; proxy_http_version 1.1;\n"
        "   proxy_set_header Connection \"\"; } }"
    ))  # fmt: skip
    for conf in (upstream, modsec):
        procs.append(subprocess.Popen(["nginx", "-c", str(conf), "-e", str(work / "boot.log")]))
    wait_port(up, procs[-2])
    wait_port(ms, procs[-1])
    return up, ms


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


# -- traffic -----------------------------------------------------------------------------


def verdict(port: int, raw: bytes) -> str:
    """'passed' when the upstream answered, 'blocked' when the WAF side answered or closed,
    'timeout' when nothing came back (a request whose declared body never arrives)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(raw)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except TimeoutError:
        return "timeout"
    except OSError:
        data = b""  # reset by the server
    if not data.startswith(b"HTTP/"):
        return "blocked"  # connection closed without an answer: the request did not pass
    return "passed" if UPSTREAM_MARK in data.split(b"\r\n\r\n", 1)[0].lower() else "blocked"


def wrk_script(script: Path, probes: list[Probe]) -> Path:
    def lua(raw: bytes) -> str:
        keep = set(range(0x20, 0x7F)) - {ord('"'), ord("\\")}
        return '"' + "".join(chr(b) if b in keep else f"\\{b:03d}" for b in raw) + '"'

    lines = ",\n".join(lua(p.raw) for p in probes)
    script.write_text(
        f"local reqs = {{\n{lines}\n}}\nlocal i = 0\n"
        "request = function()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n"
    )
    return script


def load(port: int, server_pid: int, script: Path, seconds: int, connections: int) -> dict:
    pids = [server_pid, *children(server_pid)]
    before = sum(cpu_seconds(p) for p in pids)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
         "-s", str(script), f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    cpu = sum(cpu_seconds(p) for p in pids) - before
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    per_core = done / max(cpu, 1e-9)
    return {"requests": done, "rps": done / seconds, "cpu_s": cpu, "per_core": per_core,
            "p50": _ms(lat.get("50", "0ms")), "p99": _ms(lat.get("99", "0ms"))}  # fmt: skip


def load_rounds(
    script_path: Path, probes: list[Probe], servers: tuple, args: argparse.Namespace
) -> dict[str, dict]:
    """Rounds of wrk over `probes`, alternating between the servers; combined per server."""
    script = wrk_script(script_path, probes)
    print(f"load: {args.rounds} rounds of wrk -c{args.connections} -d{args.seconds}s per "
          f"server over {len(probes)} requests")  # fmt: skip
    rounds: dict[str, list[dict]] = {name: [] for name, _, _ in servers}
    for n in range(args.rounds):  # interleaved, so a slow spell of the machine hits both
        for name, port, pid in servers:
            rounds[name].append(load(port, pid, script, args.seconds, args.connections))
        ratio_n = rounds["milliwatt"][n]["per_core"] / rounds["modsecurity"][n]["per_core"]
        print(f"round {n + 1}: throughput ratio per core {ratio_n:.2f}x")
    results = {name: combined(runs, args.seconds) for name, runs in rounds.items()}
    for name, r in results.items():
        print(f"{name:12s} {r['rps']:8.0f} req/s  {r['per_core']:8.0f} req per CPU-second  "
              f"latency p50 {r['p50']:.2f} ms p99 {r['p99']:.2f} ms")  # fmt: skip
    return results


def benign_probes(n: int) -> list[Probe]:
    """Ordinary shop traffic, as `bench/waf_engine.py` generates it, on the wire."""
    import random

    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]
    from waf_engine import ordinary

    probes: list[Probe] = []
    for i, r in enumerate(ordinary(random.Random(11), n)):
        headers = list(r.headers)
        if r.body:
            headers.append(("Content-Length", str(len(r.body))))
        raw = _raw(r.method, r.uri, r.version, headers, r.body)
        probes.append(Probe(f"benign/{i}", raw, r.method, r.uri, r.version, tuple(headers), r.body))
    return probes


def combined(runs: list[dict], seconds: int) -> dict:
    """Several load rounds of one server as one: totals, and the median round's latencies."""
    done, cpu = sum(r["requests"] for r in runs), sum(r["cpu_s"] for r in runs)
    return {"requests": done, "rps": done / (seconds * len(runs)), "cpu_s": cpu,
            "per_core": done / max(cpu, 1e-9),
            "p50": statistics.median(r["p50"] for r in runs),
            "p99": statistics.median(r["p99"] for r in runs)}  # fmt: skip


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def inspection_times(
    probes: list[Probe], crs: Path, paranoia: int
) -> tuple[dict[str, float], dict[str, float]]:
    """CPU milliseconds milliwatt's engine spends on phases 1-2 and 5, per structured probe
    (CPU time, not wall time: other load on the machine does not count): on first sight,
    while RE2 builds the pattern set's DFA states, and once they are built (the proxy under
    load was past that: the verdict pass had shown it every request)."""
    sys.path.insert(0, str(ROOT / "src"))
    from milliwatt.shield.waf import WAF, HttpRequest, WafSettings

    waf = WAF.load(crs, WafSettings(paranoia=paranoia))
    passes: list[dict[str, float]] = []
    for _ in range(2):
        waf.caches.clear()  # values are new to the engine each pass
        times: dict[str, float] = {}
        for p in probes:
            if not p.method:
                continue
            request = HttpRequest(p.method, p.uri, p.version, list(p.headers), p.body)
            tx = waf.transaction()
            start = time.thread_time()
            with contextlib.suppress(ValueError):  # a malformed request is refused; time counts
                tx.process_request(request)
            tx.finish()
            times[p.name] = (time.thread_time() - start) * 1000
        passes.append(times)
    return passes[0], passes[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paranoia", type=int, default=1, choices=(1, 2, 3, 4))
    ap.add_argument("--seconds", type=int, default=5, help="wrk duration per server and round")
    ap.add_argument("--rounds", type=int, default=4, help="load rounds, alternating servers")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N probes")
    ap.add_argument("--benign", type=int, default=600, help="ordinary requests in that mix")
    args = ap.parse_args()
    if not (CRS / "rules").is_dir() or not (CRS / "regression" / "tests").is_dir():
        sys.exit(f"CRS rules and regression tests not found under {CRS}")
    ensure_nginx()
    probes = load_probes(CRS / "regression" / "tests")
    if args.limit:
        probes = probes[: args.limit]
    work = Path(tempfile.mkdtemp(prefix="waf-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        up, ms = start_nginx(work, args.paranoia, procs)
        mw = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        procs.append(subprocess.Popen(
            [sys.executable, "-c", "from milliwatt.shield.cli import app; app()", "proxy",
             "--upstream", f"http://127.0.0.1:{up}", "--listen", f"127.0.0.1:{mw}",
             "--rules", str(CRS / "rules"), "--paranoia", str(args.paranoia),
             "--audit-log", str(work / "milliwatt_audit.jsonl")],
            env=env, stderr=(work / "milliwatt.log").open("w"),
        ))  # fmt: skip
        wait_port(mw, procs[2])
        print(f"{len(probes)} probes from the CRS regression tests, paranoia {args.paranoia}")

        verdicts = {name: [verdict(port, p.raw) for p in probes] for name, port in
                    (("modsecurity", ms), ("milliwatt", mw))}  # fmt: skip
        pairs = list(zip(verdicts["modsecurity"], verdicts["milliwatt"], strict=True))
        agree = sum(a == b for a, b in pairs)
        agreement = 100.0 * agree / len(pairs)
        for name, vs in verdicts.items():
            print(f"{name:12s} verdicts: {dict(Counter(vs))}")
        print(f"verdict agreement: {agree}/{len(pairs)} = {agreement:.2f}%")
        differ = [(p.name, a, b) for p, (a, b) in zip(probes, pairs, strict=True) if a != b]
        for name, a, b in differ[:40]:
            print(f"  differs: test {name}: modsecurity {a}, milliwatt {b}")

        # HEAD answers carry no body, which wrk does not know: it would wait out its timeout
        mix = [p for p, (a, b) in zip(probes, pairs, strict=True)
               if "timeout" not in (a, b) and p.method != "HEAD"]  # fmt: skip
        servers = (("modsecurity", ms, procs[1].pid), ("milliwatt", mw, procs[2].pid))
        print("regression mix:")
        results = load_rounds(work / "mix.lua", mix, servers, args)
        ratio = results["milliwatt"]["per_core"] / results["modsecurity"]["per_core"]
        wall = results["milliwatt"]["rps"] / results["modsecurity"]["rps"]
        print(f"throughput ratio milliwatt/modsecurity: {ratio:.2f}x per core, {wall:.2f}x wall")

        benign = benign_probes(args.benign)
        passed = {name: sum(verdict(port, p.raw) == "passed" for p in benign)
                  for name, port, _ in servers}  # fmt: skip
        print(f"ordinary traffic ({len(benign)} requests) passed: {passed}")
        print("ordinary traffic:")
        plain = load_rounds(work / "benign.lua", benign, servers, args)
        benign_ratio = plain["milliwatt"]["per_core"] / plain["modsecurity"]["per_core"]
        print(f"ordinary traffic ratio milliwatt/modsecurity: {benign_ratio:.2f}x per core")

        first, by_probe = inspection_times(mix, CRS / "rules", args.paranoia)
        times = list(by_probe.values())
        p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
        slowest = sorted(by_probe.items(), key=lambda item: -item[1])[:5]
        print("slowest to inspect: " + ", ".join(f"{n} {ms:.1f} ms" for n, ms in slowest))
        print(f"milliwatt inspection (CPU, phases 1-2, 5): p50 {p50:.3f} ms, p99 {p99:.3f} ms, "
              f"mean {statistics.fmean(times):.3f} ms over {len(times)} requests "
              f"(first pass, DFA states still being built: "
              f"mean {statistics.fmean(first.values()):.3f} ms)")  # fmt: skip
        mws, mss = results["milliwatt"], results["modsecurity"]
        print(
            f"agreement_pct={agreement:.2f} ratio_per_core={ratio:.2f} ratio_wall={wall:.2f} "
            f"benign_ratio_per_core={benign_ratio:.2f} "
            f"benign_milliwatt_per_core={plain['milliwatt']['per_core']:.0f} "
            f"benign_modsecurity_per_core={plain['modsecurity']['per_core']:.0f} "
            f"milliwatt_per_core={mws['per_core']:.0f} modsecurity_per_core={mss['per_core']:.0f} "
            f"milliwatt_rps={mws['rps']:.0f} modsecurity_rps={mss['rps']:.0f} "
            f"milliwatt_p50_ms={mws['p50']:.2f} milliwatt_p99_ms={mws['p99']:.2f} "
            f"modsecurity_p50_ms={mss['p50']:.2f} modsecurity_p99_ms={mss['p99']:.2f} "
            f"inspect_p50_ms={p50:.3f} inspect_p99_ms={p99:.3f} probes={len(probes)} "
            f"paranoia={args.paranoia}"
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
