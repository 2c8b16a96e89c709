"""What each `ctl:` setting does to the transaction of the rule that runs it.

One handler per `CtlSetting` (a test checks that none is missing); values were checked at load
where they hold no macro, and an expanded value that makes no sense leaves the setting as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from milliwatt.shield.waf.actions import CtlSetting
from milliwatt.shield.waf.seclang import split_targets
from milliwatt.shield.waf.variables import Target, compile_target

if TYPE_CHECKING:
    from milliwatt.shield.waf.transaction import Transaction

Control = Callable[["Transaction", str], None]


def as_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return 0


def _rule_engine(tx: Transaction, value: str) -> None:
    if value.lower() in ("on", "off", "detectiononly"):
        tx.engine = value.lower()


def _audit_engine(tx: Transaction, value: str) -> None:
    if value.lower() in ("on", "off", "relevantonly"):
        tx.audit_engine = value.lower()


def _remove_by_id(tx: Transaction, value: str) -> None:
    tx.removing = True
    for spec in value.split():
        lo, dash, hi = spec.partition("-")
        if dash:
            tx.removed_ranges.append((as_int(lo), as_int(hi)))
        else:
            tx.removed_ids.add(as_int(spec))


def _remove_by_tag(tx: Transaction, value: str) -> None:
    tx.removing = True
    tx.removed_tags.add(value)


def _remove_by_msg(tx: Transaction, value: str) -> None:
    tx.removing = True
    tx.removed_msgs.add(value)


# a ctl: value's targets, parsed once: the same removals run on nearly every request
_PARSED_TARGETS: dict[str, tuple[Target, ...]] = {}


def _targets_of(targets: str) -> tuple[Target, ...]:
    parsed = _PARSED_TARGETS.get(targets)
    if parsed is None:
        parsed = tuple(compile_target(spec) for spec in split_targets(targets, "ctl", 0))
        if len(_PARSED_TARGETS) < 1024:  # values built from request data could be many
            _PARSED_TARGETS[targets] = parsed
    return parsed


def _remove_targets(setting: CtlSetting) -> Control:
    """`ctl:ruleRemoveTargetBy{Id,Tag,Msg}=<selector>;<targets>`."""

    def remove(tx: Transaction, value: str) -> None:
        tx.retargeting = True
        tx.removals = (*tx.removals, f"{setting}={value}")
        selector, _, targets = value.partition(";")
        for target in _targets_of(targets):
            tx.tx_retargeted |= target.name == "TX"
            if setting is CtlSetting.RULE_REMOVE_TARGET_BY_ID:
                tx.removed_targets.setdefault(as_int(selector), []).append(target)
            elif setting is CtlSetting.RULE_REMOVE_TARGET_BY_TAG:
                tx.removed_targets_by_tag.append((selector, target))
            else:
                tx.removed_targets_by_msg.append((selector, target))

    return remove


def _body_processor(tx: Transaction, value: str) -> None:
    tx.body_processor = value.upper()
    tx.data.scalars["REQBODY_PROCESSOR"] = tx.body_processor


def _force_request_body(tx: Transaction, value: str) -> None:
    tx.force_request_body = value.lower() == "on"


def _request_body_access(tx: Transaction, value: str) -> None:
    tx.request_body_access = value.lower() == "on"


def _response_body_access(tx: Transaction, value: str) -> None:
    tx.response_body_access = value.lower() == "on"


def _request_body_limit(tx: Transaction, value: str) -> None:
    if value.strip().isdigit():
        tx.request_body_limit = int(value)


def _response_body_limit(tx: Transaction, value: str) -> None:
    if value.strip().isdigit():
        tx.response_body_limit = int(value)


CONTROLS: dict[CtlSetting, Control] = {
    CtlSetting.AUDIT_ENGINE: _audit_engine,
    CtlSetting.FORCE_REQUEST_BODY_VARIABLE: _force_request_body,
    CtlSetting.REQUEST_BODY_ACCESS: _request_body_access,
    CtlSetting.REQUEST_BODY_LIMIT: _request_body_limit,
    CtlSetting.REQUEST_BODY_PROCESSOR: _body_processor,
    CtlSetting.RESPONSE_BODY_ACCESS: _response_body_access,
    CtlSetting.RESPONSE_BODY_LIMIT: _response_body_limit,
    CtlSetting.RULE_ENGINE: _rule_engine,
    CtlSetting.RULE_REMOVE_BY_ID: _remove_by_id,
    CtlSetting.RULE_REMOVE_BY_MSG: _remove_by_msg,
    CtlSetting.RULE_REMOVE_BY_TAG: _remove_by_tag,
    CtlSetting.RULE_REMOVE_TARGET_BY_ID: _remove_targets(CtlSetting.RULE_REMOVE_TARGET_BY_ID),
    CtlSetting.RULE_REMOVE_TARGET_BY_MSG: _remove_targets(CtlSetting.RULE_REMOVE_TARGET_BY_MSG),
    CtlSetting.RULE_REMOVE_TARGET_BY_TAG: _remove_targets(CtlSetting.RULE_REMOVE_TARGET_BY_TAG),
}
