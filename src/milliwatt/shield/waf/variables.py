"""Variables: the transaction's data, and how a rule's targets select from it.

Collections are lists of (key, value) pairs in arrival order (a request may repeat a name);
scalars are plain strings. Keys match case-insensitively, as in ModSecurity.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from milliwatt.shield.waf.seclang import TargetSpec

# Collections whose `*_NAMES` twin lists the keys.
_NAMES_OF = {
    "ARGS_NAMES": "ARGS",
    "ARGS_GET_NAMES": "ARGS_GET",
    "ARGS_POST_NAMES": "ARGS_POST",
    "REQUEST_HEADERS_NAMES": "REQUEST_HEADERS",
    "REQUEST_COOKIES_NAMES": "REQUEST_COOKIES",
    "RESPONSE_HEADERS_NAMES": "RESPONSE_HEADERS",
    "FILES_NAMES": "FILES",
}
COLLECTIONS = {
    "ARGS",
    "ARGS_GET",
    "ARGS_POST",
    "REQUEST_HEADERS",
    "REQUEST_COOKIES",
    "RESPONSE_HEADERS",
    "FILES",
    "FILES_SIZES",
    "FILES_TMPNAMES",
    "FILES_TMP_CONTENT",
    "MULTIPART_PART_HEADERS",
    "MATCHED_VARS",
    "MATCHED_VARS_NAMES",
    "TX",
    "IP",
    "GLOBAL",
    "SESSION",
    "USER",
    "RESOURCE",
    "ENV",
    "GEO",
    "RULE",
    "XML",
    *_NAMES_OF,
}
SCALARS = {
    "ARGS_COMBINED_SIZE",
    "AUTH_TYPE",
    "DURATION",
    "FILES_COMBINED_SIZE",
    "FULL_REQUEST",
    "FULL_REQUEST_LENGTH",
    "HIGHEST_SEVERITY",
    "INBOUND_DATA_ERROR",
    "MATCHED_VAR",
    "MATCHED_VAR_NAME",
    "MULTIPART_BOUNDARY_QUOTED",
    "MULTIPART_BOUNDARY_WHITESPACE",
    "MULTIPART_CRLF_LF_LINES",
    "MULTIPART_DATA_AFTER",
    "MULTIPART_DATA_BEFORE",
    "MULTIPART_FILE_LIMIT_EXCEEDED",
    "MULTIPART_FILENAME",
    "MULTIPART_HEADER_FOLDING",
    "MULTIPART_INVALID_HEADER_FOLDING",
    "MULTIPART_INVALID_PART",
    "MULTIPART_INVALID_QUOTING",
    "MULTIPART_LF_LINE",
    "MULTIPART_MISSING_SEMICOLON",
    "MULTIPART_NAME",
    "MULTIPART_STRICT_ERROR",
    "MULTIPART_UNMATCHED_BOUNDARY",
    "OUTBOUND_DATA_ERROR",
    "PATH_INFO",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_HOST",
    "REMOTE_PORT",
    "REMOTE_USER",
    "REQBODY_ERROR",
    "REQBODY_ERROR_MSG",
    "REQBODY_PROCESSOR",
    "REQBODY_PROCESSOR_ERROR",
    "REQUEST_BASENAME",
    "REQUEST_BODY",
    "REQUEST_BODY_LENGTH",
    "REQUEST_FILENAME",
    "REQUEST_LINE",
    "REQUEST_METHOD",
    "REQUEST_PROTOCOL",
    "REQUEST_URI",
    "REQUEST_URI_RAW",
    "RESPONSE_BODY",
    "RESPONSE_CONTENT_LENGTH",
    "RESPONSE_CONTENT_TYPE",
    "RESPONSE_PROTOCOL",
    "RESPONSE_STATUS",
    "SERVER_ADDR",
    "SERVER_NAME",
    "SERVER_PORT",
    "STATUS_LINE",
    "TIME",
    "TIME_EPOCH",
    "UNIQUE_ID",
    "URLENCODED_ERROR",
    "WEBSERVER_ERROR_LOG",
}
KNOWN_VARIABLES = COLLECTIONS | SCALARS


@dataclass(frozen=True, slots=True)
class Target:
    """A compiled target: which variable, which keys, counted or not."""

    name: str
    key: str | None = None  # lower case literal key
    key_regex: re.Pattern[str] | None = None
    count: bool = False
    cacheable: bool = False  # request/response data, fixed between body loads
    key_prefix: str | None = None  # lower case, when key_regex is just ^literal

    def selects(self, key: str) -> bool:
        if self.key_prefix is not None:
            return key.lower().startswith(self.key_prefix)
        if self.key_regex is not None:
            return self.key_regex.search(key) is not None
        return self.key is None or self.key == key.lower()


# Scalars that change within a phase: the matched value, ctl:requestBodyProcessor, clocks.
_VOLATILE_SCALARS = {
    "MATCHED_VAR", "MATCHED_VAR_NAME", "REQBODY_PROCESSOR", "HIGHEST_SEVERITY", "DURATION",
    "TIME", "TIME_EPOCH",
}  # fmt: skip
_CACHEABLE = {
    "ARGS", "ARGS_GET", "ARGS_POST", "REQUEST_HEADERS", "REQUEST_COOKIES", "RESPONSE_HEADERS",
    "FILES", "FILES_SIZES", "MULTIPART_PART_HEADERS", "XML", *_NAMES_OF,
    *(SCALARS - _VOLATILE_SCALARS),
}  # fmt: skip


_LITERAL_PREFIX = re.compile(r"\^[A-Za-z0-9_-]+")  # ASCII: lower() folds it as re.I does


def compile_target(spec: TargetSpec) -> Target:
    if spec.name not in KNOWN_VARIABLES:
        raise ValueError(f"unsupported variable {spec.name}")
    cacheable = spec.name in _CACHEABLE
    if spec.key_is_regex and spec.key is not None:
        # CRS selects TX variables by prefix (TX:/^header_name_920450_/): no regex needed
        prefix = spec.key[1:].lower() if _LITERAL_PREFIX.fullmatch(spec.key) else None
        try:
            key_regex = re.compile(spec.key, re.I)
            return Target(spec.name, None, key_regex, spec.count, cacheable, prefix)
        except re.error as exc:
            raise ValueError(f"bad key regex /{spec.key}/: {exc}") from exc
    key = spec.key.lower() if spec.key is not None else None
    return Target(spec.name, key, None, spec.count, cacheable)


@dataclass
class TxData:
    """Everything rules can read about one transaction."""

    scalars: dict[str, str] = field(default_factory=dict)
    collections: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    tx: dict[str, str] = field(default_factory=dict)
    persistent: dict[str, dict[str, str]] = field(default_factory=dict)
    xml: ET.Element | None = None

    def present(self) -> frozenset[str]:
        """The variables that hold at least one value: the others select nothing."""
        names = {name for name, values in self.collections.items() if values}
        names.update(alias for alias, base in _NAMES_OF.items() if base in names)
        names.update(self.scalars)
        names.add("TX")
        names.update(self.persistent)
        if self.xml is not None:
            names.add("XML")
        return frozenset(names)

    def pairs(self, name: str) -> list[tuple[str, str]]:
        if name == "TX":
            return list(self.tx.items())
        if name in _NAMES_OF:
            return [(k, k) for k, _ in self.collections.get(_NAMES_OF[name], ())]
        if name in ("IP", "GLOBAL", "SESSION", "USER", "RESOURCE"):
            return list(self.persistent.get(name, {}).items())
        return self.collections.get(name, [])

    def values(self, target: Target) -> list[str]:
        """Every value of the target's variable, whatever its key (but XML's XPath): what
        any selection of that variable can hold."""
        name = target.name
        if name == "XML":
            return self._xml(target.key)
        if name in SCALARS or (name not in COLLECTIONS and name in self.scalars):
            value = self.scalars.get(name)
            return [] if value is None else [value]
        return [v for _, v in self.pairs(name)]

    def get(self, name: str, key: str | None = None) -> str | None:
        """One value for macro expansion: `%{tx.foo}`, `%{REQUEST_METHOD}`."""
        if name == "TX" and key is not None:
            return self.tx.get(key)
        if name in self.scalars and key is None:
            return self.scalars[name]
        if key is None:
            return self.scalars.get(name)
        for k, v in self.pairs(name):
            if k.lower() == key:
                return v
        return None

    def select(self, target: Target, excluded: tuple[Target, ...] = ()) -> list[tuple[str, str]]:
        """(variable name as logged, value) pairs, less the excluded keys; counts give one pair."""
        name = target.name
        if name == "TX" and not excluded and target.key is not None and target.key_regex is None:
            value = self.tx.get(target.key)  # the hot path: CRS reads TX settings constantly
            if target.count:
                return [(name, "0" if value is None else "1")]
            return [] if value is None else [(f"TX:{target.key}", value)]
        drops = [e for e in excluded if e.name == name] if excluded else ()
        if drops and any(e.key is None and e.key_regex is None for e in drops):
            return [(name, "0")] if target.count else []
        if name == "XML":
            values = self._xml(target.key)
            if target.count:
                return [("XML", str(len(values)))]
            return [(f"XML:{target.key or '/*'}", v) for v in values]
        if name in SCALARS or (name not in COLLECTIONS and name in self.scalars):
            value = self.scalars.get(name)
            if target.count:
                return [(name, "1" if value is not None else "0")]
            return [] if value is None else [(name, value)]
        if name == "TX" and target.key is not None and target.key_regex is None:
            value = self.tx.get(target.key)
            if any(e.selects(target.key) for e in drops):
                value = None
            if target.count:
                return [(name, "1" if value is not None else "0")]
            return [] if value is None else [(f"TX:{target.key}", value)]
        pairs = self.pairs(name)
        if target.key is not None and target.key_regex is None:  # one key, as CRS mostly names
            key = target.key
            pairs = [(k, v) for k, v in pairs if k.lower() == key]
        elif name == "TX" and target.key_prefix is not None:
            # TX keys are held in lower case (setvar lowers them; captures are digits):
            # CRS's per-header TX:/^header_name_920450_/ scans every TX key on every request
            prefix = target.key_prefix
            pairs = [(k, v) for k, v in pairs if k.startswith(prefix)]
        elif target.key_regex is not None:
            pairs = [(k, v) for k, v in pairs if target.selects(k)]
        for drop in drops:
            pairs = [(k, v) for k, v in pairs if not drop.selects(k)]
        selected = [(f"{name}:{k}", v) for k, v in pairs]
        if target.count:
            return [(name, str(len(selected)))]
        return selected

    def _xml(self, xpath: str | None) -> list[str]:
        if self.xml is None:
            return []
        if xpath in (None, "/*", "/"):
            return ["".join(self.xml.itertext())]
        if xpath == "//@*":
            return [v for el in self.xml.iter() for v in el.attrib.values()]
        return []
