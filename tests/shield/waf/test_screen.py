"""The screen asked value by value: which screened rules a request's values may fire."""

from __future__ import annotations

from milliwatt.shield.waf import WAF, HttpRequest
from milliwatt.shield.waf.screen import ruled_out

RULES = (
    'SecRule ARGS "@rx evil" "id:1,phase:2,deny,status:401"\n'
    'SecRule ARGS "@rx evil" "id:2,phase:2,deny,status:402,t:lowercase"\n'
    'SecRule REQUEST_HEADERS "@rx evil" "id:3,phase:2,deny,status:403"\n'
    'SecRule ARGS|!ARGS:note "@rx wicked" "id:4,phase:2,deny,status:404"\n'
    'SecRule UNIQUE_ID "@rx ^[0-9a-f]{8}" "id:5,phase:2,pass,log,msg:\'hex id\'"\n'
)


def screened(waf: WAF, target: str, headers: list[tuple[str, str]] | None = None) -> dict:
    """Per rule id: whether the value screen passes it over; and the verdict's status."""
    tx = waf.transaction()
    verdict = tx.process_request(HttpRequest("GET", target, headers=headers or [("Host", "x")]))
    program = waf.phases[2]
    assert program.screen is not None
    out = ruled_out(tx, program.screen)
    passed_over = {rule.id: bool(out[i]) for i, rule in enumerate(program.rules)}
    return {"passed_over": passed_over, "status": verdict.status if verdict else None}


def test_a_value_fires_only_the_rules_that_read_it_transformed_their_way() -> None:
    waf = WAF.from_text(RULES)
    plain = screened(waf, "/?a=fine")
    assert [plain["passed_over"][i] for i in (1, 2, 3, 4)] == [True] * 4
    assert plain["status"] is None

    shouted = screened(waf, "/?a=EVIL")  # matches only once lowercased: rule 2, not 1
    assert shouted["passed_over"][1] and not shouted["passed_over"][2]
    assert shouted["passed_over"][3]  # an argument's value never fires a header rule
    assert shouted["status"] == 402

    header = screened(waf, "/?a=fine", [("Host", "x"), ("X-Note", "evil")])
    assert header["passed_over"][1] and not header["passed_over"][3]
    assert header["status"] == 403


def test_exclusions_leave_a_rule_in_and_its_own_step_decides() -> None:
    waf = WAF.from_text(RULES)
    excluded = screened(waf, "/?note=wicked")
    # the screen does not read exclusions: the rule is left in, and it does not fire
    assert not excluded["passed_over"][4]
    assert excluded["status"] is None
    assert screened(waf, "/?other=wicked")["status"] == 404


def test_a_value_new_in_every_transaction_is_not_screened_ahead() -> None:
    waf = WAF.from_text(RULES)
    program = waf.phases[2]
    assert program.screen is not None
    index = next(i for i, r in enumerate(program.rules) if r.id == 5)
    assert index not in program.screen.indexes
    # still evaluated, by the walk, when reached
    tx = waf.transaction(request_id="abcdef0123456789")
    tx.process_request(HttpRequest("GET", "/", headers=[("Host", "x")]))
    assert [m.id for m in tx.matched_rules] == [5]
    tx = waf.transaction(request_id="zzzz0123")
    tx.process_request(HttpRequest("GET", "/", headers=[("Host", "x")]))
    assert tx.matched_rules == []
    assert all("abcdef0123456789" not in answers for answers in waf.caches.slotted.values())


def test_answers_per_value_outlive_the_transformed_values() -> None:
    waf = WAF.from_text(RULES)
    screened(waf, "/?a=EVIL")
    caches = waf.caches
    kept = {key: dict(answers) for key, answers in caches.slotted.items()}
    assert any("EVIL" in answers for answers in kept.values())
    caches.transformed.update({(str(n), "x"): "" for n in range(caches.MAX_ENTRIES + 1)})
    caches.make_room()  # the transformed values are over their bound: emptied
    assert caches.transformed == {}
    assert {key: dict(answers) for key, answers in caches.slotted.items()} == kept
    assert screened(waf, "/?a=EVIL")["status"] == 402  # and the kept answer still holds


def test_unique_values_cannot_grow_the_shared_caches_past_their_bound() -> None:
    waf = WAF.from_text('SecRule ARGS "@rx evil" "id:1,phase:2,deny,status:401"')
    caches = waf.caches
    for n in range(2_200):  # 2,200 values of 4,000 characters: past the 8 M character bound
        value = f"{n:06d}" + "x" * 3_994
        tx = waf.transaction()
        assert (
            tx.process_request(HttpRequest("GET", f"/?a={value}", headers=[("Host", "x")])) is None
        )
        held = sum(len(v) for v in caches.matched)
        assert held <= caches.MAX_CHARS + 4_096, n
        assert sum(len(raw) for answers in caches.slotted.values() for raw in answers) <= (
            caches.MAX_CHARS + 4_096
        )
    assert screened(waf, "/?a=evil")["status"] == 401
