"""Operators that judge a value by what it is rather than by a pattern: libinjection's
SQL and XSS detectors, address ranges, and byte, URL-encoding and UTF-8 validity.
"""

from __future__ import annotations

import ctypes
import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, TypeVar

import libinjection

from milliwatt.shield.waf.caches import SHARED_VALUE_MAX
from milliwatt.shield.waf.operator_base import Operator, OperatorContext, read_data_files


def _load_libinjection() -> tuple[Callable[[bytes], str | None], Callable[[bytes], bool]]:
    """libinjection's own C entry points (as ModSecurity calls them) from the binding's library.

    Calling `libinjection_sqli(s, len, fingerprint)` directly passes the exact bytes (NULs and
    all) and costs half of the binding's Python wrapper, which also builds a token list.
    """
    try:
        lib = ctypes.CDLL(libinjection.__file__)
        sqli = lib.libinjection_sqli
        sqli.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]
        sqli.restype = ctypes.c_int
        xss = lib.libinjection_xss
        xss.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        xss.restype = ctypes.c_int
    except (OSError, AttributeError):  # pragma: no cover - a binding built without the symbols

        def sqli_text(data: bytes) -> str | None:
            out = libinjection.is_sql_injection(data.decode("utf-8", "replace"))
            return str(out["fingerprint"]) if out["is_sqli"] else None

        def xss_text(data: bytes) -> bool:
            return bool(libinjection.is_xss(data.decode("utf-8", "replace"))["is_xss"])

        return sqli_text, xss_text

    def sqli_c(data: bytes) -> str | None:
        fingerprint = ctypes.create_string_buffer(8)
        if not sqli(data, len(data), fingerprint):
            return None
        return fingerprint.value.decode("latin-1")

    def xss_c(data: bytes) -> bool:
        return bool(xss(data, len(data)))

    return sqli_c, xss_c


_sqli, _xss = _load_libinjection()
# libinjection's verdicts by value, shared by every WAF (they depend on the value alone):
# headers and cookies repeat across requests. Emptied when full; long values are not kept.
_SQLI_SEEN: dict[str, str | None] = {}  # value -> fingerprint, None: not SQL injection
_XSS_SEEN: dict[str, bool] = {}
VERDICTS_KEPT = 50_000
V = TypeVar("V")


def remember(seen: dict[str, V], value: str, verdict: V) -> None:
    """Keeps a value's verdict, unless the value is long; a full table is emptied first."""
    if len(value) <= SHARED_VALUE_MAX:
        if len(seen) >= VERDICTS_KEPT:
            seen.clear()
        seen[value] = verdict


class DetectSQLi(Operator):
    name = "detectSQLi"

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        fingerprint = _SQLI_SEEN.get(value, "")  # "": not seen (a fingerprint is never empty)
        if fingerprint == "":
            fingerprint = _sqli(value.encode("latin-1"))
            remember(_SQLI_SEEN, value, fingerprint)
        if fingerprint is None:
            return False
        if capture:
            tx.set_captures((fingerprint,))
        return True


class DetectXSS(Operator):
    name = "detectXSS"

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        hit = _XSS_SEEN.get(value)
        if hit is None:
            hit = _xss(value.encode("latin-1"))
            remember(_XSS_SEEN, value, hit)
        return hit


class _IpOperator(Operator):
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
    seen: dict[str, bool]  # by address: clients come back, and parsing one costs microseconds

    def _parse(self, items: list[str]) -> None:
        self.seen = {}
        try:
            self.networks = [
                ipaddress.ip_network(i.strip(), strict=False) for i in items if i.strip()
            ]
        except ValueError as exc:
            raise ValueError(f"bad address in @{self.name}: {exc}") from exc

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        hit = self.seen.get(value)
        if hit is None:
            hit = self._contains(value)
            remember(self.seen, value, hit)
        return hit

    def _contains(self, value: str) -> bool:
        try:
            addr = ipaddress.ip_address(value.strip())
        except ValueError:
            return False
        return any(addr in net for net in self.networks if net.version == addr.version)


class IpMatch(_IpOperator):
    name = "ipMatch"

    def __init__(self, argument: str, rule_dir: Path) -> None:
        super().__init__(argument, rule_dir)
        self._parse(argument.split(","))


class IpMatchFromFile(_IpOperator):
    name = "ipMatchFromFile"
    aliases: ClassVar[tuple[str, ...]] = ("ipMatchF",)

    def __init__(self, argument: str, rule_dir: Path) -> None:
        super().__init__(argument, rule_dir)
        self._parse(read_data_files(argument, rule_dir))


class ValidateByteRange(Operator):
    """Matches when the value holds a byte outside the allowed ranges."""

    name = "validateByteRange"

    def __init__(self, argument: str, rule_dir: Path) -> None:
        super().__init__(argument, rule_dir)
        allowed = bytearray(256)
        for part in argument.replace(" ", "").split(","):
            lo, _, hi = part.partition("-")
            try:
                a, b = int(lo), int(hi or lo)
            except ValueError as exc:
                raise ValueError(f"bad byte range {part!r} in @validateByteRange") from exc
            if not (0 <= a <= b <= 255):
                raise ValueError(f"byte range {part!r} outside 0-255")
            for c in range(a, b + 1):
                allowed[c] = 1
        self.forbidden = (
            re.compile("[" + "".join(re.escape(chr(c)) for c in range(256) if not allowed[c]) + "]")
            if 0 in allowed
            else None
        )

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        return self.forbidden is not None and self.forbidden.search(value) is not None


_BAD_PERCENT = re.compile(r"%(?![0-9a-fA-F]{2})")


class ValidateUrlEncoding(Operator):
    name = "validateUrlEncoding"

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        return "%" in value and _BAD_PERCENT.search(value) is not None


class ValidateUtf8Encoding(Operator):
    name = "validateUtf8Encoding"

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        if value.isascii():
            return False
        try:
            value.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False
