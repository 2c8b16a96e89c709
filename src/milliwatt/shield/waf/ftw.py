"""Runs CRS regression tests (go-ftw YAML) in process against the engine.

Each stage's request is rendered to raw HTTP/1.1 bytes as go-ftw sends them, parsed as
strictly as Apache httpd (the reference the tests were written against), inspected, answered
by a stand-in for the tests' reflecting backend, and its log lines checked.
"""

from __future__ import annotations

import base64
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from milliwatt.shield.waf.api import HttpResponse, MalformedRequest, WafSettings
from milliwatt.shield.waf.engine import WAF
from milliwatt.shield.waf.http1 import parse_request

# The settings CRS's regression README asks for (crs-setup + its test rule 900005).
FTW_SETTINGS = WafSettings(mode="detection", paranoia=4)
FTW_SETUP_RULES = """
SecAction "id:900005,phase:1,nolog,pass,ctl:ruleEngine=DetectionOnly,ctl:ruleRemoveById=910000,\
setvar:tx.blocking_paranoia_level=4,setvar:tx.crs_validate_utf8_encoding=1,\
setvar:tx.arg_name_length=100,setvar:tx.arg_length=400,setvar:tx.total_arg_length=64000,\
setvar:tx.max_num_args=255,setvar:tx.max_file_size=64100,setvar:tx.combined_file_sizes=65535"
"""

# (rule id, test id) -> why the test cannot apply to an in-process engine.
SKIPS: dict[tuple[int, int], str] = {}


@dataclass
class Outcome:
    rule_id: int
    test_id: int
    title: str
    passed: bool
    skipped: str = ""
    problems: list[str] = field(default_factory=list)
    file: str = ""


class MalformedTestFile(ValueError):
    """A test file that is not go-ftw YAML: it counts as one failed entry, the rest run."""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    empty_files: list[Path] = field(default_factory=list)  # no YAML document: nothing to run

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes if not o.skipped)

    @property
    def failed(self) -> int:
        return sum(not o.passed for o in self.outcomes if not o.skipped)

    @property
    def skipped(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.skipped]

    def failures_by_rule(self) -> dict[int, list[Outcome]]:
        groups: dict[int, list[Outcome]] = defaultdict(list)
        for o in self.outcomes:
            if not o.passed and not o.skipped:
                groups[o.rule_id].append(o)
        return dict(sorted(groups.items()))

    def summary(self) -> str:
        line = f"{self.passed} passed, {self.failed} failed"
        line += f", {len(self.skipped)} skipped" if self.skipped else ""
        return line + (f", {len(self.empty_files)} empty files" if self.empty_files else "")


def test_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.yaml")))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such test file or directory: {path}")
    return files


def render_request(stage: dict[str, Any]) -> bytes:
    """The raw bytes go-ftw would send for one stage's input."""
    if stage.get("encoded_request"):
        return base64.b64decode(stage["encoded_request"])
    if stage.get("raw_request"):
        return str(stage["raw_request"]).encode("utf-8", "surrogateescape")
    method = str(stage.get("method", "GET"))
    uri = str(stage.get("uri", "/"))
    version = str(stage.get("version", "HTTP/1.1"))
    headers: dict[str, Any] = dict(stage.get("headers") or {})
    data = stage.get("data")
    body = b"" if data is None else str(data).encode("utf-8", "surrogateescape")
    if stage.get("autocomplete_headers", True):
        names = {k.lower() for k in headers}
        if body and "content-length" not in names:
            headers["Content-Length"] = str(len(body))
        if body and "content-type" not in names:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if "connection" not in names:
            headers["Connection"] = "close"
    lines = [f"{method} {uri} {version}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def backend_response(method: str, uri: str, body: bytes) -> HttpResponse:
    """What the tests' backend answers: /reflect echoes the status, headers and body asked for."""
    if uri.split("?", 1)[0] == "/reflect" and body:
        try:
            spec = json.loads(body)
        except ValueError:
            spec = None
        if isinstance(spec, dict):
            out = spec.get("body", "")
            if spec.get("encodedBody"):
                out = base64.b64decode(spec["encodedBody"]).decode("latin-1")
            headers = [(str(k), str(v)) for k, v in (spec.get("headers") or {}).items()]
            if not any(k.lower() == "content-type" for k, _ in headers):
                headers.append(("Content-Type", "text/plain"))
            return HttpResponse(
                int(spec.get("status", 200)), headers, str(out).encode("latin-1", "replace")
            )
    return HttpResponse(200, [("Content-Type", "text/plain")], b"")


def run_stage(waf: WAF, stage: dict[str, Any]) -> tuple[int, str, bool]:
    """(status, log text, whether the request failed at the HTTP level)."""
    raw = render_request(stage)
    try:
        request = parse_request(raw)
    except MalformedRequest as exc:
        return 400, f"HTTP request rejected: {exc}", True
    tx = waf.transaction(client_ip="127.0.0.1", server_port=int(stage.get("port", 80)))
    it = tx.process_request(request)
    status = it.status if it else 200
    if it is None:
        response = backend_response(request.method, request.uri, request.body)
        it = tx.process_response(response)
        status = it.status if it else response.status
    tx.finish()
    # an HTTP/0.9 answer has no status line: clients see a broken response
    return status, "\n".join(tx.log_lines), request.version == "HTTP/0.9"


def _ids(log: str) -> set[int]:
    return {int(m) for m in re.findall(r'\[id "(\d+)"\]', log)}


def check(output: dict[str, Any], status: int, log: str, errored: bool) -> list[str]:
    problems: list[str] = []
    fired = _ids(log)
    expect = output.get("log") or {}
    if isinstance(expect, dict):
        missing = [i for i in expect.get("expect_ids") or [] if i not in fired]
        unwanted = [i for i in expect.get("no_expect_ids") or [] if i in fired]
        if missing:
            problems.append(f"expected ids {missing} did not fire")
        if unwanted:
            problems.append(f"ids {unwanted} fired but must not")
        for key, want in (("match_regex", True), ("no_match_regex", False)):
            pattern = expect.get(key)
            if pattern and (re.search(pattern, log) is not None) != want:
                problems.append(f"log {'does not match' if want else 'matches'} {pattern!r}")
    for key, want in (("log_contains", True), ("no_log_contains", False)):
        pattern = output.get(key)
        if pattern and (re.search(pattern, log) is not None) != want:
            problems.append(f"log {'lacks' if want else 'contains'} {pattern!r}")
    wanted = output.get("status")
    if wanted is not None:
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if status not in [int(s) for s in allowed]:
            problems.append(f"status {status}, expected {wanted}")
    if output.get("expect_error") and not errored:
        problems.append("expected the request to fail")
    return problems


def run(paths: Iterable[Path], rules_dir: Path | None = None, waf: WAF | None = None) -> Report:
    if waf is None:
        settings = WafSettings(
            mode=FTW_SETTINGS.mode, paranoia=FTW_SETTINGS.paranoia, extra_rules=FTW_SETUP_RULES
        )
        waf = WAF.load(rules_dir, settings)
    report = Report()
    for path in test_files(paths):
        try:
            doc = read_test_file(path)
        except MalformedTestFile as exc:
            # one failed entry, under the rule the file is named after, titled by its path
            rule = int(path.stem) if path.stem.isdigit() else 0
            problem = f"malformed test file: {exc}"
            failed = Outcome(rule, 0, str(path), passed=False, problems=[problem], file=str(path))
            report.outcomes.append(failed)
            continue
        if doc is None:
            report.empty_files.append(path)
            continue
        rule_id = int(doc.get("rule_id", 0) or 0)
        for test in doc.get("tests") or []:
            test_id = int(test.get("test_id", 0))
            title = str(test.get("desc", "")).strip().splitlines()[0] if test.get("desc") else ""
            skip = SKIPS.get((rule_id, test_id), "")
            outcome = Outcome(
                rule_id, test_id, title, passed=not skip, skipped=skip, file=str(path)
            )
            if not skip:
                for stage in test.get("stages") or []:
                    spec = stage.get("stage", stage)
                    try:
                        status, log, errored = run_stage(waf, spec.get("input") or {})
                        outcome.problems += check(spec.get("output") or {}, status, log, errored)
                    except Exception as exc:  # a crash is a failure of that test, reported
                        outcome.problems.append(f"crashed: {type(exc).__name__}: {exc}")
                outcome.passed = not outcome.problems
            report.outcomes.append(outcome)
    return report


def read_test_file(path: Path) -> dict[str, Any] | None:
    """The file's one YAML document, its shape checked so that running it cannot trip on it;
    None when the file holds no document (only comments, say)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MalformedTestFile(f"not YAML: {_first_line(exc)}") from exc
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise MalformedTestFile(f"a {type(doc).__name__}, not a mapping with `tests`")
    _check_int(doc.get("rule_id", 0) or 0, "rule_id")
    tests = doc.get("tests") or []
    if not isinstance(tests, list):
        raise MalformedTestFile("`tests` is not a list")
    for n, test in enumerate(tests, start=1):
        if not isinstance(test, dict):
            raise MalformedTestFile(f"test {n} is not a mapping")
        _check_int(test.get("test_id", 0), f"test {n}'s test_id")
        stages = test.get("stages") or []
        if not isinstance(stages, list) or not all(
            isinstance(st, dict) and isinstance(st.get("stage", st), dict) for st in stages
        ):
            raise MalformedTestFile(f"test {n}'s stages are not a list of mappings")
        for st in stages:
            spec = st.get("stage", st)
            for part in ("input", "output"):
                if not isinstance(spec.get(part) or {}, dict):
                    raise MalformedTestFile(f"test {n}'s {part} is not a mapping")
    return doc


def _check_int(value: object, what: str) -> None:
    try:
        int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise MalformedTestFile(f"{what} {value!r} is not a number") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
