"""The compiled phases: rules the pattern set rules out are passed over, and what is left
gives exactly the matches of visiting every rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from milliwatt.shield.waf import WAF, HttpRequest, HttpResponse, MalformedRequest, WafSettings
from milliwatt.shield.waf.ftw import render_request
from milliwatt.shield.waf.http1 import parse_request
from milliwatt.shield.waf.operators import phrase_lists
from milliwatt.shield.waf.regexes import PhraseSet
from milliwatt.shield.waf.transformations import TRANSFORMATIONS


def req(target: str) -> HttpRequest:
    return HttpRequest("GET", target, headers=[("Host", "example.com")])


def regression_requests(tests: Path, every: int) -> list[HttpRequest]:
    found: list[HttpRequest] = []
    for path in sorted(tests.rglob("REQUEST-9*/*.yaml"))[::every]:
        for test in yaml.safe_load(path.read_text()).get("tests", []):
            stages = test.get("stages") or []
            if not stages:
                continue
            try:
                found.append(parse_request(render_request(stages[0].get("input") or {})))
            except (MalformedRequest, ValueError):
                continue
    return found


def test_screened_walk_matches_visiting_every_rule(crs_rules: Path, crs_tests: Path) -> None:
    # the same CRS with the pattern set (rules ruled out are passed over) and without it
    # (every rule visited, every pattern and phrase list run on its own)
    settings = WafSettings(mode="detection", paranoia=1)
    screened = WAF.load(crs_rules, settings)
    visiting = WAF.load(crs_rules, settings, pattern_set=False)
    assert screened.pattern_set is not None and screened.pattern_set.phrases is not None
    assert visiting.pattern_set is None
    response = HttpResponse(200, [("Content-Type", "text/html")], b"<html>ok</html>")
    requests = regression_requests(crs_tests, 3)
    assert len(requests) > 400
    matched = 0
    for request in requests:
        outcomes = []
        for waf in (screened, visiting):
            tx = waf.transaction(request_id="fixed")
            tx.process_request(request)
            tx.process_response(response)
            record = tx.finish()
            outcomes.append((record["matched_rules"], tx.log_lines, dict(tx.data.tx)))
        assert outcomes[0] == outcomes[1], request.uri[:80]
        matched += len(outcomes[0][0])
    assert matched > 1000  # the payloads do fire rules: the comparison is not of empty lists


def test_phrase_screen_agrees_with_every_phrase_list(crs_waf: WAF, crs_tests: Path) -> None:
    """One Hyperscan scan names exactly the @pm lists with a phrase in the value."""
    pattern_set = crs_waf.pattern_set
    assert pattern_set is not None and pattern_set.phrases is not None
    members = [m for head in crs_waf.ruleset.rules() for m in _chain(head)]
    lists: list[PhraseSet] = phrase_lists(m.operator for m in members)
    assert len(lists) >= 20 and all(p.set_id is not None for p in lists)
    values: list[str] = []
    for request in regression_requests(crs_tests, 5):
        raw = request.uri.encode("utf-8", "surrogateescape").decode("latin-1")
        values += [raw, TRANSFORMATIONS["urldecodeuni"](raw)]
        values += [v for _, v in request.headers]
    hits = 0
    for value in values:
        mask = pattern_set.mask(value)
        assert mask is not None
        for phrases in lists:
            assert phrases.set_id is not None
            found = bool(mask >> phrases.set_id & 1)
            assert found == (phrases.first_match(value) is not None), (phrases.phrases[:3], value)
            hits += found
    assert hits > 100


def _chain(head):  # type: ignore[no-untyped-def]
    rule = head
    while rule is not None:
        yield rule
        rule = rule.chain


PM_PASSED_OVER = """
from milliwatt.shield.waf import WAF, HttpRequest, native
from milliwatt.shield.waf.screen import ruled_out

assert native.state().startswith("python"), native.state()
waf = WAF.from_text('SecRule ARGS "@pm evil wicked" "id:2,phase:2,deny,status:402,t:lowercase"')
program = waf.phases[2]
index = next(i for i, r in enumerate(program.rules) if r.id == 2)
phrases = program.rules[index].operator.phrases
calls = []
original = phrases.first_match

def counted(value):
    calls.append(value)
    return original(value)

phrases.first_match = counted
tx = waf.transaction()
assert tx.process_request(HttpRequest("GET", "/?a=fine&b=good", headers=[("Host", "x")])) is None
assert ruled_out(tx, program.screen)[index] == 1  # ruled out: the walk passes it over
tx = waf.transaction()
verdict = tx.process_request(HttpRequest("GET", "/?a=fine&b=WiCKed", headers=[("Host", "x")]))
assert verdict is not None and verdict.status == 402
assert ruled_out(tx, program.screen)[index] == 0
assert calls == [], calls  # the one scan answered for the list: it never ran on its own
"""


def test_a_pm_rule_no_value_can_match_is_passed_over() -> None:
    pytest.importorskip("hyperscan")
    # counting the list's own scans wraps a method, which only the Python build allows
    env = {**os.environ, "MILLIWATT_WAF_PURE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PM_PASSED_OVER], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("pattern_set", [True, False])
def test_skips_count_rules_the_pattern_set_passed_over(pattern_set: bool) -> None:
    waf = WAF.from_text(
        'SecRule ARGS "@rx never" "id:1,phase:2,deny,status:401"\n'
        'SecRule ARGS "@rx go" "id:2,phase:2,pass,nolog,skip:2"\n'
        'SecRule ARGS "@rx never" "id:3,phase:2,deny,status:403"\n'
        'SecRule ARGS "@rx go" "id:4,phase:2,deny,status:404"\n'
        'SecRule ARGS "@rx go" "id:5,phase:2,deny,status:405"\n'
        'SecRule ARGS "@rx jump" "id:6,phase:2,pass,nolog,skipAfter:END"\n'
        'SecRule ARGS "@rx never" "id:7,phase:2,deny,status:407"\n'
        'SecRule ARGS "@rx jump" "id:8,phase:2,deny,status:408"\n'
        "SecMarker END\n"
        'SecRule ARGS "@rx jump" "id:9,phase:2,deny,status:409"\n',
        pattern_set=pattern_set,
    )

    def status(target: str) -> int | None:
        verdict = waf.transaction().process_request(req(target))
        return verdict.status if verdict else None

    assert status("/?a=go") == 405  # skip:2 passes over 3 (ruled out) and 4
    assert status("/?a=jump") == 409  # skipAfter lands after the marker
    assert status("/?a=never") == 401
    assert status("/?a=other") is None


def test_numeric_guards_follow_ctl_target_removal() -> None:
    # a guard compiled inline still honours a ctl: removal of the TX variable it reads
    waf = WAF.from_text(
        'SecAction "id:1,phase:1,pass,nolog,setvar:tx.level=1"\n'
        'SecRule REQUEST_URI "@beginsWith /off" '
        '"id:2,phase:1,pass,nolog,ctl:ruleRemoveTargetById=3;TX:level"\n'
        'SecRule TX:level "@lt 2" "id:3,phase:1,deny,status:403"\n'
    )
    assert waf.transaction().process_request(req("/on")) is not None
    assert waf.transaction().process_request(req("/off")) is None


def test_phrase_database_is_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hyperscan = pytest.importorskip("hyperscan")
    from milliwatt.shield.waf.phrases import PhraseScreen

    monkeypatch.setenv("MILLIWATT_WAF_CACHE", str(tmp_path))
    lists = [PhraseSet(["evil", "wicked"]), PhraseSet(["/etc/passwd", "evil"])]
    first = PhraseScreen(lists, first_id=1)
    files = list(tmp_path.glob("phrases-*.hsdb"))
    assert len(files) == 1
    expected = first.mask(b"an EVIL read of /etc/passwd")
    assert expected == 0b110

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled although the cache holds the database")

    with monkeypatch.context() as patch:
        patch.setattr(hyperscan, "Database", refuse)
        again = PhraseScreen([PhraseSet(["evil", "wicked"]), PhraseSet(["/etc/passwd", "evil"])], 1)
    assert again.mask(b"an EVIL read of /etc/passwd") == expected
    assert again.mask(b"nothing here") == 0

    files[0].write_bytes(b"torn")  # an unusable file is compiled anew and replaced
    rebuilt = PhraseScreen([PhraseSet(["evil", "wicked"]), PhraseSet(["/etc/passwd", "evil"])], 1)
    assert rebuilt.mask(b"wicked") == 0b10
    assert files[0].stat().st_size > 100
