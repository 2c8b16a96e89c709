"""What milliwatt's runtime costs on top of llama.cpp: the same prompt, greedy, measured
side by side in one run, interleaved so that machine load affects all paths alike.

    python bench/llm_overhead.py [--tokens 96] [--rounds 3]

Paths: raw llama-cpp-python (create_completion on a Llama of the same GGUF, in this
process), milliwatt's agent in process (template, budgets, ledger; the model generates in
its worker process), and milliwatt's HTTP server (`milliwatt serve` on loopback through the
openai client, WAF on as by default), answered whole and streamed. Tokens/s counts generated
tokens over wall time. EOS is suppressed everywhere so every path generates exactly
--tokens tokens.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import openai
from llama_cpp import Llama

from milliwatt.agent.runner import Agent
from milliwatt.config import AgentConfig
from milliwatt.models.base import Message, ModelSettings
from milliwatt.models.llamacpp import LlamaCppModel
from milliwatt.models.loader import bundled_model_path

PROMPT = "Write a long story about a lighthouse keeper and a storm."


def raw_tokens_per_second(llama: Llama, prompt: list[int], tokens: int) -> float:
    llama.reset()
    started = time.perf_counter()
    out = llama.create_completion(
        prompt, max_tokens=tokens, temperature=0.0, logit_bias={llama.token_eos(): -1e9}
    )
    elapsed = time.perf_counter() - started
    return out["usage"]["completion_tokens"] / elapsed


def agent_tokens_per_second(agent: Agent, tokens: int) -> float:
    started = time.perf_counter()
    result = agent.run(PROMPT)
    elapsed = time.perf_counter() - started
    assert result.ledger.completion_tokens == tokens, result.ledger.completion_tokens
    return tokens / elapsed


def http_tokens_per_second(client: openai.OpenAI, tokens: int) -> float:
    started = time.perf_counter()
    reply = client.chat.completions.create(
        model="milliwatt", messages=[{"role": "user", "content": PROMPT}]
    )
    elapsed = time.perf_counter() - started
    assert reply.usage is not None and reply.usage.completion_tokens == tokens
    return tokens / elapsed


def stream_tokens_per_second(client: openai.OpenAI, tokens: int) -> float:
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model="milliwatt", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta]
    elapsed = time.perf_counter() - started
    assert "".join(p or "" for p in pieces), "the stream carried no text"
    return tokens / elapsed


def start_server(workdir: Path, tokens: int, port: int) -> subprocess.Popen[bytes]:
    config = workdir / "milliwatt.toml"
    config.write_text(
        f"[models.smollm2-135m]\nmax_tokens = {tokens}\nignore_eos = true\n"
        f'[[agents]]\nname = "milliwatt"\ntools = []\nmax_tokens = {tokens}\n'
    )
    env = {**os.environ, "MILLIWATT_CONFIG": str(config), "MILLIWATT_DATA_DIR": str(workdir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "milliwatt.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=18181)
    args = parser.parse_args()

    model = LlamaCppModel(
        bundled_model_path(),
        name="smollm2-135m",
        settings=ModelSettings(max_tokens=args.tokens, ignore_eos=True),
    )
    agent = Agent(AgentConfig(tools=[], max_tokens=args.tokens), [model], watts_per_core=15.0)
    raw = Llama(str(model.path), n_ctx=2048, n_threads=model.threads, verbose=False)
    prompt = model._prompt([Message("user", PROMPT)], ())[0]
    with tempfile.TemporaryDirectory() as workdir:
        server = start_server(Path(workdir), args.tokens, args.port)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{args.port}/v1", api_key="x")
        try:
            raw_tokens_per_second(raw, prompt, 8)  # warm caches once
            http_tokens_per_second(client, args.tokens)
            rows: dict[str, list[float]] = {"raw": [], "agent": [], "http": [], "stream": []}
            for _ in range(args.rounds):
                rows["raw"].append(raw_tokens_per_second(raw, prompt, args.tokens))
                rows["agent"].append(agent_tokens_per_second(agent, args.tokens))
                rows["http"].append(http_tokens_per_second(client, args.tokens))
                rows["stream"].append(stream_tokens_per_second(client, args.tokens))
        finally:
            server.terminate()
            server.wait(10)
            model.close()
    median = {k: statistics.median(v) for k, v in rows.items()}
    for name, values in rows.items():
        print(f"{name:6} tokens/s median {median[name]:7.1f}  runs {[round(v, 1) for v in values]}")
    in_process = median["agent"] / median["raw"]
    over_http = median["http"] / median["raw"]
    streamed = median["stream"] / median["raw"]
    print(
        f"ratio in process {in_process:.3f}, over HTTP {over_http:.3f}, streamed {streamed:.3f} "
        "(goals: in process >= 0.95, over HTTP >= 0.9)"
    )
    print(
        f"tokens={args.tokens} rounds={args.rounds} raw_tps={median['raw']:.1f} "
        f"agent_tps={median['agent']:.1f} http_tps={median['http']:.1f} "
        f"stream_tps={median['stream']:.1f} ratio_in_process={in_process:.3f} "
        f"ratio_http={over_http:.3f} ratio_stream={streamed:.3f}"
    )


if __name__ == "__main__":
    main()
