"""Pydantic argument models for tools whose schema is given as JSON schema (MCP tools).

The model validates with the JSON schema itself, so whatever the schema says holds, and
reports that same schema, so a model is shown exactly what the server published.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

# the default of an optional argument that was not given: it is left out, not sent as null
ABSENT: Any = type("_Absent", (), {"__repr__": lambda self: "<absent>"})()


def arguments_model(name: str, schema: dict[str, Any]) -> tuple[type[BaseModel], dict[str, str]]:
    """A pydantic model that validates with `schema` and reports it as its JSON schema.

    Properties become fields by alias (their names need not be Python identifiers); absent
    optional ones stay ABSENT instead of becoming null. Unknown arguments are refused.
    Returns the model and the map from field names to property names.
    """
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    properties = schema.get("properties") or {}
    fields: dict[str, Any] = {
        f"p{i}": (Any, Field(default=ABSENT, alias=prop)) for i, prop in enumerate(properties)
    }
    aliases = {f"p{i}": prop for i, prop in enumerate(properties)}

    def check(cls: type[BaseModel], data: Any) -> Any:
        problems = [
            f"{'.'.join(str(p) for p in e.absolute_path) or '(arguments)'}: {e.message}"
            for e in validator.iter_errors(data)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return data

    def json_schema(cls: type[BaseModel], *args: Any, **kwargs: Any) -> dict[str, Any]:
        return schema

    model = create_model(
        re.sub(r"\W", "_", name) + "_arguments",
        __config__=ConfigDict(extra="forbid", populate_by_name=False),
        # a function whose first parameter is `cls` is made a classmethod by pydantic itself
        # pydantic annotates __validators__ as plain callables, not its own decorator proxies
        __validators__={"_check": model_validator(mode="before")(check)},  # type: ignore[dict-item]
        **fields,
    )
    # the class is made at run time: its schema is the server's own, not one pydantic derives
    model.model_json_schema = classmethod(json_schema)  # type: ignore[method-assign,assignment]
    return model, aliases
