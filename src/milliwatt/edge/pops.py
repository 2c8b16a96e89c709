"""The front door's configuration: its points of presence (PoPs) and how it watches them.

    [frontdoor]
    port = 8800
    probe_interval_seconds = 0.5

    [pops.fra]
    replicas = ["http://10.1.0.5:8000", "http://10.1.0.6:8000"]

    [pops.sin]
    replicas = ["http://10.2.0.5:8000"]

Each replica is the base URL of one `milliwatt serve`. The order of the PoPs means nothing:
the front door ranks them by the round-trip times it measures.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from milliwatt.config import parse_toml, read_toml

POP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class FrontDoorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8800, ge=0, le=65535)
    probe_interval_seconds: float = Field(0.5, gt=0, le=60)
    probe_timeout_seconds: float = Field(1.0, gt=0, le=60)
    # a replica is out after this many failed probes in a row, back after this many good ones
    unhealthy_after: int = Field(3, ge=1, le=100)
    healthy_after: int = Field(2, ge=1, le=100)
    # weight of a new RTT sample in the moving average: 0.3 follows a real change within a
    # few probes and keeps one slow probe (a GC pause, a busy core) from reordering PoPs
    rtt_smoothing: float = Field(0.3, gt=0, le=1)
    # how often each replica's /v1/models is read again (a PoP may add or drop a model)
    models_refresh_seconds: float = Field(10.0, gt=0)
    # a PoP that answered 503 (or a 429 that is not the caller's own limit) is passed over
    # for its Retry-After, or this long without one, never longer than the cap
    saturation_seconds: float = Field(2.0, ge=0)
    saturation_max_seconds: float = Field(30.0, ge=0)
    connect_timeout_seconds: float = Field(1.0, gt=0, le=60)
    # a model turn may take minutes on CPU; a stream's gaps are shorter
    read_timeout_seconds: float = Field(600.0, gt=0)
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    # the replicas' URLs (internal addresses) in each answer's x-milliwatt-replica and in
    # /frontdoor/pops for any client; off: the PoP's name only, /frontdoor/pops on loopback
    show_replicas: bool = False
    # API key for the probes' GET /v1/models when the PoPs require keys (read from this
    # environment variable, never from the file); without one the probes read /healthz's agents
    api_key_env: str = "MILLIWATT_FRONTDOOR_KEY"

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None


class PopSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replicas: list[str] = Field(min_length=1)

    @field_validator("replicas")
    @classmethod
    def _base_urls(cls, urls: list[str]) -> list[str]:
        cleaned = []
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError(f"{url!r} is not an http(s) base URL")
            if parts.query or parts.fragment:
                raise ValueError(f"{url!r}: a base URL has no query or fragment")
            cleaned.append(url.rstrip("/"))
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("a replica is listed twice")
        return cleaned


class FrontDoorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frontdoor: FrontDoorSettings = FrontDoorSettings()
    pops: dict[str, PopSettings] = Field(min_length=1)

    @field_validator("pops")
    @classmethod
    def _names(cls, pops: dict[str, PopSettings]) -> dict[str, PopSettings]:
        for name in pops:
            if not POP_NAME.match(name):
                raise ValueError(f"PoP name {name!r}: lowercase letters, digits, - and _")
        seen: dict[str, str] = {}
        for name, pop in pops.items():
            for url in pop.replicas:
                if url in seen:
                    raise ValueError(f"{url} is a replica of both {seen[url]!r} and {name!r}")
                seen[url] = name
        return pops


def parse_config(text: str, source: str = "<pops>") -> FrontDoorConfig:
    """The configuration in TOML text; a clear InvalidRequestError naming what is wrong."""
    return parse_toml(text, FrontDoorConfig, source)


def load_config(path: Path) -> FrontDoorConfig:
    return read_toml(path, FrontDoorConfig)
