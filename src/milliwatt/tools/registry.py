"""Tools are plain typed Python functions; their JSON schema comes from the type hints.

Every tool must declare what it touches (its effects). Later policy (taint tracking,
confirmation of side effects) reads these declarations, so there is no default.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model


class Effect(StrEnum):
    """What a tool touches beyond computing its result."""

    PURE = "pure"  # no I/O at all: same input, same output
    READS_UNTRUSTED = "reads_untrusted"  # returns content an attacker may have written
    NETWORK = "network"  # opens outbound connections (always through the egress guard)
    WRITES = "writes"  # changes stored state
    SENDS = "sends"  # delivers something to a third party (mail, chat)
    SPENDS = "spends"  # costs money or quota
    EXECUTES = "executes"  # runs code or commands (only ever inside the OS sandbox)


class ToolError(Exception):
    """A tool refused or failed; the message is safe to show the user and the model."""


class UnknownToolError(KeyError):
    def __str__(self) -> str:
        return f"unknown tool: {self.args[0]!r}"


@dataclass(frozen=True)
class ToolContext:
    """Who is calling: injected into any tool parameter annotated with this type."""

    user: str = "anonymous"
    agent: str = "default"
    tenant: str = "default"  # whose knowledge collections the agent reads
    session: str | None = None
    data_dir: Path = field(default_factory=lambda: Path.cwd() / ".milliwatt")
    # [storage] url: None keeps facts and calendars in data_dir's SQLite files
    storage_url: str | None = None


@dataclass(frozen=True)
class ToolResult:
    tool: str
    value: Any
    untrusted: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def text(self) -> str:
        """The result as the model and the user see it."""
        if self.error is not None:
            return f"error: {self.error}"
        if isinstance(self.value, str):
            return self.value
        return json.dumps(self.value, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    effects: frozenset[Effect]
    fn: Callable[..., Any]
    arguments_model: type[BaseModel]
    context_param: str | None = None
    examples: tuple[str, ...] = ()

    @property
    def parameters(self) -> dict[str, Any]:
        """JSON schema of the arguments, compact: no titles."""
        stripped: dict[str, Any] = _strip_titles(self.arguments_model.model_json_schema())
        return stripped

    @property
    def untrusted_output(self) -> bool:
        return Effect.READS_UNTRUSTED in self.effects

    def validate(self, arguments: Mapping[str, Any]) -> BaseModel:
        """Parse arguments against the schema; raises ToolError naming the bad fields."""
        try:
            return self.arguments_model.model_validate(dict(arguments))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ToolError(f"invalid arguments for {self.name}: {problems}") from None

    def call(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> ToolResult:
        """Validate and run; a ToolError becomes an error result, anything else propagates."""
        try:
            parsed = self.validate(arguments)
            kwargs = {name: getattr(parsed, name) for name in type(parsed).model_fields}
            if self.context_param is not None:
                kwargs[self.context_param] = context or ToolContext()
            value = self.fn(**kwargs)
        except ToolError as exc:
            return ToolResult(self.name, None, self.untrusted_output, str(exc))
        return ToolResult(self.name, value, self.untrusted_output)


def tool(
    *,
    effects: Iterable[Effect],
    name: str | None = None,
    examples: Iterable[str] = (),
) -> Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function into a Tool; the docstring's first paragraph is its description."""
    declared = frozenset(effects)
    if not declared:
        raise ValueError("a tool must declare its effects (use Effect.PURE for none)")
    if Effect.PURE in declared and len(declared) > 1:
        raise ValueError("Effect.PURE cannot be combined with other effects")

    def wrap(fn: Callable[..., Any]) -> Tool:
        doc = inspect.getdoc(fn)
        if not doc:
            raise ValueError(f"tool {fn.__name__} needs a docstring: it is the description")
        model, context_param = _arguments_model(fn)
        return Tool(
            name=name or fn.__name__,
            description=doc.split("\n\n")[0].replace("\n", " "),
            effects=declared,
            fn=fn,
            arguments_model=model,
            context_param=context_param,
            examples=tuple(examples),
        )

    return wrap


class ToolRegistry:
    """Named tools; an agent sees only the subset its configuration allows."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, t: Tool) -> None:
        if t.name in self._tools:
            raise ValueError(f"tool {t.name!r} is already registered")
        self._tools[t.name] = t

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def subset(self, names: Iterable[str]) -> ToolRegistry:
        return ToolRegistry(self.get(n) for n in names)

    def call(
        self, name: str, arguments: Mapping[str, Any], context: ToolContext | None = None
    ) -> ToolResult:
        return self.get(name).call(arguments, context)


def _arguments_model(fn: Callable[..., Any]) -> tuple[type[BaseModel], str | None]:
    hints = get_type_hints(fn, include_extras=True)  # keep Annotated bounds (Field(ge=...))
    fields: dict[str, Any] = {}
    context_param = None
    for param in inspect.signature(fn).parameters.values():
        annotation = hints.get(param.name)
        if annotation is None:
            raise ValueError(f"{fn.__name__}: parameter {param.name!r} needs a type hint")
        if annotation is ToolContext:
            context_param = param.name
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    config = ConfigDict(extra="forbid")
    return create_model(f"{fn.__name__}_arguments", __config__=config, **fields), context_param


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        # a "title" keyword has a string value; a property named "title" has a schema
        return {
            k: _strip_titles(v)
            for k, v in schema.items()
            if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema
