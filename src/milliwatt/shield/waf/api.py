"""The data types the WAF's users see: requests, responses, settings, verdicts, errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


class RuleLoadError(Exception):
    """A rule file could not be loaded; names the file and line at fault."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


class MalformedRequest(ValueError):
    """The HTTP request cannot be understood; the answer is 400."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    uri: str
    version: str = "HTTP/1.1"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass(frozen=True)
class Interruption:
    status: int
    rule_id: int
    action: str  # "deny", "drop", "redirect"
    message: str = ""
    redirect_url: str | None = None


@dataclass(frozen=True)
class MatchedRule:
    id: int
    msg: str
    data: str
    severity: str
    tags: tuple[str, ...]
    phase: int
    matched_var: str = ""  # the variable's name, e.g. ARGS:q
    matched_value: str = ""  # what it held after transformations

    def log_line(self) -> str:
        """One line in the shape of ModSecurity's error log, which regression tests grep."""
        tags = "".join(f' [tag "{t}"]' for t in self.tags)
        sev = f' [severity "{self.severity}"]' if self.severity else ""
        return (
            f'[id "{self.id}"] [msg "{self.msg}"] [data "{self.data}"]{sev}{tags}'
            f' [phase "{self.phase}"]'
        )


# modsecurity.conf-recommended's SecArgumentsLimit
ARGUMENTS_LIMIT = 1000


@dataclass(frozen=True)
class WafSettings:
    mode: Literal["blocking", "detection"] = "blocking"
    # "crs": the OWASP CRS (packaged unless a folder is named); "baseline": the small set
    rules: Literal["crs", "baseline"] = "crs"
    paranoia: int = 1
    inbound_threshold: int = 5
    outbound_threshold: int = 4
    request_body_limit: int = 13_107_200  # ModSecurity's default SecRequestBodyLimit
    response_body_limit: int = 524_288
    # ARGS taken from one body (modsecurity.conf-recommended's SecArgumentsLimit): every rule
    # reads every argument, so their number, not the body's size, sets the cost of a request
    arguments_limit: int = ARGUMENTS_LIMIT
    extra_rules: str = ""  # SecLang text loaded after crs-setup, before the rules
    # ceiling on the memory of the pattern set's DFA states, in MB; None: 1.7 MB per pattern
    # (about 320 MB at paranoia 1, 540 MB at 4, taken as traffic needs it). Less saves memory
    # and costs speed: states are rebuilt when they outgrow it
    pattern_set_memory_mb: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("blocking", "detection"):
            raise ValueError(f"mode must be 'blocking' or 'detection', not {self.mode!r}")
        if self.rules not in ("crs", "baseline"):
            raise ValueError(f"rules must be 'crs' or 'baseline', not {self.rules!r}")
        if not 1 <= self.paranoia <= 4:
            raise ValueError(f"paranoia must be between 1 and 4, not {self.paranoia}")
        if self.pattern_set_memory_mb is not None and self.pattern_set_memory_mb < 1:
            raise ValueError(
                f"pattern_set_memory_mb must be at least 1, not {self.pattern_set_memory_mb}"
            )
        if self.inbound_threshold < 1 or self.outbound_threshold < 1:
            raise ValueError("anomaly thresholds must be positive")
        if min(self.request_body_limit, self.response_body_limit, self.arguments_limit) < 0:
            raise ValueError("body and argument limits must not be negative")
