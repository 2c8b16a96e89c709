"""`code.run`: run a short Python or shell program in the OS sandbox (`shield.sandbox`).

The program has no network, sees no data directory and no home, keeps nothing after it
ends, and is stopped at the limits. Without bubblewrap the tool refuses: it never runs code
unsandboxed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from milliwatt.shield.sandbox import Limits, SandboxUnavailable, run
from milliwatt.tools.registry import Effect, Tool, ToolError, tool

MAX_CODE_CHARS = 64_000
MAX_TIMEOUT_S = 60.0
_INTERPRETERS = {"python": ["python3", "-I", "-c"], "shell": ["sh", "-c"]}


@tool(
    effects=[Effect.EXECUTES],
    name="code.run",
    examples=["run this python code: print(sum(range(10)))", "run the shell command uname -a"],
)
def run_code(
    language: Literal["python", "shell"],
    code: Annotated[str, Field(min_length=1, max_length=MAX_CODE_CHARS)],
    timeout_s: Annotated[float, Field(gt=0, le=MAX_TIMEOUT_S)] = 10.0,
) -> dict[str, Any]:
    """Run a short Python or shell program in an isolated sandbox; returns exit code and output.

    No network, no files outside a scratch /tmp, limited time, memory and processes.
    """
    try:
        result = run([*_INTERPRETERS[language], code], Limits(wall_s=timeout_s))
    except SandboxUnavailable as exc:
        raise ToolError(str(exc)) from None
    return result.as_json()


TOOLS: list[Tool] = [run_code]
