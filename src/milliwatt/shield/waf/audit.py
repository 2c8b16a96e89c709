"""The audit record of a finished transaction: JSON-ready, matched data cut short."""

from __future__ import annotations

from typing import Any, Protocol

from milliwatt.shield.waf.api import HttpRequest, Interruption, MatchedRule
from milliwatt.shield.waf.operators import to_int
from milliwatt.shield.waf.variables import TxData


class Audited(Protocol):
    """What the audit record reads of a finished transaction."""

    request_id: str
    engine: str
    audit_engine: str
    data: TxData
    matched_rules: list[MatchedRule]
    interruption: Interruption | None


DATA_LIMIT = 200  # characters of matched data kept per audit entry


def _score(value: str | None) -> int:
    return to_int(value or "0")  # read as the rules read it: a rule may store anything there


def audit_record(tx: Audited, request: HttpRequest | None, seconds: float) -> dict[str, Any]:
    it = tx.interruption
    scalars, tv = tx.data.scalars, tx.data.tx
    return {
        "request_id": tx.request_id,
        "client": {"ip": scalars["REMOTE_ADDR"], "port": _score(scalars["REMOTE_PORT"])},
        "method": request.method if request else "",
        "uri": request.uri if request else "",
        "engine": tx.engine,
        "audit_engine": tx.audit_engine,  # "off": a ctl: asked that this one be left unlogged
        "matched_rules": [
            {
                "id": m.id,
                "msg": m.msg,
                "data": m.data[:DATA_LIMIT],
                "severity": m.severity,
                "tags": list(m.tags),
                "phase": m.phase,
                "matched_var": m.matched_var[:DATA_LIMIT],
                "matched_value": m.matched_value[:DATA_LIMIT],
            }
            for m in tx.matched_rules
        ],
        "anomaly_score": {
            "inbound": _score(tv.get("blocking_inbound_anomaly_score")),
            "outbound": _score(tv.get("blocking_outbound_anomaly_score")),
        },
        "action": it.action if it else "pass",
        "status": it.status if it else None,
        "rule_id": it.rule_id if it else None,
        "duration_ms": round(seconds * 1000, 3),
    }
