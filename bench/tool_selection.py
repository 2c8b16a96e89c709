"""Tool preselection: prompt size and time to the model's first token, all tools vs top-k.

    python bench/tool_selection.py [--requests 6] [--threads 1]

For each request, the bundled SmolLM2-135M (llama.cpp, CPU) is given the agent's prompt
once with every built-in tool described and once with only the tools the selector picks,
and generates one constrained token: what is timed is reading the prompt (no prefix kept
from the call before), which is what the tool descriptions cost. The selector's own time
(one request embedding) is reported beside it. The last line holds the headline figures
as key=value pairs.
"""

from __future__ import annotations

import argparse
import statistics
import time

from milliwatt.agent.tool_selection import ToolSelector
from milliwatt.config import AgentConfig
from milliwatt.models.base import GenerationSettings, Message, ToolSpec
from milliwatt.models.llamacpp import LlamaCppModel
from milliwatt.models.loader import bundled_model_path
from milliwatt.tools.builtin import builtin_registry

REQUESTS = [
    "please convert this recipe's cups into grams for me",
    "how long until my next meeting on the calendar",
    "find every email address in the text I pasted",
    "what is the route with the fewest hops in my graph",
    "write a haiku about rain",
    "look up recent news about llama.cpp",
    "what did I ask you to remember about my flat",
    "explain photosynthesis to a child",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    tools = list(builtin_registry())
    every = [ToolSpec(t.name, t.description, t.parameters) for t in tools]
    selector = ToolSelector()
    selector.select("warm up", tools)  # tool texts embedded once, as an agent does
    model = LlamaCppModel(bundled_model_path(), threads=args.threads, timeout_seconds=900)
    system = Message("system", AgentConfig().instructions)
    one = GenerationSettings(max_tokens=1)
    model.complete([system, Message("user", "hi")], tools=every, settings=one)  # warm-up
    rows = []
    for request in REQUESTS[: args.requests]:
        prompt = [system, Message("user", request)]
        started = time.perf_counter()
        chosen = selector.select(request, tools)
        select_s = time.perf_counter() - started
        few = [ToolSpec(t.name, t.description, t.parameters) for t in chosen]
        timings = {}
        for label, specs in (("all", every), ("selected", few)):
            # forget the previous prompt: llama.cpp would reuse a shared prefix, which favours
            # an unchanging all-tools prompt on consecutive requests of one conversation only
            model._llama.reset()
            started = time.perf_counter()
            model.complete(prompt, tools=specs, settings=one)
            timings[label] = time.perf_counter() - started
        rows.append(
            {
                "request": request,
                "tools": len(few),
                "tokens_all": model.count_tokens(prompt, every),
                "tokens_selected": model.count_tokens(prompt, few),
                "first_token_all_s": timings["all"],
                "first_token_selected_s": timings["selected"] + select_s,
                "select_ms": select_s * 1000,
            }
        )
        print(
            f"{request[:48]:48}  tools {len(few)}  prompt {rows[-1]['tokens_all']:5} -> "
            f"{rows[-1]['tokens_selected']:4} tokens  first token {timings['all']:.2f} s -> "
            f"{timings['selected']:.2f} s (+{select_s * 1000:.0f} ms selecting)"
        )
    model.close()

    def mean(key: str) -> float:
        return statistics.mean(r[key] for r in rows)

    figures = {
        "tools_total": len(every),
        "tools_offered_mean": f"{mean('tools'):.2f}",
        "prompt_tokens_all": f"{mean('tokens_all'):.0f}",
        "prompt_tokens_selected": f"{mean('tokens_selected'):.0f}",
        "first_token_all_s": f"{mean('first_token_all_s'):.2f}",
        "first_token_selected_s": f"{mean('first_token_selected_s'):.2f}",
        "speedup": f"{mean('first_token_all_s') / mean('first_token_selected_s'):.1f}",
        "select_ms": f"{mean('select_ms'):.0f}",
    }
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
