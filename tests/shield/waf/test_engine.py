from __future__ import annotations

import pytest

from milliwatt.shield.waf import WAF, HttpRequest, HttpResponse, WafSettings


def _get(uri: str, **headers: str) -> HttpRequest:
    hs = [("Host", "localhost"), ("User-Agent", "Mozilla/5.0"), ("Accept", "*/*")]
    return HttpRequest("GET", uri, headers=hs + list(headers.items()))


def test_crs_loads_with_its_version(crs_waf: WAF) -> None:
    assert crs_waf.source.startswith("crs 4.")
    assert crs_waf.rule_count > 500


def test_clean_request_passes(crs_waf: WAF) -> None:
    tx = crs_waf.transaction()
    assert tx.process_request(_get("/index.html?page=2&sort=name")) is None
    assert (
        tx.process_response(HttpResponse(200, [("Content-Type", "text/html")], b"<p>hi</p>"))
        is None
    )
    record = tx.finish()
    assert record["action"] == "pass"
    assert record["anomaly_score"]["inbound"] == 0


def test_sql_injection_is_blocked_with_anomaly_score(crs_waf: WAF) -> None:
    tx = crs_waf.transaction(client_ip="203.0.113.9")
    it = tx.process_request(_get("/?id=1%27%20OR%20%271%27=%271"))
    assert it is not None and it.status == 403 and it.rule_id == 949110
    ids = {m.id for m in tx.matched_rules}
    assert 942100 in ids  # libinjection
    record = tx.finish()
    assert record["client"]["ip"] == "203.0.113.9"
    assert record["anomaly_score"]["inbound"] >= 5
    assert record["action"] == "deny"


def test_detection_mode_logs_but_does_not_block(crs_rules) -> None:  # type: ignore[no-untyped-def]
    waf = WAF.load(crs_rules, WafSettings(mode="detection"))
    tx = waf.transaction()
    assert tx.process_request(_get("/?q=<script>alert(1)</script>")) is None
    assert any(m.id == 941100 for m in tx.matched_rules)


def test_a_smaller_pattern_set_memory_changes_speed_not_verdicts(crs_rules) -> None:  # type: ignore[no-untyped-def]
    requests = [
        _get("/index.html?page=2&sort=name"),
        _get("/?id=1%27%20OR%20%271%27=%271"),
        _get("/?q=%3Cscript%3Ealert(1)%3C/script%3E"),
        _get("/?file=../../etc/passwd"),
        _get("/?cmd=;cat%20/etc/shadow"),
    ]

    def verdicts(memory_mb: int | None) -> list[int | None]:
        settings = WafSettings(paranoia=1, pattern_set_memory_mb=memory_mb)
        waf = WAF.load(crs_rules, settings)
        return [
            (it.rule_id if (it := waf.transaction().process_request(r)) else None) for r in requests
        ]

    expected = verdicts(None)
    assert expected[0] is None and all(expected[1:])
    assert verdicts(4) == expected  # states rebuilt as they outgrow 4 MB
    assert verdicts(1) == expected  # too small to build: every pattern runs on its own


def test_pattern_set_memory_must_be_positive() -> None:
    with pytest.raises(ValueError, match="pattern_set_memory_mb"):
        WafSettings(pattern_set_memory_mb=0)
