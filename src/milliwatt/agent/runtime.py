"""Everything a process needs to answer: the configured agents, their models, tools and store.

Models are loaded once and shared by every agent that lists them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from milliwatt.agent.policy import Approver, Audit, FlowPolicy, InjectionDetector
from milliwatt.agent.router import Router
from milliwatt.agent.runner import Agent
from milliwatt.agent.tool_selection import tool_selector
from milliwatt.config import PolicyConfig, Settings, private_data_dir
from milliwatt.errors import UnknownAgentError as UnknownAgentError
from milliwatt.memory.stores import open_session_store
from milliwatt.models.base import Model
from milliwatt.models.loader import load_model
from milliwatt.shield.firewall import default_detector
from milliwatt.tools.builtin import builtin_registry, select_tools
from milliwatt.tools.email import configure_email
from milliwatt.tools.registry import ToolRegistry
from milliwatt.tools.search_providers import SearxngSearch
from milliwatt.tools.web import WebSettings, configure_web


class Runtime:
    def __init__(
        self,
        settings: Settings,
        tools: ToolRegistry | None = None,
        *,
        approver: Approver | None = None,
        audit: Audit | None = None,
        detector: InjectionDetector | None = None,
    ) -> None:
        """`approver` decides guarded calls the policy does not allow (none: denied);
        `audit("policy.denied", fields)` records each decision against a call; `detector`
        quarantines untrusted content it takes for a prompt injection (by default the prompt
        firewall, unless `[shield] firewall = false`)."""
        self.settings = settings
        if detector is None and settings.shield.firewall:
            detector = default_detector()
        self.approver, self.audit, self.detector = approver, audit, detector
        self.data_dir = private_data_dir(Path(settings.data_dir))
        # [storage] url: SQLite in the data directory, or a PostgreSQL database nodes share
        self.store = open_session_store(self.data_dir, settings.storage.url)
        self.tools = tools if tools is not None else builtin_registry()
        self._models: dict[str, Model] = {}
        self._agents: dict[str, Agent] = {}
        self._policies: dict[str, FlowPolicy] = {}
        self._lock = threading.Lock()
        # an operator's override of an agent's policy, asked before each request (None: the
        # configured one); set by whoever keeps the overrides (the server: the admin API's)
        self.policy_override: Callable[[str], PolicyConfig | None] | None = None

    @property
    def agent_names(self) -> list[str]:
        return [a.name for a in self.settings.agents]

    def model(self, name: str) -> Model:
        with self._lock:
            if name not in self._models:
                self._models[name] = load_model(name, self.settings.models[name])
            return self._models[name]

    def provide_model(self, name: str, model: Model) -> None:
        """Use `model` under `name` instead of loading it (an embedding program, tests)."""
        with self._lock:
            self._models[name] = model

    def agent(self, name: str | None = None) -> Agent:
        name = name or self.settings.agents[0].name
        if name not in self._agents:
            try:
                config = self.settings.agent(name)
            except KeyError:
                raise UnknownAgentError(name) from None
            allowed = self.tools.subset(select_tools(self.tools, config.tools))
            search = SearxngSearch(config.search_url) if config.search_url else None
            configure_web(WebSettings(policy=config.egress, search=search), agent=name)
            configure_email(config.email, agent=name)
            policy = FlowPolicy(
                config.policy, approver=self.approver, audit=self.audit, detector=self.detector
            )
            self._policies[name] = policy
            self._agents[name] = Agent(
                config,
                [self.model(m) for m in config.models],
                tools=allowed,
                router=Router(allowed),
                store=self.store,
                watts_per_core=self.settings.watts_per_core,
                data_dir=self.data_dir,
                selector=tool_selector(
                    config.tool_selection, self.data_dir / "cache" / "tool-vectors.npz"
                ),
                policy=policy,
                storage_url=self.settings.storage.url,
            )
        if self.policy_override is not None:  # a change takes effect without a restart
            override = self.policy_override(name)
            self._policies[name].config = override or self.settings.agent(name).policy
        return self._agents[name]

    def model_status(self) -> dict[str, dict[str, object]]:
        """The loaded models and how each is doing (a local model's worker: state, restarts)."""
        with self._lock:
            return {name: model.status() for name, model in self._models.items()}

    def close(self) -> None:
        for model in self._models.values():
            model.close()
        self.store.close()
        if url := self.settings.storage.url:  # PostgreSQL: this process's pool goes too
            from milliwatt.storage.postgres import close_database

            close_database(url)
