"""Runs of TX-only rules replayed from kept outcomes leave exactly what walking them leaves."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_compiled import regression_requests

from milliwatt.shield.waf import WAF, HttpRequest, HttpResponse, WafSettings
from milliwatt.shield.waf.replay import tx_reads

RESPONSE = HttpResponse(200, [("Content-Type", "text/html")], b"<html>ok</html>")


def outcome(waf: WAF, request: HttpRequest) -> tuple[object, ...]:
    tx = waf.transaction(request_id="fixed", client_ip="203.0.113.7")
    tx.process_request(request)
    tx.process_response(RESPONSE)
    record = tx.finish()
    matched = {k: tx.data.scalars.get(k) for k in ("MATCHED_VAR", "MATCHED_VAR_NAME")}
    lists = {k: tx.data.collections.get(k) for k in ("MATCHED_VARS", "MATCHED_VARS_NAMES")}
    interruption = tx.interruption
    return (
        record["matched_rules"],
        tx.log_lines,
        list(tx.data.tx.items()),
        matched,
        lists,
        (interruption and (interruption.status, interruption.rule_id)),
    )


@pytest.mark.parametrize("paranoia", [1, 4])
def test_replayed_runs_match_walking_every_rule(
    crs_rules: Path, crs_tests: Path, paranoia: int
) -> None:
    settings = WafSettings(mode="blocking", paranoia=paranoia)
    replaying = WAF.load(crs_rules, settings)
    walking = WAF.load(crs_rules, settings, replay=False)
    requests = regression_requests(crs_tests, 4)
    assert len(requests) > 300
    blocked = 0
    for request in requests:
        expected = outcome(walking, request)
        assert outcome(replaying, request) == expected, request.uri[:80]
        blocked += expected[-1] is not None
    assert blocked > 100  # attacks among them: runs were replayed after matches too
    kept = [run for phase in replaying.phases.values() for run in phase.runs if run]
    assert sum(len(run.outcomes) for run in kept) > 50  # outcomes were kept and reused


def test_a_run_depends_on_the_values_it_reads() -> None:
    # the paranoia level comes from a header: the guard's run must not reuse another's outcome
    waf = WAF.from_text(
        """
        SecRule REQUEST_HEADERS:X-Level "@rx ^(\\d)$" "id:1,phase:1,pass,nolog,capture,\\
            setvar:tx.level=%{tx.1}"
        SecRule TX:LEVEL "@lt 2" "id:2,phase:1,pass,nolog,skipAfter:END"
        SecAction "id:3,phase:1,pass,nolog,setvar:tx.high=1"
        SecMarker END
        SecAction "id:4,phase:1,pass,nolog,setvar:tx.seen=+1"
        """
    )
    phase = waf.phases[1]
    runs = {rule.id: run for rule, run in zip(phase.rules, phase.runs, strict=True)}
    guard = runs[2]
    assert runs[1] is None and guard is not None and guard.reads == ("level", "seen")
    for level, high in [("1", None), ("3", "1"), ("1", None), ("3", "1")]:
        tx = waf.transaction()
        tx.process_request(HttpRequest("GET", "/", headers=[("Host", "x"), ("X-Level", level)]))
        assert tx.data.tx.get("high") == high and tx.data.tx["seen"] == "1"
    assert len(guard.outcomes) == 2


def test_a_run_with_a_removed_rule_is_walked() -> None:
    waf = WAF.from_text(
        """
        SecRule REQUEST_URI "@beginsWith /quiet" "id:1,phase:1,pass,nolog,ctl:ruleRemoveById=3"
        SecAction "id:2,phase:1,pass,nolog,setvar:tx.a=1"
        SecAction "id:3,phase:1,pass,nolog,setvar:tx.b=1"
        """
    )
    for uri, b in [("/", "1"), ("/quiet", None), ("/", "1"), ("/quiet", None)]:
        tx = waf.transaction()
        tx.process_request(HttpRequest("GET", uri, headers=[("Host", "x")]))
        assert (tx.data.tx.get("a"), tx.data.tx.get("b")) == ("1", b), uri


def test_what_is_replayable() -> None:
    waf = WAF.from_text(
        """
        SecAction "id:1,phase:1,pass,nolog,setvar:tx.a=%{tx.b}"
        SecAction "id:2,phase:1,pass,nolog,setvar:tx.host=%{request_headers.host}"
        SecRule &TX:C "@eq 0" "id:3,phase:1,pass,nolog,setvar:tx.c=5"
        SecRule TX:C "@ge 1" "id:4,phase:1,pass,log,setvar:tx.d=1"
        SecRule TX:C "@rx 5" "id:5,phase:1,pass,nolog,setvar:tx.e=1"
        SecAction "id:6,phase:1,pass,nolog,setvar:ip.f=1"
        SecRule TX:C "@eq 5" "id:7,phase:1,pass,nolog,setvar:tx.score=+%{tx.c}"
        """,
        pattern_set=False,
    )
    reads = [tx_reads(rule) for rule in waf.phases[1].rules if rule.id < 100]
    assert reads == [
        frozenset({"b"}),
        None,  # reads a request header
        frozenset({"c"}),
        None,  # logs
        None,  # not a numeric comparison
        None,  # writes another collection
        frozenset({"c", "score"}),
    ]
