"""`code.run`: Python and shell in the sandbox; no bubblewrap, no run; opt-in selection."""

from __future__ import annotations

import pytest

from milliwatt.tools.builtin import builtin_registry, select_tools
from milliwatt.tools.code import run_code
from milliwatt.tools.registry import Effect


def test_python_and_shell_run_in_the_sandbox() -> None:
    code = "import os; print(sum(range(10)), os.getuid())"
    py = run_code.call({"language": "python", "code": code})
    assert py.ok and py.value["exit_code"] == 0
    assert py.value["stdout"].split()[0] == "45"
    sh = run_code.call({"language": "shell", "code": "ls /; cat /etc/shadow"})
    assert sh.ok and sh.value["exit_code"] != 0
    assert "No such file" in sh.value["stderr"]
    assert run_code.effects == frozenset({Effect.EXECUTES})


def test_a_program_past_its_time_is_stopped() -> None:
    result = run_code.call({"language": "shell", "code": "sleep 20", "timeout_s": 0.5})
    assert result.value["timed_out"] and result.value["killed_by"] == "timeout"


def test_bad_arguments_are_refused_by_name() -> None:
    result = run_code.call({"language": "ruby", "code": "puts 1"})
    assert not result.ok and "language" in (result.error or "")
    result = run_code.call({"language": "python", "code": "", "timeout_s": 999})
    assert "code" in (result.error or "") and "timeout_s" in (result.error or "")


def test_without_bubblewrap_the_tool_refuses_instead_of_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    result = run_code.call({"language": "shell", "code": "touch /tmp/x; echo ran"})
    assert not result.ok and "bubblewrap" in (result.error or "")


def test_code_execution_is_selected_only_by_name() -> None:
    registry = builtin_registry()
    assert "code.run" in registry
    assert "code.run" not in select_tools(registry, ["*"])
    assert "code.run" in select_tools(registry, ["code.*"])
    assert select_tools(registry, ["code.run", "math.*"])[-1] == "code.run"


def test_mcp_serve_does_not_offer_code_execution_unless_asked() -> None:
    from milliwatt.gateway.mcp_cli import _load_registry

    served = _load_registry(None)
    assert "code.run" not in served and "math.calculate" in served
