"""The web chat and the console in a real browser: Debian's Chromium driven by Playwright.

A user sends messages and watches the answers stream, a tool call shown as it happens;
an operator opens the console and finds those requests, their route and cost, with the
same counts as the request ledger and /metrics. Screenshots go to build/screenshots/
(or $MILLIWATT_SCREENSHOTS)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import REPO, Server
from tests.gateway.live_app import PacedModel, live_app

from milliwatt.config import AgentConfig, ToolSelectionConfig

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("MILLIWATT_SCREENSHOTS") or REPO / "build" / "screenshots")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
AGENTS = [AgentConfig(name="milliwatt", tool_selection=ToolSelectionConfig(enabled=False))]
# counts the text updates of the newest answer while it streams
WATCH_STREAM = """() => {
  window.__updates = [];
  new MutationObserver(() => {
    const bodies = document.querySelectorAll('.msg.assistant .body');
    const last = bodies[bodies.length - 1];
    if (last) window.__updates.push(last.textContent.length);
  }).observe(document.getElementById('messages'),
             {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: scripts/install.sh --test installs Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    profile = tempfile.mkdtemp(prefix="mw-chromium-", dir=tmp_path)
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
            bypass_csp=True,  # lets the test's own probes run; the pages are served with CSP
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


def screenshot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def ask(page: Any, text: str) -> Any:
    """Send `text` in the chat; returns the answer's element once its figures are shown."""
    before = page.locator(".msg.assistant .stats").count()
    page.fill("#input", text)
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"document.querySelectorAll('.msg.assistant .stats').length > {before}", timeout=300_000
    )
    return page.locator(".msg.assistant").last


def metric(url: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_chat_streams_shows_tools_and_the_console_agrees(tmp_path: Path, browser: Any) -> None:
    with live_app(tmp_path / "data", PacedModel(pace=0.05), agents=AGENTS) as url:
        page = browser.new_page()
        sent: list[dict[str, str]] = []
        page.on("request", lambda r: sent.append(r.headers) if "/v1/chat" in r.url else None)
        page.goto(f"{url}/")
        page.evaluate("localStorage.setItem('milliwatt.apiKey', 'mw_test_key')")
        page.reload()
        assert page.locator("#agent").input_value() == "milliwatt"

        answer = ask(page, "what is 17% of 230")
        card = answer.locator(".toolcall")
        assert card.get_attribute("data-tool") == "math.calculate"
        assert "39.1" in card.inner_text() and "39.1" in answer.locator(".body").inner_text()
        stats = answer.locator(".stats")
        assert stats.get_attribute("data-route") == "tool"
        assert stats.locator(".badge").inner_text() == "tool"
        assert stats.locator(".tokens").inner_text() == "0 tokens"
        assert "J est." in stats.locator(".energy").inner_text()

        page.evaluate(WATCH_STREAM)
        answer = ask(page, "Tell me about the sea.")
        assert answer.locator(".body").inner_text() == "You said: Tell me about the sea."
        lengths = page.evaluate("window.__updates")
        assert len(set(lengths)) >= 4, f"the answer did not stream: {lengths}"
        assert answer.locator(".stats .badge").inner_text() == "smollm2-135m"
        assert int(answer.locator(".stats .tokens").inner_text().split()[0]) > 0
        assert all(h.get("authorization") == "Bearer mw_test_key" for h in sent) and sent
        session = page.locator(".session").first
        assert "what is 17% of 230" in session.inner_text()
        assert "2 turns" in session.inner_text()
        screenshot(page, "chat.png")

        # a scripted set besides: N tool and M model requests, one the WAF blocks
        tool_n, model_m = 3, 2
        for i in range(tool_n):
            body = {
                "model": "milliwatt",
                "messages": [{"role": "user", "content": f"what is {i} + 2"}],
            }
            assert (
                httpx.post(f"{url}/v1/chat/completions", json=body).json()["milliwatt"]["route"]
                == "tool"
            )
        for i in range(model_m):
            body = {"model": "milliwatt", "messages": [{"role": "user", "content": f"Say {i}."}]}
            assert (
                httpx.post(f"{url}/v1/chat/completions", json=body).json()["milliwatt"]["route"]
                == "model"
            )
        blocked = httpx.post(f"{url}/v1/chat/completions?x=<script>alert(1)</script>", json={})
        assert blocked.status_code == 403

        console = browser.new_page()
        console.goto(f"{url}/console")
        console.wait_for_selector("body[data-loaded='1']")
        summary = httpx.get(f"{url}/console/api/summary?window=1h").json()

        def count(lane: str) -> int:
            return int(console.locator(f"#latency tr[data-lane='{lane}'] td").nth(1).inner_text())

        assert count("tool") == tool_n + 1 == summary["routes"]["tool"]
        assert count("tool") == metric(url, "milliwatt_requests_total", route="tool", status="200")
        assert count("smollm2-135m") == model_m + 1 == summary["models"]["smollm2-135m"]
        assert count("smollm2-135m") == metric(
            url, "milliwatt_requests_total", route="model", status="200"
        )
        assert console.locator("#kpi-requests").inner_text() == str(tool_n + model_m + 3)
        assert console.locator("#kpi-refused").inner_text() == "1"
        assert console.locator("#waf-families tr[data-family='xss']").count() == 1
        assert console.locator("#kpi-saved").inner_text() not in ("", "–")
        tokens = summary["tokens"]["total"]
        assert console.locator("#kpi-tokens").inner_text().replace(",", "") == str(tokens)
        feed = console.locator("#feed tbody tr")
        assert feed.count() == tool_n + model_m + 3
        model_row = console.locator("#feed tr[data-route='model']").first
        assert "smollm2-135m" in model_row.inner_text() and "J" in model_row.inner_text()
        assert console.locator("canvas").count() >= 2  # both charts drawn

        # live: a request made now shows up without reloading
        body = {"model": "milliwatt", "messages": [{"role": "user", "content": "what is 40 + 2"}]}
        fresh = httpx.post(f"{url}/v1/chat/completions", json=body)
        row = console.locator(f"#feed tr[data-id='{fresh.headers['x-request-id']}']")
        row.wait_for(timeout=15_000)
        assert "math.calculate" in row.inner_text()
        screenshot(console, "console.png")


@pytest.mark.slow
def test_bundled_model_streams_in_the_browser(make_server: Any, browser: Any) -> None:
    server: Server = make_server(
        "[models.smollm2-135m]\nmax_tokens = 48\ntimeout_seconds = 600\n"
    ).start()
    page = browser.new_page()
    page.goto(f"{server.url}/")
    page.evaluate(WATCH_STREAM)
    answer = ask(page, "Tell me a short fact about the moon.")
    text = answer.locator(".body").inner_text()
    assert text.strip()
    assert len(set(page.evaluate("window.__updates"))) >= 3, "the answer did not stream"
    assert answer.locator(".stats .badge").inner_text() == "smollm2-135m"
    tokens = int(answer.locator(".stats .tokens").inner_text().split()[0])
    assert tokens > 0
    screenshot(page, "chat-bundled-model.png")
    console = browser.new_page()
    console.goto(f"{server.url}/console")
    console.wait_for_selector("#feed tr[data-route='model']")
    row = console.locator("#feed tr[data-route='model']").first.inner_text()
    assert "smollm2-135m" in row and str(tokens) in row
    screenshot(console, "console-bundled-model.png")
