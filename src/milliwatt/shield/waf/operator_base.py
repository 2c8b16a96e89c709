"""What every operator is: its base class and the transaction's side it may call."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Protocol

from milliwatt.shield.waf.macros import Macro
from milliwatt.shield.waf.regexes import Regex


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
