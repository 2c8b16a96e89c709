"""`ctl:` settings: each one the loader accepts changes its transaction, the rest are refused."""

from __future__ import annotations

import pytest

from milliwatt.shield.waf import WAF, HttpRequest, HttpResponse, RuleLoadError
from milliwatt.shield.waf.actions import CtlSetting
from milliwatt.shield.waf.controls import CONTROLS

BAD_ARG = 'SecRule ARGS "@contains bad" "id:10,phase:2,deny,msg:\'bad argument\'"\n'


def req(uri: str = "/", method: str = "GET", body: bytes = b"") -> HttpRequest:
    headers = [("Host", "localhost")]
    if body:
        headers += [("Content-Type", "application/x-www-form-urlencoded")]
    return HttpRequest(method, uri, headers=headers, body=body)


def test_every_setting_has_one_handler() -> None:
    assert set(CONTROLS) == set(CtlSetting)


def test_rule_remove_by_msg_removes_exactly_the_rules_with_that_msg() -> None:
    waf = WAF.from_text(
        'SecRule REQUEST_URI "@beginsWith /x" "id:1,phase:1,pass,nolog,ctl:ruleRemoveByMsg=bad argument"\n'  # noqa: E501
        + BAD_ARG
        + 'SecRule ARGS "@contains worse" "id:11,phase:2,deny,msg:\'bad argument too\'"\n'
    )
    assert waf.transaction().process_request(req("/y?q=bad")).rule_id == 10  # type: ignore[union-attr]
    assert waf.transaction().process_request(req("/x?q=bad")) is None
    # another message, even one that starts the same, is untouched
    assert waf.transaction().process_request(req("/x?q=worse")).rule_id == 11  # type: ignore[union-attr]


def test_rule_remove_target_by_msg_drops_only_that_target() -> None:
    waf = WAF.from_text(
        'SecRule REQUEST_URI "@beginsWith /x" "id:1,phase:1,pass,nolog,'
        'ctl:ruleRemoveTargetByMsg=bad argument;ARGS:q"\n' + BAD_ARG
    )
    assert waf.transaction().process_request(req("/y?q=bad")) is not None
    assert waf.transaction().process_request(req("/x?q=bad")) is None
    assert waf.transaction().process_request(req("/x?r=bad")).rule_id == 10  # type: ignore[union-attr]


def test_request_body_limit_per_location_refuses_a_bigger_body() -> None:
    waf = WAF.from_text(
        "SecRequestBodyAccess On\n"
        'SecRule REQUEST_URI "@beginsWith /upload" "id:1,phase:1,pass,nolog,ctl:requestBodyLimit=16"\n'  # noqa: E501
    )
    body = b"a=" + b"x" * 30
    assert waf.transaction().process_request(req("/other", "POST", body)) is None
    assert waf.transaction().process_request(req("/upload", "POST", b"a=small")) is None
    it = waf.transaction().process_request(req("/upload", "POST", body))
    assert it is not None and it.status == 413


def test_response_body_limit_cuts_what_the_rules_see() -> None:
    waf = WAF.from_text(
        "SecResponseBodyAccess On\n"
        'SecRule REQUEST_URI "@beginsWith /short" "id:1,phase:1,pass,nolog,ctl:responseBodyLimit=8"\n'  # noqa: E501
        'SecRule RESPONSE_BODY "@contains secret" "id:2,phase:4,deny"\n'
    )
    response = HttpResponse(200, [("Content-Type", "text/plain")], b"12345678 secret")
    tx = waf.transaction()
    tx.process_request(req("/long"))
    assert tx.process_response(response) is not None
    tx = waf.transaction()
    tx.process_request(req("/short"))
    assert tx.process_response(response) is None
    assert tx.data.scalars["OUTBOUND_DATA_ERROR"] == "1"


def test_audit_engine_off_marks_the_record_unlogged() -> None:
    waf = WAF.from_text(
        'SecRule REQUEST_URI "@beginsWith /quiet" "id:1,phase:1,pass,nolog,ctl:auditEngine=Off"\n'
        + BAD_ARG
    )
    tx = waf.transaction()
    tx.process_request(req("/loud?q=bad"))
    assert tx.finish()["audit_engine"] == "relevantonly"
    tx = waf.transaction()
    tx.process_request(req("/quiet?q=bad"))
    assert tx.finish()["audit_engine"] == "off"


@pytest.mark.parametrize(
    ("ctl", "says"),
    [
        ("auditLogParts=ABZ", "no parts"),
        ("hashEngine=On", "no hash engine"),
        ("debugLogLevel=9", "no debug log"),
        ("requestBodyLimit=lots", "size in bytes"),
        ("ruleEngine=Maybe", "one of on, off, detectiononly"),
        ("noSuchSetting=1", "unsupported ctl"),
    ],
)
def test_settings_without_effect_are_refused_at_load(ctl: str, says: str) -> None:
    text = f'SecAction "id:1,phase:1,pass"\nSecAction "id:2,phase:1,pass,ctl:{ctl}"\n'
    with pytest.raises(RuleLoadError) as caught:
        WAF.from_text(text, name="exclusions.conf")
    assert "exclusions.conf" in str(caught.value) and ":2" in str(caught.value)
    assert says in str(caught.value)


def test_every_rule_action_has_one_handler() -> None:
    from milliwatt.shield.waf.actions import DISRUPTIVE, FLAGS, FLOW, METADATA, RUNTIME_ACTIONS
    from milliwatt.shield.waf.rules import RULE_ACTIONS

    assert set(RULE_ACTIONS) == METADATA | FLAGS | FLOW | DISRUPTIVE
    assert not set(RULE_ACTIONS) & set(RUNTIME_ACTIONS)
