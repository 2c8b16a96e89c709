"""The information-flow policy: what a run may still do once untrusted content is in its context.

Before that, every call runs (the user asked; nothing else has spoken). After it, a call to a
tool that sends, writes, spends, executes code or reaches the network is guarded: each value
that says where its effect lands (a recipient, a URL's host, a file path, an amount) must be
one the user named or one the agent's `[agents.policy]` allows; a call with no such value
must have been written by the user word for word. Anything else goes to the approval hook
(a person says yes or no; silence is no) or is denied. The model is never asked: a fully
fooled model changes what is attempted, not what is allowed.
"""

from __future__ import annotations

import fnmatch
import math
import posixpath
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Any, Protocol
from urllib.parse import urlsplit

from milliwatt.agent.provenance import Provenance
from milliwatt.config import PolicyConfig
from milliwatt.shield.redaction import redact_record
from milliwatt.tools.registry import Effect, Tool, ToolContext

GUARDED = (Effect.SENDS, Effect.WRITES, Effect.SPENDS, Effect.EXECUTES, Effect.NETWORK)
Audit = Callable[[str, Mapping[str, object]], None]
_RECIPIENT_KEYS = {"to", "cc", "bcc", "recipient", "recipients", "address", "email"}
_URL_KEYS = {"url", "urls", "link", "href", "endpoint"}
_PATH_KEYS = {"path", "file", "filename", "destination", "target"}
_AMOUNT_KEYS = {"amount", "price", "cost", "total", "sum"}
_CODE_KEYS = {"code", "command", "cmd", "script", "source", "program"}
_EMAIL = re.compile(r"^<?[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+>?$")


@dataclass(frozen=True)
class ApprovalRequest:
    """A guarded call waiting for a person's decision."""

    id: str
    agent: str
    user: str
    tool: str
    arguments: dict[str, Any]
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "user": self.user,
            "tool": self.tool,
            "arguments": self.arguments,
            "reasons": list(self.reasons),
        }


class Approver(Protocol):
    """Asks a person; returns True only for an explicit yes within `timeout` seconds."""

    def approve(self, request: ApprovalRequest, timeout: float) -> bool: ...


class InjectionDetector(Protocol):
    def is_injection(self, text: str) -> bool: ...


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    by: str  # "clean" (no untrusted content yet), "policy" or "approval"


class FlowPolicy:
    """One agent's policy, its approval hook, audit callback and injection detector."""

    def __init__(
        self,
        config: PolicyConfig,
        *,
        approver: Approver | None = None,
        audit: Audit | None = None,
        detector: InjectionDetector | None = None,
    ) -> None:
        self.config = config
        self.approver = approver
        self.audit = audit
        self.detector = detector

    def check(
        self, tool: Tool, arguments: Mapping[str, Any], flow: Provenance, context: ToolContext
    ) -> Decision:
        guarded = [e for e in GUARDED if e in tool.effects]
        if not guarded or not flow.tainted:
            return Decision(True, "no untrusted content in the context", "clean")
        if any(fnmatch.fnmatchcase(tool.name, p) for p in self.config.allow_tools):
            return Decision(True, f"{tool.name} is in policy.allow_tools", "policy")
        problems = [p for e in guarded for p in self._problems(e, arguments, flow)]
        if not problems:
            return Decision(
                True, "every target is one the user named or the policy allows", "policy"
            )
        after = f"after reading untrusted content ({', '.join(flow.sources)})"
        reason = f"{'; '.join(problems)} {after}"
        if self.config.on_untrusted == "ask" and self.approver is not None:
            request = ApprovalRequest(
                uuid.uuid4().hex[:12], context.agent, context.user, tool.name,
                dict(arguments), tuple(problems),
            )  # fmt: skip
            if self.approver.approve(request, self.config.approval_timeout_seconds):
                self._audit("policy.approved", tool, arguments, context, reason)
                return Decision(True, f"approved by a person: {reason}", "approval")
            decision = Decision(False, f"{reason}; not approved", "approval")
        else:
            decision = Decision(False, reason, "policy")
        self._audit("policy.denied", tool, arguments, context, decision.reason)
        return decision

    def quarantine(self, text: str) -> bool:
        """True when the detector takes `text` for a prompt injection."""
        return self.detector is not None and bool(self.detector.is_injection(text))

    def _problems(self, effect: Effect, args: Mapping[str, Any], flow: Provenance) -> list[str]:
        if effect is Effect.EXECUTES and self.config.execute:
            return []
        targets = _targets(effect, args)
        if not targets:  # nothing names where the effect lands: only the user's own call
            if args and all(flow.named(v) for v in _strings(args)):
                return []
            return [f"{effect.value} with arguments the user did not give"]
        what = _TARGET[effect]
        bad = [t for t in targets if not self._target_ok(effect, t, flow)]
        return [f"{what} {t!r} is not one the user named or the policy allows" for t in bad]

    def _target_ok(self, effect: Effect, target: str, flow: Provenance) -> bool:
        c = self.config
        if effect is Effect.NETWORK:
            return target in flow.named_hosts() or any(
                _domain_ok(r, target) for r in c.fetch_domains
            )
        if flow.named(target):
            return True
        if effect is Effect.SENDS:
            return _address_ok(target, c.send_to)
        if effect is Effect.WRITES:
            path = _relative(target)
            return flow.named(path) or any(fnmatch.fnmatchcase(path, g) for g in c.write_paths)
        if effect is Effect.SPENDS:
            amount = _number(target)
            return amount in flow.named_numbers() or (
                c.spend_max is not None and amount <= c.spend_max
            )
        return False  # code the user did not write runs only with policy.execute

    def _audit(
        self,
        event: str,
        tool: Tool,
        arguments: Mapping[str, Any],
        context: ToolContext,
        reason: str,
    ) -> None:
        if self.audit is None:
            return
        self.audit(
            event,
            {
                "agent": context.agent,
                "user": context.user,
                "session": context.session,
                "tool": tool.name,
                "effects": sorted(e.value for e in tool.effects),
                "arguments": redact_record(dict(arguments)),
                "reason": reason,
            },
        )


_TARGET = {
    Effect.SENDS: "recipient",
    Effect.NETWORK: "host",
    Effect.WRITES: "path",
    Effect.SPENDS: "amount",
    Effect.EXECUTES: "code",
}


def _targets(effect: Effect, args: Mapping[str, Any]) -> list[str]:
    """The values that say where a call's effect lands: recipients, hosts, paths, amounts."""
    if effect is Effect.SENDS:
        return _values(args, _RECIPIENT_KEYS, lambda v: bool(_EMAIL.match(v)))
    if effect is Effect.NETWORK:
        return [_host(u).casefold() for u in _values(args, _URL_KEYS, _looks_like_url)]
    if effect is Effect.WRITES:
        return _values(args, _PATH_KEYS, lambda v: False)
    if effect is Effect.SPENDS:
        return [_amount(v) for k, v in args.items() if k.lower() in _AMOUNT_KEYS]
    return _values(args, _CODE_KEYS, lambda v: False)  # EXECUTES: the code itself


def _strings(args: Mapping[str, Any]) -> Iterable[str]:
    for value in args.values():
        items = value if isinstance(value, list | tuple) else [value]
        yield from (str(v) for v in items if str(v).strip())


def _values(args: Mapping[str, Any], keys: set[str], shape: Callable[[str], bool]) -> list[str]:
    """Argument values under one of `keys`, or of the right shape under any key; recipient
    fields give their addresses ("Bob <bob@x.example>, c@y.example": both addresses)."""
    found: list[str] = []
    for key, value in args.items():
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if not isinstance(item, str):
                continue
            parts = [item.strip()]
            if key.lower() in _RECIPIENT_KEYS:
                parts = [a or n for n, a in getaddresses([item])] or parts
            found += [p for p in parts if p and (key.lower() in keys or shape(p))]
    return found


def _looks_like_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://", "//"))


def _host(url: str) -> str:
    try:
        return (urlsplit(url if "//" in url else "//" + url).hostname or url).rstrip(".")
    except ValueError:
        return url


def _address_ok(address: str, rules: list[str]) -> bool:
    address = address.strip().strip("<>").casefold()
    for rule in rules:
        rule = rule.casefold()
        if fnmatch.fnmatchcase(address, "*" + rule if rule.startswith("@") else rule):
            return True
    return False


def _domain_ok(rule: str, host: str) -> bool:
    rule, host = rule.casefold(), host.casefold()
    if rule.startswith("*."):
        return host.endswith(rule[1:])
    if rule.startswith("."):
        return host == rule[1:] or host.endswith(rule)
    return host == rule


def _relative(path: str) -> str:
    return posixpath.normpath(path.replace("\\", "/")).lstrip("/")


def _amount(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        return math.inf  # an amount that is not a number is never under a limit
    return number if math.isfinite(number) and number >= 0 else math.inf
