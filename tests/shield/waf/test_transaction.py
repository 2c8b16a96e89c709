from __future__ import annotations

import json
import threading

import pytest

from milliwatt.shield.waf import WAF, HttpRequest, HttpResponse


def req(uri: str = "/", method: str = "GET", body: bytes = b"", **headers: str) -> HttpRequest:
    hs = [("Host", "localhost"), *((k.replace("_", "-"), v) for k, v in headers.items())]
    return HttpRequest(method, uri, headers=hs, body=body)


def test_chain_needs_every_member_and_members_act_in_order() -> None:
    waf = WAF.from_text(
        'SecRule ARGS:a "@rx ^(\\d+)$" "id:1,phase:2,deny,status:409,capture,setvar:tx.n=%{tx.1},chain"\n'  # noqa: E501
        '    SecRule TX:n "@gt 10" "t:none"\n'
    )
    assert waf.transaction().process_request(req("/?a=5")) is None
    it = waf.transaction().process_request(req("/?a=50"))
    assert it is not None and it.status == 409 and it.rule_id == 1


def test_setvar_arithmetic_macros_and_msg_expansion() -> None:
    waf = WAF.from_text(
        'SecAction "id:1,phase:1,pass,nolog,setvar:tx.score=0,setvar:tx.inc=3"\n'
        'SecRule ARGS "@contains x" "id:2,phase:2,pass,setvar:tx.score=+%{tx.inc}"\n'
        'SecRule ARGS "@contains y" "id:3,phase:2,pass,setvar:tx.score=-1,setvar:!tx.inc"\n'
        'SecRule TX:score "@eq 5" "id:4,phase:2,deny,msg:\'score %{tx.score} from %{MATCHED_VAR_NAME}\'"\n'  # noqa: E501
    )
    tx = waf.transaction()
    it = tx.process_request(req("/?p=x&q=x&r=y"))
    assert tx.data.tx["score"] == "5" and "inc" not in tx.data.tx
    assert it is not None and it.message == "score 5 from TX:score"


def test_skip_after_marker_and_skip_count() -> None:
    waf = WAF.from_text(
        'SecRule ARGS:go "@streq skip" "id:1,phase:2,pass,nolog,skipAfter:END"\n'
        'SecRule ARGS:go "!@streq one" "id:2,phase:2,deny"\n'
        "SecMarker END\n"
        'SecRule ARGS:go "@streq one" "id:3,phase:2,pass,nolog,skip:1"\n'
        'SecRule ARGS "@rx ." "id:4,phase:2,deny"\n'
        'SecRule ARGS "@rx ." "id:5,phase:2,deny,status:418"\n'
    )
    assert waf.transaction().process_request(req("/?go=x")).rule_id == 2  # type: ignore[union-attr]
    assert waf.transaction().process_request(req("/?go=skip")).rule_id == 4  # type: ignore[union-attr]
    assert waf.transaction().process_request(req("/?go=one")).rule_id == 5  # type: ignore[union-attr]


def test_ctl_removes_rules_and_targets_and_switches_engine() -> None:
    waf = WAF.from_text(
        'SecRule REQUEST_URI "@beginsWith /a" "id:1,phase:1,pass,nolog,ctl:ruleRemoveById=10"\n'
        'SecRule REQUEST_URI "@beginsWith /b" "id:2,phase:1,pass,nolog,ctl:ruleRemoveTargetById=10;ARGS:q"\n'  # noqa: E501
        'SecRule REQUEST_URI "@beginsWith /c" "id:3,phase:1,pass,nolog,ctl:ruleEngine=DetectionOnly"\n'  # noqa: E501
        'SecRule ARGS "@contains bad" "id:10,phase:2,deny"\n'
    )
    assert waf.transaction().process_request(req("/a?q=bad")) is None
    assert waf.transaction().process_request(req("/b?q=bad")) is None
    assert waf.transaction().process_request(req("/b?r=bad")) is not None
    tx = waf.transaction()
    assert tx.process_request(req("/c?q=bad")) is None
    assert [m.id for m in tx.matched_rules] == [10]


def test_exclusions_counts_and_regex_keys() -> None:
    waf = WAF.from_text(
        'SecRule ARGS|!ARGS:/^safe_/ "@contains bad" "id:1,phase:2,deny"\n'
        'SecRule &ARGS "@gt 3" "id:2,phase:2,deny,status:413"\n'
    )
    assert waf.transaction().process_request(req("/?safe_x=bad&safe_y=bad")) is None
    assert waf.transaction().process_request(req("/?x=bad")) is not None
    assert waf.transaction().process_request(req("/?a=1&b=2&c=3&d=4")).status == 413  # type: ignore[union-attr]


def test_tx_selected_by_key_prefix_whatever_the_case_it_was_set_in() -> None:
    # CRS's restricted-header check: one TX variable per header name, then all of them read
    # by prefix; setvar's key is case-insensitive, and so is the prefix
    waf = WAF.from_text(
        'SecRule REQUEST_HEADERS_NAMES "@rx ^.*$" '
        "\"id:1,phase:1,pass,nolog,capture,t:lowercase,setvar:'tx.Header_Name_%{tx.0}=/%{tx.0}/'\"\n"
        'SecRule TX:/^HEADER_NAME_/ "@rx ^/x-evil/$" "id:2,phase:1,deny,status:403"\n'
    )
    assert waf.transaction().process_request(req(X_Fine="1")) is None
    refused = waf.transaction().process_request(req(X_Evil="1"))
    assert refused is not None and refused.rule_id == 2


def test_multimatch_checks_every_stage() -> None:
    waf = WAF.from_text('SecRule ARGS "@streq %41" "id:1,phase:2,deny,t:urlDecode,multiMatch"\n')
    assert (
        waf.transaction().process_request(req("/?a=%2541")) is not None
    )  # matches before decoding


@pytest.mark.parametrize("pattern_set", [True, False])
def test_prescreened_rules_agree_with_each_pattern_run_alone(pattern_set: bool) -> None:
    # the pattern set rules out @rx rules whose patterns match no value: for multiMatch every
    # stage counts, after ctl: removed a target the others still do, and @pm is unaffected
    waf = WAF.from_text(
        'SecRule ARGS "@rx ^%41$" "id:1,phase:2,deny,status:401,t:urlDecode,multiMatch"\n'
        'SecRule ARGS "@pm evil" "id:2,phase:2,deny,status:402,t:lowercase"\n'
        'SecRule REQUEST_URI "@beginsWith /skip" '
        '"id:3,phase:1,pass,nolog,ctl:ruleRemoveTargetById=4;ARGS:a"\n'
        'SecRule ARGS "@rx bad" "id:4,phase:2,deny,status:403"\n',
        pattern_set=pattern_set,
    )

    def status(target: str) -> int | None:
        verdict = waf.transaction().process_request(req(target))
        return verdict.status if verdict else None

    assert status("/?a=%2541") == 401  # before decoding
    assert status("/?a=%41") is None  # decoded: "A"
    assert status("/?a=EviL") == 402
    assert status("/?a=bad") == 403
    assert status("/skip?a=bad") is None
    assert status("/skip?a=fine&b=bad") == 403


def test_allow_stops_inspection() -> None:
    waf = WAF.from_text(
        'SecRule REMOTE_ADDR "@ipMatch 10.0.0.0/8" "id:1,phase:1,allow,nolog"\n'
        'SecRule ARGS "@contains bad" "id:2,phase:2,deny"\n'
    )
    assert waf.transaction(client_ip="10.1.1.1").process_request(req("/?x=bad")) is None
    assert waf.transaction(client_ip="192.0.2.1").process_request(req("/?x=bad")) is not None


def test_request_body_processors_feed_args() -> None:
    waf = WAF.from_text(
        'SecRule ARGS:json.user.role "@streq admin" "id:1,phase:2,deny,status:401"\n'
        'SecRule ARGS_POST:name "@contains <" "id:2,phase:2,deny,status:402"\n'
        'SecRule XML:/* "@contains attack" "id:3,phase:2,deny,status:403"\n'
    )
    body = json.dumps({"user": {"role": "admin"}}).encode()
    it = waf.transaction().process_request(req("/", "POST", body, Content_Type="application/json"))
    assert it is not None and it.status == 401
    it = waf.transaction().process_request(
        req("/", "POST", b"name=%3Cb", Content_Type="application/x-www-form-urlencoded")
    )
    assert it is not None and it.status == 402
    it = waf.transaction().process_request(
        req("/", "POST", b"<a><b>attack</b></a>", Content_Type="text/xml")
    )
    assert it is not None and it.status == 403


def test_unparseable_body_is_refused_with_400() -> None:
    waf = WAF.from_text("")
    tx = waf.transaction()
    it = tx.process_request(req("/", "POST", b'{"broken": ', Content_Type="application/json"))
    assert it is not None and it.status == 400 and it.rule_id == 200002
    assert "JSON parsing error" in tx.data.scalars["REQBODY_ERROR_MSG"]


def test_response_phases_inspect_status_headers_and_body() -> None:
    waf = WAF.from_text(
        'SecRule RESPONSE_STATUS "@streq 500" "id:1,phase:3,pass,log,msg:\'server error\'"\n'
        'SecRule RESPONSE_BODY "@contains SQL syntax" "id:2,phase:4,deny,status:502"\n'
    )
    tx = waf.transaction()
    assert tx.process_request(req("/")) is None
    it = tx.process_response(
        HttpResponse(500, [("Content-Type", "text/html")], b"You have an error in your SQL syntax")
    )
    assert it is not None and it.status == 502
    record = tx.finish()
    assert [m["id"] for m in record["matched_rules"]] == [1, 2]
    assert record["action"] == "deny" and json.dumps(record)


def test_response_body_of_other_types_is_not_read() -> None:
    waf = WAF.from_text('SecRule RESPONSE_BODY "@contains secret" "id:2,phase:4,deny"\n')
    tx = waf.transaction()
    tx.process_request(req("/"))
    assert (
        tx.process_response(HttpResponse(200, [("Content-Type", "image/png")], b"secret")) is None
    )


def test_audit_record_truncates_data() -> None:
    waf = WAF.from_text(
        "SecRule ARGS \"@rx .\" \"id:9,phase:2,pass,logdata:'%{MATCHED_VAR}',tag:'t1',severity:2\"\n"  # noqa: E501
    )
    tx = waf.transaction(request_id="req-1")
    tx.process_request(req("/?a=" + "x" * 1000))
    record = tx.finish()
    entry = record["matched_rules"][0]
    assert record["request_id"] == "req-1" and tx.request_id == "req-1"
    assert len(entry["data"]) == 200 and entry["tags"] == ["t1"] and entry["severity"] == "CRITICAL"
    assert entry["matched_var"] == "ARGS:a" and entry["matched_value"] == "x" * 200
    assert waf.request_body_limit > 0 and "text/html" in waf.response_mime_types


def test_concurrent_transactions_keep_their_own_state(crs_waf: WAF) -> None:
    errors: list[str] = []

    def worker(n: int) -> None:
        for i in range(15):
            attack = (n + i) % 2 == 0
            uri = "/?id=1%27%20OR%20%271%27=%271" if attack else f"/?page={i}"
            tx = crs_waf.transaction(request_id=f"{n}-{i}")
            it = tx.process_request(
                HttpRequest(
                    "GET", uri, headers=[("Host", "x"), ("User-Agent", "t"), ("Accept", "*/*")]
                )
            )
            if (it is not None) != attack or tx.finish()["request_id"] != f"{n}-{i}":
                errors.append(f"{n}-{i}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_body_over_the_limit_is_refused_in_blocking_mode() -> None:
    from milliwatt.shield.waf import WafSettings

    waf = WAF.from_text("SecRequestBodyLimit 10\n")
    it = waf.transaction().process_request(req("/", "POST", b"x" * 11, Content_Type="text/plain"))
    assert it is not None and it.status == 413
    assert (
        waf.transaction().process_request(req("/", "POST", b"x" * 10, Content_Type="text/plain"))
        is None
    )
    assert WafSettings(request_body_limit=5).request_body_limit == 5


def test_hostile_input_never_crashes_the_engine(crs_waf: WAF) -> None:
    import random

    rng = random.Random(1)
    ctypes_ = [
        "application/json",
        "multipart/form-data; boundary=b",
        "text/xml",
        "application/x-www-form-urlencoded",
        "",
        "multipart/form-data",
    ]
    alphabet = "%&=;<>\"'\\/\x00\xff{}[]--#ab\r\n \t\u0100\u2028"
    for i in range(120):
        junk = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        headers = [
            ("Host", "x"),
            ("Content-Type", ctypes_[i % len(ctypes_)]),
            ("Cookie", junk),
            (junk or "X", junk),
        ]
        request = HttpRequest(
            rng.choice(["GET", "POST", "\u00e9", ""]),
            "/" + junk,
            "HTTP/1.1",
            headers,
            junk.encode("utf-8", "surrogatepass"),
        )
        tx = crs_waf.transaction()
        tx.process_request(request)
        tx.process_response(HttpResponse(200, [("Content-Type", "text/html")], junk.encode()))
        assert json.dumps(tx.finish())


def test_arguments_past_the_limit_make_the_body_unparsed() -> None:
    waf = WAF.from_text("SecArgumentsLimit 3\n")  # engine.conf: JSON processor, 200002
    few = json.dumps({"a": [1, 2, 3]}).encode()
    many = json.dumps({"a": list(range(30_000))}).encode()
    json_type = {"Content_Type": "application/json"}
    assert waf.transaction().process_request(req("/", "POST", few, **json_type)) is None
    it = waf.transaction().process_request(req("/", "POST", many, **json_type))
    assert it is not None and it.status == 400 and it.rule_id == 200002
