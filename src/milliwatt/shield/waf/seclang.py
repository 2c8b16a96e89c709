"""SecLang lexing: configuration text -> directives, rule arguments -> targets and actions.

Follows the Apache configuration syntax ModSecurity inherits: a trailing backslash continues
a line, `#` starts a comment, arguments are separated by blanks and may be double-quoted
(inside quotes only `\\"` is an escape; other backslashes stay for the regex engine).
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from milliwatt.shield.waf.api import RuleLoadError


@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    file: str
    line: int


@dataclass(frozen=True)
class TargetSpec:
    """One `|`-separated element of a rule's variable list, e.g. `!ARGS:/^id_/` or `&TX:foo`."""

    name: str  # upper case collection or variable name
    key: str | None  # literal key (as written) or regex source when key_is_regex
    key_is_regex: bool = False
    count: bool = False
    exclude: bool = False


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yields (first line number, joined line) with continuations folded."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.split("\n"), start=1):  # lines as editors count them
        line = raw.rstrip("\r")
        if not pending:
            start = number
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = "".join(pending).strip()
        pending = []
        if joined:  # continuations of nothing but blanks make no directive
            yield start, joined
    joined = "".join(pending).strip()
    if joined:
        yield start, joined


def _split_args(text: str, file: str, line: int) -> list[str]:
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == '"':
            i += 1
            buf: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] == '"':
                    buf.append('"')
                    i += 2
                    continue
                buf.append(text[i])
                i += 1
            if i >= n:
                raise RuleLoadError(file, line, "unterminated double quote")
            i += 1
            args.append("".join(buf))
        else:
            j = i
            while j < n and text[j] not in " \t":
                j += 1
            args.append(text[i:j])
            i = j
    return args


def parse_text(text: str, file: str) -> list[Directive]:
    """Directives of one configuration text; Include is resolved relative to `file`."""
    out: list[Directive] = []
    for line, logical in _logical_lines(text):
        parts = _split_args(logical, file, line)
        name, args = parts[0], tuple(parts[1:])
        if name.lower() == "include":
            if len(args) != 1:
                raise RuleLoadError(file, line, "Include takes exactly one path")
            base = Path(file).parent
            pattern = args[0] if Path(args[0]).is_absolute() else str(base / args[0])
            matches = sorted(glob.glob(pattern))
            if not matches and not glob.has_magic(pattern):
                raise RuleLoadError(file, line, f"Include: no such file {args[0]!r}")
            for path in matches:
                out.extend(parse_file(Path(path)))
            continue
        out.append(Directive(name, args, file, line))
    return out


def parse_file(path: Path) -> list[Directive]:
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise RuleLoadError(str(path), 0, f"cannot read: {exc.strerror}") from exc
    return parse_text(text, str(path))


def split_actions(text: str, file: str, line: int) -> list[tuple[str, str]]:
    """`id:1,msg:'a, b',t:none` -> [("id", "1"), ("msg", "a, b"), ("t", "none")]."""
    actions: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,\n":
            i += 1
        if i >= n:
            break
        j = i
        while j < n and text[j] not in ":,":
            j += 1
        name = text[i:j].strip()
        value = ""
        if j < n and text[j] == ":":
            j += 1
            while j < n and text[j] in " \t":
                j += 1
            if j < n and text[j] == "'":
                j += 1
                buf: list[str] = []
                while j < n and text[j] != "'":
                    if text[j] == "\\" and j + 1 < n and text[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    buf.append(text[j])
                    j += 1
                if j >= n:
                    raise RuleLoadError(file, line, f"unterminated quote in action {name!r}")
                j += 1
                value = "".join(buf)
            else:
                k = j
                while k < n and text[k] != ",":
                    k += 1
                value = text[j:k].strip()
                j = k
        if not name:
            raise RuleLoadError(file, line, f"empty action in {text!r}")
        actions.append((name, value))
        i = j
    return actions


def split_targets(text: str, file: str, line: int) -> list[TargetSpec]:
    """`REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/|&ARGS` -> target specs."""
    specs: list[TargetSpec] = []
    i, n = 0, len(text)
    while i < n:
        exclude = count = False
        if text[i] == "!":
            exclude, i = True, i + 1
        if i < n and text[i] == "&":
            count, i = True, i + 1
        j = i
        while j < n and text[j] not in ":|":
            j += 1
        name = text[i:j].strip().upper()
        if not name:
            raise RuleLoadError(file, line, f"empty variable name in {text!r}")
        key: str | None = None
        is_regex = False
        if j < n and text[j] == ":":
            j += 1
            if j < n and text[j] == "/" and name != "XML":  # XML keys are XPath, not regexes
                k = j + 1
                while k < n and text[k] != "/":
                    k += 2 if text[k] == "\\" else 1
                if k >= n:
                    raise RuleLoadError(file, line, f"unterminated /regex/ key in {text!r}")
                key, is_regex, j = text[j + 1 : k], True, k + 1
            elif j < n and text[j] == "'":
                k = text.find("'", j + 1)
                if k < 0:
                    raise RuleLoadError(file, line, f"unterminated quoted key in {text!r}")
                key, j = text[j + 1 : k], k + 1
            else:
                k = j
                while k < n and text[k] != "|":
                    k += 1
                key, j = text[j:k], k
        specs.append(TargetSpec(name, key, is_regex, count, exclude))
        if j < n and text[j] != "|":
            raise RuleLoadError(file, line, f"unexpected {text[j]!r} in variables {text!r}")
        i = j + 1
    return specs
