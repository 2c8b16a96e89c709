"""The front door before real scripted PoPs on loopback: nearest PoP by measured RTT, least
loaded replica, model and saturation fallback, streaming passed through, bad input."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from tests.edge.frontdoor_fixtures import (
    FAST_PROBES,
    chat,
    frontdoor_thread,
    pops,
    pops_toml,
    wait_until,
)

from milliwatt.edge.frontdoor import FrontDoor
from milliwatt.edge.pops import parse_config
from milliwatt.edge.routing import ranked
from milliwatt.errors import InvalidRequestError

CHAT = "/v1/chat/completions"


def served_by(url: str, body: dict[str, object], **headers: str) -> str:
    answer = httpx.post(url + CHAT, json=body, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-milliwatt-pop"]


def test_requests_go_to_the_nearest_pop_by_measured_rtt(tmp_path: Path) -> None:
    with pops(tmp_path) as make:
        far = make("far", delay_ms=80)
        near = make("near", delay_ms=2)
        # listed far first: the order in the file must not decide
        config = pops_toml({"far": [far.url], "near": [near.url]})
        with frontdoor_thread(config) as (url, door):
            assert {served_by(url, chat()) for _ in range(5)} == {"near"}
            state = {p["name"]: p for p in httpx.get(f"{url}/frontdoor/pops").json()["pops"]}
            assert state["near"]["rtt_ms"] < state["far"]["rtt_ms"]
            near.control(delay_ms=250)  # the path to "near" got longer
            ranks = lambda: door.pops[0].rtt_ms < door.pops[1].rtt_ms  # noqa: E731
            wait_until(ranks, timeout=15, message="far measured nearer")
            assert served_by(url, chat()) == "far"


def test_a_client_rtt_hint_ranks_the_pops_it_names(tmp_path: Path) -> None:
    with pops(tmp_path) as make:
        a, b = make("a"), make("b", delay_ms=80)
        with frontdoor_thread(pops_toml({"a": [a.url], "b": [b.url]})) as (url, _):
            assert served_by(url, chat(), **{"x-milliwatt-rtt": "b=1, a=90"}) == "b"
            assert served_by(url, chat()) == "a"
            bad = httpx.post(url + CHAT, json=chat(), headers={"x-milliwatt-rtt": "c=1"})
            assert bad.status_code == 400
            assert "no PoP is named 'c'" in bad.json()["error"]["message"]
            bad = httpx.post(url + CHAT, json=chat(), headers={"x-milliwatt-rtt": "a=fast"})
            assert bad.status_code == 400


def test_within_a_pop_the_least_loaded_replica_gets_the_request(tmp_path: Path) -> None:
    with pops(tmp_path) as make:
        one, two = make("fra"), make("fra")
        config = pops_toml({"fra": [one.url, two.url]}, FAST_PROBES + "show_replicas = true\n")
        with frontdoor_thread(config) as (url, door):

            async def burst() -> list[str]:
                async with httpx.AsyncClient(timeout=30) as client:
                    answers = await asyncio.gather(
                        *(client.post(url + CHAT, json=chat(content="hold 1.5")) for _ in range(6))
                    )
                return [a.headers["x-milliwatt-replica"] for a in answers]

            # six held at once: least-outstanding splits them 3/3 (at random: 3/3 in 31%)
            assert sorted(Counter(asyncio.run(burst())).values()) == [3, 3]
            # released when each relay ends (just after its client has the last byte)
            idle = lambda: [r.in_flight for r in door.pops[0].replicas] == [0, 0]  # noqa: E731
            wait_until(idle, timeout=5, message="no request in flight")


def test_a_model_the_nearest_pop_lacks_goes_to_the_next_that_has_it(tmp_path: Path) -> None:
    with pops(tmp_path) as make:
        near = make("near", models="milliwatt")
        far = make("far", models="milliwatt,large", delay_ms=80)
        with frontdoor_thread(pops_toml({"near": [near.url], "far": [far.url]})) as (url, door):
            wait_until(lambda: all(r.models for p in door.pops for r in p.replicas))
            listed = httpx.get(f"{url}/v1/models").json()["data"]
            assert sorted(m["id"] for m in listed) == ["large", "milliwatt"]
            assert served_by(url, chat("large")) == "far"
            assert served_by(url, chat("milliwatt")) == "near"
            unknown = httpx.post(url + CHAT, json=chat("nobody-serves-this"))
            assert unknown.status_code == 404  # the nearest PoP's own answer
            assert unknown.headers["x-milliwatt-pop"] == "near"


def test_a_saturated_pop_passes_its_users_to_the_next(tmp_path: Path) -> None:
    with pops(tmp_path) as make:
        near, far = make("near"), make("far", delay_ms=80)
        with frontdoor_thread(pops_toml({"near": [near.url], "far": [far.url]})) as (url, _):
            near.control(saturated=True)
            assert served_by(url, chat()) == "far"
            near.control(saturated=False, limited="pop_saturated")
            time.sleep(1.1)  # its Retry-After (1 s) of the 503 runs out
            assert served_by(url, chat()) == "far"
            # the caller's own limit follows the caller: passed through, not dodged
            near.control(limited="rate_limit_exceeded")
            time.sleep(1.1)
            limited = httpx.post(url + CHAT, json=chat())
            assert (limited.status_code, limited.headers["x-milliwatt-pop"]) == (429, "near")
            # everyone saturated: the client hears the refusal
            near.control(limited="", saturated=True)
            far.control(saturated=True)
            time.sleep(1.1)
            refused = httpx.post(url + CHAT, json=chat())
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "model_unavailable"


def test_a_stream_is_relayed_as_it_is_generated(tmp_path: Path) -> None:
    with pops(tmp_path) as make:
        pop = make("fra", pace_ms=300)
        with frontdoor_thread(pops_toml({"fra": [pop.url]})) as (url, _):
            started = time.monotonic()
            arrivals: list[float] = []
            text = ""
            body = chat(content="one two three four", stream=True)
            with httpx.stream("POST", url + CHAT, json=body, timeout=30) as answer:
                assert answer.headers["content-type"].startswith("text/event-stream")
                for line in answer.iter_lines():
                    if line.startswith("data: {"):
                        arrivals.append(time.monotonic() - started)
                        text += httpx.Response(200, content=line[6:]).json()["choices"][0]["delta"][
                            "content"
                        ]
            assert text == "fra: one two three four"
            # five words 300 ms apart: the first must not wait for the last
            assert arrivals[-1] - arrivals[0] > 0.9


def test_no_healthy_pop_is_a_503_with_retry_after(tmp_path: Path) -> None:
    with pops(tmp_path) as make:
        pop = make("fra")
        with frontdoor_thread(pops_toml({"fra": [pop.url]})) as (url, _):
            pop.kill()
            answer = httpx.post(url + CHAT, json=chat())  # refused: taken out at once
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "1"
            assert httpx.get(f"{url}/healthz").status_code == 503


def test_an_oversized_body_is_refused_before_any_pop_sees_it(tmp_path: Path) -> None:
    with pops(tmp_path) as make:
        pop = make("fra")
        settings = "[frontdoor]\nmax_body_bytes = 2048\n"
        with frontdoor_thread(pops_toml({"fra": [pop.url]}, settings)) as (url, _):
            answer = httpx.post(url + CHAT, json=chat(content="x" * 4096))
            assert answer.status_code == 400
            assert "over 2048 bytes" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[pops.fra]\nreplicas = ['ftp://x']\n", "pops.fra.replicas: 'ftp://x' is not an http"),
        ("[pops.Fra]\nreplicas = ['http://a']\n", "PoP name 'Fra'"),
        ("[pops.a]\nreplicas = ['http://h']\n[pops.b]\nreplicas = ['http://h/']\n",
         "http://h is a replica of both 'a' and 'b'"),
        ("[frontdoor]\nport = 8800\n", "pops: Field required"),
        ("[frontdoor]\nprobe_every = 1\n[pops.a]\nreplicas = ['http://h']\n",
         "frontdoor.probe_every: Extra inputs"),
        ("[pops.a\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_a_bad_pops_file_names_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=r"^pops\.toml: ") as caught:
        parse_config(text, "pops.toml")
    assert message in str(caught.value)


def test_a_stream_cut_by_a_dying_pop_is_cut_for_the_client_and_not_resent(
    tmp_path: Path,
) -> None:
    with pops(tmp_path) as make:
        store = tmp_path / "turns.db"
        near = make("near", pace_ms=400, store=store)
        far = make("far", delay_ms=80, store=store)
        with frontdoor_thread(pops_toml({"near": [near.url], "far": [far.url]})) as (url, _):
            body = chat(content="a b c d e f g h", stream=True, user="ada")
            received = ""
            with (
                pytest.raises(httpx.RemoteProtocolError),
                httpx.stream("POST", url + CHAT, json=body, timeout=30) as answer,
            ):
                assert answer.headers["x-milliwatt-pop"] == "near"
                for line in answer.iter_lines():
                    received += line
                    if "near:" in line:  # the first words are out: now the PoP dies
                        near.kill()
            assert "[DONE]" not in received  # never looks complete
            # the turn was sent once: the far PoP never got it; the next one goes there
            stored = httpx.get(f"{far.url}/v1/sessions/ada").json()["turns"]
            assert [t["pop"] for t in stored] == ["near"]
            assert served_by(url, chat()) == "far"


def test_requests_on_a_frozen_pop_are_cut_when_it_is_taken_out(tmp_path: Path) -> None:
    with pops(tmp_path) as make:
        near, far = make("near"), make("far", delay_ms=80)
        with frontdoor_thread(pops_toml({"near": [near.url], "far": [far.url]})) as (url, door):

            async def held_then_frozen() -> tuple[int, float]:
                async with httpx.AsyncClient(timeout=60) as client:
                    pending = asyncio.ensure_future(
                        client.post(url + CHAT, json=chat(content="hold 30"))
                    )
                    await asyncio.sleep(0.5)
                    near.freeze()
                    frozen_at = time.monotonic()
                    answer = await pending
                    return answer.status_code, time.monotonic() - frozen_at

            status, waited = asyncio.run(held_then_frozen())
            # out after 2 probe timeouts of 1 s (probes every 0.2 s): cut then, not in 600 s
            assert status == 502
            assert waited < 5
            assert served_by(url, chat()) == "far"
            assert door.pops[0].replicas[0].in_flight == 0
            near.freeze(False)  # back: healthy after 2 good probes, nearer once its
            # average forgets the slow first answers of a process that was stopped
            near_again = lambda: door.pops[0].healthy and ranked(door.pops)[0].name == "near"  # noqa: E731
            wait_until(near_again, timeout=20, message="near back and nearest")
            assert served_by(url, chat()) == "near"


def test_path_query_and_headers_reach_the_pop_as_sent(tmp_path: Path) -> None:
    with pops(tmp_path) as make:
        pop = make("fra")
        with frontdoor_thread(pops_toml({"fra": [pop.url + "/"]})) as (url, _):
            seen = httpx.get(
                f"{url}/echo/a%2Fb/c?q=x%20y&flag",
                headers={"authorization": "Bearer mw_k", "connection": "keep-alive"},
            ).json()
            assert (seen["raw_path"], seen["query"]) == ("/echo/a%2Fb/c", "q=x%20y&flag")
            assert seen["headers"]["authorization"] == "Bearer mw_k"
            assert seen["headers"]["host"] == pop.url.removeprefix("http://")
            assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_replica_addresses_stay_inside_unless_shown(tmp_path: Path) -> None:
    with pops(tmp_path) as make:
        pop = make("fra")
        with frontdoor_thread(pops_toml({"fra": [pop.url]})) as (url, _):
            answer = httpx.post(url + CHAT, json=chat())
            assert answer.headers["x-milliwatt-pop"] == "fra"
            assert "x-milliwatt-replica" not in answer.headers
            # the state is for operators on the machine: this client is on loopback
            assert httpx.get(f"{url}/frontdoor/pops").status_code == 200


def test_the_pops_state_is_refused_to_a_remote_client() -> None:
    door = FrontDoor(parse_config(pops_toml({"fra": ["http://10.1.0.5:8000"]})))

    async def ask(client: tuple[str, int]) -> int:
        transport = httpx.ASGITransport(door.app(), client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://door") as http:
            return (await http.get("/frontdoor/pops")).status_code

    assert asyncio.run(ask(("203.0.113.9", 40000))) == 403
    assert asyncio.run(ask(("127.0.0.1", 40000))) == 200
