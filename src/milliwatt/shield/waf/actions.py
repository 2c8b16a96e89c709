"""Actions that run while a transaction is inspected: setvar, ctl, initcol, ...

Metadata actions (id, msg, tag, ...) and flow actions (chain, skipAfter) are read by the rule
compiler; the ones here are compiled once and applied per match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from milliwatt.shield.waf.macros import Macro, compile_macro

PHASES = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "request": 2, "response": 4, "logging": 5}
SEVERITIES = ["EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"]
DISRUPTIVE = {"allow", "block", "deny", "drop", "pass", "proxy", "redirect", "pause"}
METADATA = {
    "id",
    "phase",
    "msg",
    "logdata",
    "tag",
    "severity",
    "ver",
    "rev",
    "maturity",
    "accuracy",
}
FLAGS = {"chain", "capture", "multimatch", "log", "nolog", "auditlog", "noauditlog", "t"}
FLOW = {"skip", "skipafter", "status"}


class ActionContext(Protocol):
    def expand(self, macro: Macro) -> str: ...
    def set_var(self, collection: str, key: str, value: str | None, op: str) -> None: ...
    def control(self, setting: CtlSetting, value: str) -> None: ...
    def init_collection(self, collection: str, key: str) -> None: ...


def parse_severity(value: str) -> str:
    upper = value.strip().upper()
    if upper.isdigit() and int(upper) < len(SEVERITIES):
        return SEVERITIES[int(upper)]
    if upper not in SEVERITIES:
        raise ValueError(f"unknown severity {value!r}")
    return upper


@dataclass(frozen=True, slots=True)
class SetVar:
    """`setvar:tx.score=+%{tx.critical_anomaly_score}`, `setvar:!tx.foo`, `setvar:tx.flag`."""

    collection: str
    key: Macro
    op: str  # "=", "+", "-", "delete"
    value: Macro

    def apply(self, tx: ActionContext) -> None:
        key = tx.expand(self.key).lower()
        value = None if self.op == "delete" else tx.expand(self.value)
        tx.set_var(self.collection, key, value, self.op)


def compile_setvar(text: str) -> SetVar:
    delete = text.startswith("!")
    body = text[1:] if delete else text
    name, eq, value = body.partition("=")
    collection, dot, key = name.partition(".")
    if not dot or not key:
        raise ValueError(f"setvar needs collection.name, got {text!r}")
    op = "delete" if delete else "="
    if eq and value[:1] in "+-" and value[:1]:
        op, value = value[0], value[1:]
    elif not eq and not delete:
        value = "1"
    return SetVar(collection.strip().upper(), compile_macro(key.strip()), op, compile_macro(value))


class CtlSetting(StrEnum):
    """The `ctl:` settings a rule may change for its own transaction (named in lower case)."""

    AUDIT_ENGINE = "auditengine"
    FORCE_REQUEST_BODY_VARIABLE = "forcerequestbodyvariable"
    REQUEST_BODY_ACCESS = "requestbodyaccess"
    REQUEST_BODY_LIMIT = "requestbodylimit"
    REQUEST_BODY_PROCESSOR = "requestbodyprocessor"
    RESPONSE_BODY_ACCESS = "responsebodyaccess"
    RESPONSE_BODY_LIMIT = "responsebodylimit"
    RULE_ENGINE = "ruleengine"
    RULE_REMOVE_BY_ID = "ruleremovebyid"
    RULE_REMOVE_BY_MSG = "ruleremovebymsg"
    RULE_REMOVE_BY_TAG = "ruleremovebytag"
    RULE_REMOVE_TARGET_BY_ID = "ruleremovetargetbyid"
    RULE_REMOVE_TARGET_BY_MSG = "ruleremovetargetbymsg"
    RULE_REMOVE_TARGET_BY_TAG = "ruleremovetargetbytag"


# settings ModSecurity knows that have nothing to act on here: refused at load, never ignored
CTL_REFUSED = {
    "auditlogparts": "the audit record has no parts to choose",
    "hashengine": "there is no hash engine",
    "hashenforcement": "there is no hash engine",
    "debugloglevel": "there is no debug log",
}
# settings whose value is checked at load when it holds no macro
CTL_CHOICES: dict[CtlSetting, tuple[str, ...]] = {
    CtlSetting.AUDIT_ENGINE: ("on", "off", "relevantonly"),
    CtlSetting.FORCE_REQUEST_BODY_VARIABLE: ("on", "off"),
    CtlSetting.REQUEST_BODY_ACCESS: ("on", "off"),
    CtlSetting.RESPONSE_BODY_ACCESS: ("on", "off"),
    CtlSetting.RULE_ENGINE: ("on", "off", "detectiononly"),
}
CTL_SIZES = {CtlSetting.REQUEST_BODY_LIMIT, CtlSetting.RESPONSE_BODY_LIMIT}
_CTL_NAMES = {setting.value for setting in CtlSetting}


@dataclass(frozen=True, slots=True)
class Ctl:
    """`ctl:ruleEngine=DetectionOnly`, `ctl:ruleRemoveById=920450`, ..."""

    setting: CtlSetting
    value: Macro

    def apply(self, tx: ActionContext) -> None:
        tx.control(self.setting, tx.expand(self.value))


def compile_ctl(text: str) -> Ctl:
    name, eq, raw = text.partition("=")
    key, value = name.strip().lower(), raw.strip()
    if key in CTL_REFUSED:
        raise ValueError(f"unsupported ctl:{name.strip()}: {CTL_REFUSED[key]}")
    if not eq or key not in _CTL_NAMES:
        raise ValueError(f"unsupported ctl {text!r}")
    setting = CtlSetting(key)
    macro = compile_macro(value)
    if macro.is_constant:
        choices = CTL_CHOICES.get(setting)
        if choices is not None and value.lower() not in choices:
            raise ValueError(f"ctl:{name.strip()} takes one of {', '.join(choices)}, got {value!r}")
        if setting in CTL_SIZES and not value.isdigit():
            raise ValueError(f"ctl:{name.strip()} takes a size in bytes, got {value!r}")
    return Ctl(setting, macro)


@dataclass(frozen=True, slots=True)
class InitCol:
    collection: str
    key: Macro

    def apply(self, tx: ActionContext) -> None:
        tx.init_collection(self.collection, tx.expand(self.key))


def compile_initcol(text: str) -> InitCol:
    collection, eq, key = text.partition("=")
    if not eq:
        raise ValueError(f"initcol needs collection=key, got {text!r}")
    return InitCol(collection.strip().upper(), compile_macro(key.strip()))


@dataclass(frozen=True, slots=True)
class NoEffect:
    """Actions accepted for compatibility that change nothing here (named, never silent)."""

    name: str

    def apply(self, tx: ActionContext) -> None:
        return None


RuntimeAction = SetVar | Ctl | InitCol | NoEffect

RUNTIME_ACTIONS: dict[str, Callable[[str], RuntimeAction]] = {
    "setvar": compile_setvar,
    "ctl": compile_ctl,
    "initcol": compile_initcol,
    # per-variable expiry and environment variables have no meaning in one in-process transaction
    "expirevar": lambda v: NoEffect("expirevar"),
    "setenv": lambda v: NoEffect("setenv"),
    "setuid": lambda v: NoEffect("setuid"),
    "setsid": lambda v: NoEffect("setsid"),
    "sanitisematched": lambda v: NoEffect("sanitiseMatched"),
    "sanitisearg": lambda v: NoEffect("sanitiseArg"),
}
