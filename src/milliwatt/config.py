"""Configuration: an optional milliwatt.toml, overridden by MILLIWATT_* environment variables.

Nested keys use a double underscore in variables: MILLIWATT_SHIELD__PARANOIA=2.
The file is the one named by MILLIWATT_CONFIG, else ./milliwatt.toml when present.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal, TypeVar

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from milliwatt.errors import InvalidRequestError
from milliwatt.shield.egress.policy import EgressPolicy
from milliwatt.storage.url import StorageUrlError, parse_storage_url

BUNDLED_MODEL = "smollm2-135m"
DEFAULT_AGENT = "milliwatt"
# in the data directory: models fetched by `milliwatt models pull`, as milliwatt.toml tables
REGISTRY_FILE = "models.toml"


class _Section(BaseModel):
    # a misspelt key is an error naming it, not a setting silently ignored
    model_config = ConfigDict(extra="forbid")


class Budgets(_Section):
    """Limits checked before every model call; exceeding one ends the run with a message."""

    tokens_per_request: PositiveInt = 8192
    model_calls_per_request: PositiveInt = 8
    seconds_per_request: PositiveFloat = 120.0
    tokens_per_session: PositiveInt | None = None
    model_calls_per_session: PositiveInt | None = None
    seconds_per_session: PositiveFloat | None = None


class ModelConfig(_Section):
    """A model an agent may use: a local GGUF file or an OpenAI-compatible server."""

    backend: Literal["llamacpp", "openai"] = "llamacpp"
    # llamacpp: a GGUF file; empty means the bundled SmolLM2-135M
    path: Path | None = None
    # openai: the server's base URL (…/v1), its key and the model name it knows
    base_url: str | None = None
    api_key: str | None = None
    remote_name: str | None = None
    # tokens one conversation may fill; llamacpp: per sequence, default the smaller of what
    # the model was trained for and 2048; the worker's cache holds parallel x context_length
    # tokens at 8 bits (SmolLM2-135M: 12 KB a token, so 400 MB for 16 x 2048)
    context_length: PositiveInt | None = None
    threads: PositiveInt | None = None  # default: the machine's physical cores
    timeout_seconds: PositiveFloat = 120.0
    # llamacpp: generations decoded together in one batch (llama-server's --parallel); more
    # callers wait in a line per user, up to max_waiting, each at most queue_timeout_seconds
    # before a 503 with Retry-After
    parallel: PositiveInt = 16
    max_waiting: PositiveInt = 64
    queue_timeout_seconds: PositiveFloat = 30.0
    max_tokens: PositiveInt = 512  # generated tokens per call
    ignore_eos: bool = False  # generate exactly max_tokens (benchmarks), as llama-server's option
    # energy estimates, labelled as such wherever they are shown
    joules_per_token: PositiveFloat = 0.5  # remote models: no CPU time of ours to measure

    @model_validator(mode="after")
    def _check_backend(self) -> ModelConfig:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("an openai backend needs base_url")
        return self


class ToolSelectionConfig(_Section):
    """Which tools the model is offered: the top_k most similar to the request (cosine of
    all-MiniLM-L6-v2 embeddings), each only if it beats the request's null score (functions
    nobody offered, agent/relevance.py) by min_margin; none above the bar -> a plain answer."""

    enabled: bool = True
    top_k: PositiveInt = 3
    # set on tuning data (docs/cascade.md): BFCL's tuning half and the terse set
    min_margin: float = Field(0.05, ge=-2.0, le=2.0)
    # the older absolute cosine bar (0.40 before min_margin): unset by default, since it turned
    # away tersely described tools; when set, a tool must reach it as well as min_margin
    min_similarity: float | None = Field(None, ge=-1.0, le=1.0)
    # tools are offered only when the best one beats the closest example of conversation or
    # writing (agent/conversation.py) by conversation_margin. 0.0 kept every tool request of
    # the frugal workload but 4 of 314 (each answered by the router anyway)
    conversation: bool = True
    conversation_margin: float = Field(0.0, ge=-1.0, le=1.0)


class PolicyConfig(_Section):
    """What an agent may still do once untrusted content (a web page, an e-mail, a document, an
    MCP result) is in its context. A guarded call (send, write, spend, execute, or network to
    a host the user did not name) runs only when these rules allow it or a human approves."""

    # a guarded call the rules do not allow: "ask" the approval hook (deny without one or on
    # timeout) or "deny" it outright
    on_untrusted: Literal["ask", "deny"] = "ask"
    approval_timeout_seconds: PositiveFloat = 120.0
    send_to: list[str] = Field(default_factory=list)  # "bob@example.org", "*@example.org"
    fetch_domains: list[str] = Field(default_factory=list)  # "example.org", "*.example.org"
    write_paths: list[str] = Field(default_factory=list)  # globs in the workspace: "notes/*"
    spend_max: float | None = Field(None, ge=0.0)  # amounts up to this, per call
    execute: bool = False  # run code after reading untrusted content
    allow_tools: list[str] = Field(default_factory=list)  # tools always allowed: "calendar.*"


class EmailConfig(_Section):
    """The agent's mail: SMTP to send (credentials by reference) and a local mailbox to read."""

    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None  # the NAME of the variable holding the password
    sender: str | None = None  # the From address
    timeout_seconds: PositiveFloat = 20.0
    mailbox: Path | None = None  # a folder of .eml files, a Maildir or an mbox file


class AgentConfig(_Section):
    name: str = DEFAULT_AGENT
    instructions: str = (
        "You are milliwatt, a helpful assistant. Answer briefly and plainly. "
        "If you do not know, say so."
    )
    # tools this agent may call: names or patterns ("*", "math.*", "units.convert")
    tools: list[str] = Field(default_factory=lambda: ["*"])
    models: list[str] = Field(default_factory=lambda: [BUNDLED_MODEL])  # smallest first
    max_steps: PositiveInt = 6  # model calls + tool rounds per request
    # generated tokens per model call (at most the model's own max_tokens): a chat answer
    # fits; a small model that rambles on is cut here, at its last full sentence
    max_tokens: PositiveInt = 256
    # where a reply ends: a small model that goes on to write the user's next turn is cut
    # there (the chat template's own end-of-turn marker applies too)
    stop: list[str] = Field(default_factory=lambda: ["\nUser:", "\nuser:", "<|im_start|>"])
    # what the agent's web tools may reach (schemes, domains, ports, sizes, explicit networks)
    egress: EgressPolicy = Field(default_factory=EgressPolicy)
    search_url: str | None = None  # a SearXNG-compatible JSON search API for web.search
    tool_selection: ToolSelectionConfig = Field(default_factory=ToolSelectionConfig)
    # escalate to the next model when a reply's mean token log-probability is below this
    # (None: escalate only on invalid replies); see docs/cascade.md for measured values
    confidence_threshold: float | None = Field(None, le=0.0)
    budgets: Budgets = Field(default_factory=Budgets)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)


class ShieldConfig(_Section):
    waf: bool = True
    mode: Literal["blocking", "detection"] = "blocking"
    paranoia: int = Field(1, ge=1, le=4)
    inbound_threshold: PositiveInt = 5
    outbound_threshold: PositiveInt = 4
    # "crs": the OWASP CRS v4 shipped in the package; "baseline": milliwatt's small rule set
    rules: Literal["crs", "baseline"] = "crs"
    crs_dir: Path | None = None  # default: MILLIWATT_CRS_DIR, then the packaged CRS
    audit_log: Path | None = None  # default: <data_dir>/audit.jsonl
    arguments_limit: PositiveInt = 1000  # ARGS the rules read from one body (SecArgumentsLimit)
    # untrusted content the prompt firewall takes for an injection is withheld from the model
    # (the information-flow policy holds whether or not it catches one)
    firewall: bool = True

    @model_validator(mode="after")
    def _check_rules(self) -> ShieldConfig:
        if self.rules == "baseline" and self.crs_dir is not None:
            raise ValueError('shield.crs_dir names CRS rules, but shield.rules is "baseline"')
        return self


class ServerConfig(_Section):
    """What one HTTP request to `milliwatt serve` may be, and who may send it; checked before
    the WAF or the API parse a byte of it."""

    max_body_bytes: PositiveInt = 1_048_576
    max_messages: PositiveInt = 256
    max_message_chars: PositiveInt = 65_536  # past the bundled model's window already
    max_headers: PositiveInt = 100
    max_header_bytes: PositiveInt = 32_768  # the request line and all headers together
    request_timeout_seconds: PositiveFloat = 10.0  # to send the whole request, body included
    keep_alive_seconds: PositiveInt = 5
    # Host names the API answers to besides localhost and `host` (DNS rebinding), and the
    # browser origins that may call it besides those hosts' own pages (CSRF)
    allowed_hosts: list[str] = Field(default_factory=list)
    allowed_origins: list[str] = Field(default_factory=list)


class AccessConfig(_Section):
    """Where rate-limit and budget counters live: this process ("memory"), or a Redis
    server that every node of a deployment shares ("redis", the `redis` extra)."""

    limiter: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = Field("milliwatt:", min_length=1, max_length=64)


class StorageConfig(_Section):
    """Where sessions, facts, calendars and knowledge live (docs/storage.md): unset, SQLite
    files in the data directory; `postgresql://user@host:5432/db`, one PostgreSQL database
    that every node shares (the `postgres` extra)."""

    url: str | None = None

    @model_validator(mode="after")
    def _check_url(self) -> StorageConfig:
        try:
            parse_storage_url(self.url)
        except StorageUrlError as exc:
            raise ValueError(str(exc)) from None
        return self


class TelemetryConfig(_Section):
    """Metrics, traces, the request ledger and logs (docs/observability.md)."""

    enabled: bool = True  # off: no metrics, spans, request ledger or request log lines
    # OTLP/HTTP collector base URL (http://collector:4318); unset: the standard
    # OTEL_EXPORTER_OTLP_ENDPOINT variables, else no traces at all
    otlp_endpoint: str | None = None
    service_name: str = "milliwatt"
    logs: Literal["json", "off"] = "json"  # one JSON line per API request, on stderr
    console: bool = True  # the web chat at / and the dashboard at /console


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("milliwatt"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MILLIWATT_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # estimated joules = CPU seconds x watts per busy core (a typical laptop/server core)
    watts_per_core: PositiveFloat = 15.0
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    agents: list[AgentConfig] = Field(default_factory=lambda: [AgentConfig()])
    shield: ShieldConfig = Field(default_factory=ShieldConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    access: AccessConfig = Field(default_factory=AccessConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @model_validator(mode="after")
    def _check_references(self) -> Settings:
        self.models.setdefault(BUNDLED_MODEL, ModelConfig())
        # pulled models: known unless configured here; tiers of agents that do not list theirs
        pulled = registered_models(Path(self.data_dir))
        for name, config in pulled.items():
            self.models.setdefault(name, config)
        for agent in self.agents:
            if "models" not in agent.model_fields_set:
                agent.models = [*agent.models, *(n for n in pulled if n not in agent.models)]
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError(f"agent names must be unique: {names}")
        for agent in self.agents:
            if not agent.models:
                raise ValueError(f"agent {agent.name!r} lists no models")
            for model in agent.models:
                if model not in self.models:
                    raise ValueError(f"agent {agent.name!r} uses unknown model {model!r}")
        return self

    def agent(self, name: str) -> AgentConfig:
        for agent in self.agents:
            if agent.name == name:
                return agent
        raise KeyError(name)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def registered_models(data_dir: Path) -> dict[str, ModelConfig]:
    """The models in the data directory's registry, in the order they were pulled."""
    path = data_dir / REGISTRY_FILE
    if not path.is_file():
        return {}
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8")).get("models", {})
        return {name: ModelConfig(**table) for name, table in tables.items()}
    except (tomllib.TOMLDecodeError, ValidationError, TypeError, AttributeError) as exc:
        raise ValueError(f"the model registry {path} does not load: {exc}") from None


def private_data_dir(path: Path) -> Path:
    """The data directory, created 0700, and every file this process creates from now on 0600:
    conversations, facts and calendars live there, and SQLite gives WAL files the database's
    mode. An existing directory keeps its mode (`milliwatt doctor` warns when it is open)."""
    os.umask(0o077)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def config_file() -> Path | None:
    named = os.environ.get("MILLIWATT_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"MILLIWATT_CONFIG names {path}, which is not a file")
        return path
    local = Path("milliwatt.toml")
    return local if local.is_file() else None


def load_settings(**overrides: object) -> Settings:
    # pydantic validates each override by name and type: a bad one is a ValidationError
    return Settings(**overrides)  # type: ignore[arg-type]


Model = TypeVar("Model", bound=BaseModel)


def parse_toml(text: str, model: type[Model], source: str) -> Model:
    """A TOML document validated as `model`; its first fault named with the file and key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequestError(f"{source}: not valid TOML ({exc})") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidRequestError(f"{source}: {where}: {message}") from None


def read_toml(path: Path, model: type[Model]) -> Model:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidRequestError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_toml(text, model, str(path))
