"""Operators (`@rx`, `@pm`, `@eq`, ...), registered by name and compiled once at load.

`Operator.evaluate` answers whether the operator matches, before any `!` negation; the
transaction it is given supplies macro expansion, capture storage and the pattern-set answers.
"""

from __future__ import annotations

import ctypes
import ipaddress
import operator as operator_module
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar, Protocol

import libinjection

from milliwatt.shield.waf.caches import SHARED_VALUE_MAX
from milliwatt.shield.waf.macros import Macro, compile_macro
from milliwatt.shield.waf.regexes import PhraseSet, Regex


class OperatorContext(Protocol):
    def expand(self, macro: Macro) -> str: ...
    def set_captures(self, groups: tuple[str, ...]) -> None: ...
    def may_match(self, rx: Regex, value: str) -> bool: ...


class Operator:
    name: ClassVar[str] = ""  # as rules write it after `@`
    aliases: ClassVar[tuple[str, ...]] = ()  # other names ModSecurity accepts for it

    def __init__(self, argument: str, rule_dir: Path) -> None:
        self.argument = argument

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        raise NotImplementedError


class Rx(Operator):
    name = "rx"

    def __init__(self, argument: str, rule_dir: Path) -> None:
        super().__init__(argument, rule_dir)
        self.regex = Regex(argument)

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        if not tx.may_match(self.regex, value) or not self.regex.matches(value):
            return False
        if not capture:
            return True
        groups = self.regex.search(value)
        if groups is None:
            return False
        tx.set_captures(groups)
        return True


class _PhraseOperator(Operator):
    phrases: PhraseSet

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        found = self.phrases.first_match(value)
        if found is None:
            return False
        if capture:
            tx.set_captures((found,))
        return True


def screen_id(op: Operator | None) -> int | None:
    """The id under which the WAF's pattern set answers for this operator: an `@rx` pattern
    in its RE2 set or an `@pm` list in its phrase screen; None when it answers for neither."""
    if isinstance(op, Rx):
        return op.regex.set_id
    if isinstance(op, _PhraseOperator):
        return op.phrases.set_id
    return None


def phrase_lists(ops: Iterable[Operator | None]) -> list[PhraseSet]:
    return [op.phrases for op in ops if isinstance(op, _PhraseOperator)]


class Pm(_PhraseOperator):
    name = "pm"

    def __init__(self, argument: str, rule_dir: Path) -> None:
        super().__init__(argument, rule_dir)
        self.phrases = PhraseSet(argument.split())


def read_data_files(argument: str, rule_dir: Path) -> list[str]:
    lines: list[str] = []
    for name in argument.split():
        path = Path(name) if Path(name).is_absolute() else rule_dir / name
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise ValueError(f"cannot read data file {path}: {exc.strerror}") from exc
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


class PmFromFile(_PhraseOperator):
    name = "pmFromFile"
    aliases: ClassVar[tuple[str, ...]] = ("pmf",)

    def __init__(self, argument: str, rule_dir: Path) -> None:
        super().__init__(argument, rule_dir)
        self.phrases = PhraseSet(read_data_files(argument, rule_dir))


class _StringOperator(Operator):
    """Operators comparing the value to one (macro-expanded) string."""

    def __init__(self, argument: str, rule_dir: Path) -> None:
        super().__init__(argument, rule_dir)
        self.macro = compile_macro(argument)

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        arg = tx.expand(self.macro)
        if not self.compare(value, arg):
            return False
        if capture:
            tx.set_captures((value,))
        return True

    def compare(self, value: str, arg: str) -> bool:
        raise NotImplementedError


class BeginsWith(_StringOperator):
    name = "beginsWith"

    def compare(self, value: str, arg: str) -> bool:
        return value.startswith(arg)


class EndsWith(_StringOperator):
    name = "endsWith"

    def compare(self, value: str, arg: str) -> bool:
        return value.endswith(arg)


class Contains(_StringOperator):
    name = "contains"
    aliases: ClassVar[tuple[str, ...]] = ("strmatch",)

    def compare(self, value: str, arg: str) -> bool:
        return arg in value


class ContainsWord(_StringOperator):
    name = "containsWord"

    def compare(self, value: str, arg: str) -> bool:
        return re.search(r"(?<!\w)" + re.escape(arg) + r"(?!\w)", value) is not None


class StrEq(_StringOperator):
    name = "streq"

    def compare(self, value: str, arg: str) -> bool:
        return value == arg


class Within(_StringOperator):
    name = "within"

    def compare(self, value: str, arg: str) -> bool:
        return bool(value) and value in arg


_LEADING_INT = re.compile(r"\s*([+-]?\d+)")


_SMALL_INTS = {str(i): i for i in range(-100, 1000)}  # scores and levels: one lookup


def to_int(text: str) -> int:
    """C atoi: the leading integer, 0 when there is none."""
    known = _SMALL_INTS.get(text)
    if known is not None:
        return known
    if len(text) < 19 and text.isascii() and text.isdigit():  # the usual case, no regex
        return int(text)
    m = _LEADING_INT.match(text)
    return int(m.group(1)) if m else 0


class NumericOperator(_StringOperator):
    def __init__(self, argument: str, rule_dir: Path) -> None:
        super().__init__(argument, rule_dir)
        # most arguments are numbers written in the rule: converted once
        self.constant = to_int(argument) if self.macro.is_constant else None

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        arg = self.constant if self.constant is not None else to_int(tx.expand(self.macro))
        if not self.test(to_int(value), arg):
            return False
        if capture:
            tx.set_captures((value,))
        return True

    test: Callable[[int, int], bool]  # a C function from `operator`: called per value


class Eq(NumericOperator):
    name = "eq"
    test = staticmethod(operator_module.eq)


class Ge(NumericOperator):
    name = "ge"
    test = staticmethod(operator_module.ge)


class Gt(NumericOperator):
    name = "gt"
    test = staticmethod(operator_module.gt)


class Le(NumericOperator):
    name = "le"
    test = staticmethod(operator_module.le)


class Lt(NumericOperator):
    name = "lt"
    test = staticmethod(operator_module.lt)


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


class DetectSQLi(Operator):
    name = "detectSQLi"

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        fingerprint = _SQLI_SEEN.get(value, "")  # "": not seen (a fingerprint is never empty)
        if fingerprint == "":
            fingerprint = _sqli(value.encode("latin-1"))
            if len(value) <= SHARED_VALUE_MAX:
                if len(_SQLI_SEEN) >= VERDICTS_KEPT:
                    _SQLI_SEEN.clear()
                _SQLI_SEEN[value] = fingerprint
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
            if len(value) <= SHARED_VALUE_MAX:
                if len(_XSS_SEEN) >= VERDICTS_KEPT:
                    _XSS_SEEN.clear()
                _XSS_SEEN[value] = hit
        return hit


class UnconditionalMatch(Operator):
    name = "unconditionalMatch"

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        return True


class NoMatch(Operator):
    name = "noMatch"

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        return False


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
            if len(self.seen) >= VERDICTS_KEPT:
                self.seen.clear()
            self.seen[value] = hit
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


# a plain table rather than a registering decorator: decorated classes cannot be compiled
OPERATORS: dict[str, type[Operator]] = {
    alias.lower(): cls
    for cls in (
        Rx,
        Pm,
        PmFromFile,
        BeginsWith,
        EndsWith,
        Contains,
        ContainsWord,
        StrEq,
        Within,
        Eq,
        Ge,
        Gt,
        Le,
        Lt,
        DetectSQLi,
        DetectXSS,
        UnconditionalMatch,
        NoMatch,
        IpMatch,
        IpMatchFromFile,
        ValidateByteRange,
        ValidateUrlEncoding,
        ValidateUtf8Encoding,
    )
    for alias in (cls.name, *cls.aliases)
}


def compile_operator(text: str, rule_dir: Path) -> tuple[Operator, bool]:
    """`!@rx foo` -> (Rx("foo"), negated=True). A bare pattern means @rx."""
    negated = text.startswith("!")
    body = text[1:] if negated else text
    if not body.startswith("@"):
        return Rx(body, rule_dir), negated
    name, _, argument = body[1:].partition(" ")
    cls = OPERATORS.get(name.lower())
    if cls is None:
        raise ValueError(f"unsupported operator @{name}")
    return cls(argument.strip() if cls is not Rx else argument.lstrip(" "), rule_dir), negated
