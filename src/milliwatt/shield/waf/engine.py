"""The WAF: finds and loads a rule set once, then hands out transactions."""

from __future__ import annotations

import logging
import os
import re
from importlib import resources
from pathlib import Path

from milliwatt.shield.waf.api import RuleLoadError, WafSettings
from milliwatt.shield.waf.caches import SharedCaches
from milliwatt.shield.waf.compiled import compile_phase
from milliwatt.shield.waf.matching import Targeting
from milliwatt.shield.waf.native import PACKAGE_DIR
from milliwatt.shield.waf.operators import Rx, phrase_lists, screen_id
from milliwatt.shield.waf.phrases import PhraseScreen
from milliwatt.shield.waf.regexes import PatternSet, Regex
from milliwatt.shield.waf.rules import Rule
from milliwatt.shield.waf.ruleset import RuleSet
from milliwatt.shield.waf.seclang import parse_file, parse_text
from milliwatt.shield.waf.transaction import Transaction

log = logging.getLogger(__name__)

# OWASP CRS v4 ships inside the package, so a plain `pip install` runs it
PACKAGED_CRS = PACKAGE_DIR / "crs" / "rules"  # the sources' folder, also when compiled


def find_crs(rules_dir: Path | None) -> Path | None:
    """The directory holding the CRS `*.conf` rule files: `rules_dir`, else
    $MILLIWATT_CRS_DIR, else the packaged CRS; None only when the package lost its rules."""
    if rules_dir is None:
        env = os.environ.get("MILLIWATT_CRS_DIR")
        rules_dir = Path(env) if env else None
    if rules_dir is None:
        return PACKAGED_CRS if any(PACKAGED_CRS.glob("REQUEST-9*.conf")) else None
    base = Path(rules_dir)
    for folder in (base, base / "rules"):
        if folder.is_dir() and any(folder.glob("REQUEST-9*.conf")):
            return folder
    raise FileNotFoundError(f"no CRS rule files (REQUEST-9*.conf) in {base} or {base / 'rules'}")


def packaged_crs_version() -> str:
    """The version of the CRS shipped in the package."""
    return (PACKAGED_CRS.parent / "VERSION").read_text(encoding="utf-8").strip()


def find_setup(rules: Path) -> Path | None:
    """crs-setup.conf beside or above the rules, else the example shipped with CRS."""
    for folder in (rules, rules.parent, Path("/etc/modsecurity/crs")):
        for name in ("crs-setup.conf", "crs-setup.conf.example"):
            if (folder / name).is_file():
                return folder / name
    return None


def settings_rules(settings: WafSettings) -> str:
    """SecLang for the user's settings; loaded after crs-setup, so it decides."""
    engine = "On" if settings.mode == "blocking" else "DetectionOnly"
    return (
        f"SecRuleEngine {engine}\n"
        f"SecRequestBodyLimit {settings.request_body_limit}\n"
        f"SecResponseBodyLimit {settings.response_body_limit}\n"
        f"SecArgumentsLimit {settings.arguments_limit}\n"
        'SecAction "id:900001,phase:1,pass,nolog,'
        f"setvar:tx.blocking_paranoia_level={settings.paranoia},"
        f"setvar:tx.inbound_anomaly_score_threshold={settings.inbound_threshold},"
        f'setvar:tx.outbound_anomaly_score_threshold={settings.outbound_threshold}"\n'
    )


class WAF:
    def __init__(
        self,
        ruleset: RuleSet,
        source: str,
        *,
        pattern_set: bool = True,
        settings: WafSettings | None = None,
        crs_version: str | None = None,
        replay: bool = True,
    ) -> None:
        """`settings` tune the pattern set (paranoia, memory); the rules hold the rest.
        `crs_version` is None when the rules are not the OWASP CRS. `replay=False` walks
        every run of TX-only rules (compiled.py, replay.py): the reference for tests."""
        self.ruleset = ruleset
        self.source = source
        self.crs_version = crs_version
        for head in ruleset.rules():
            member: Rule | None = head
            while member is not None:
                member.seal()
                member = member.chain
        self.caches = SharedCaches()
        self.retargets: dict[tuple[Rule, tuple[str, ...]], Targeting] = {}
        # per phase: its rules in order, and the index of the rule each marker comes before
        self.sequences: dict[int, list[Rule]] = {}
        markers_by_phase: dict[int, dict[str, int]] = {}
        for phase, items in ruleset.phases.items():
            rules = self.sequences[phase] = []
            markers = markers_by_phase[phase] = {}
            for item in items:
                if isinstance(item, str):
                    markers[item] = len(rules)
                else:
                    rules.append(item)
        patterns = list(_regexes(ruleset.rules()))
        self.regex_engines = {
            "re2": sum(r.engine == "re2" for r in patterns),
            "regex": sum(r.engine == "regex" for r in patterns),
        }
        self.fallback_patterns = [r.source for r in patterns if r.engine == "regex"]
        # patterns of rules above the paranoia level would only make the set's DFA slower;
        # left out, they run on their own if a rule ever gets to them
        tuning = settings or WafSettings(paranoia=4)  # no settings: every level's patterns
        kept = _regexes(ruleset.rules(), tuning.paranoia)
        memory = tuning.pattern_set_memory_mb
        built = PatternSet(kept, memory << 20 if memory else None) if pattern_set else None
        self.pattern_set = built if built is not None and built.active else None
        members = [m for head in ruleset.rules() for m in _chain(head)]
        if self.pattern_set is not None:
            lists = phrase_lists(m.operator for m in members)
            phrases = PhraseScreen(lists, first_id=self.pattern_set.size)
            self.pattern_set.phrases = phrases if phrases.active else None
        for member in members:
            member.screen_id = screen_id(member.operator)
            member.screen_bit = 0 if member.screen_id is None else 1 << member.screen_id
        for head in ruleset.rules():
            head.prescreen = _prescreen(head)
        self.phases = {
            phase: compile_phase(rules, markers_by_phase[phase], replay=replay)
            for phase, rules in self.sequences.items()
        }

    @property
    def rule_count(self) -> int:
        return self.ruleset.rule_count

    @property
    def request_body_limit(self) -> int:
        """Bytes of request body inspected; a longer body is refused (413) when blocking."""
        return self.ruleset.request_body_limit

    @property
    def response_body_limit(self) -> int:
        return self.ruleset.response_body_limit

    @property
    def response_mime_types(self) -> tuple[str, ...]:
        """Response bodies of these types are inspected (SecResponseBodyMimeType)."""
        return self.ruleset.response_mime_types

    @property
    def response_body_access(self) -> bool:
        return self.ruleset.response_body_access

    @classmethod
    def load(
        cls,
        rules_dir: Path | None = None,
        settings: WafSettings | None = None,
        *,
        pattern_set: bool = True,
        replay: bool = True,
    ) -> WAF:
        settings = settings or WafSettings()
        crs = None if settings.rules == "baseline" else find_crs(rules_dir)
        ruleset = RuleSet()
        ruleset.add(parse_text(_package_text("engine.conf"), "engine.conf"))
        if crs is None:
            if settings.rules == "baseline":
                source = "baseline (chosen by configuration)"
            else:
                log.warning(
                    "NO OWASP CRS FOUND (the package's rules at %s are missing): running the "
                    "small milliwatt baseline rule set only. Reinstall milliwatt or set "
                    "MILLIWATT_CRS_DIR.",
                    PACKAGED_CRS,
                )
                source = "baseline (no CRS found)"
            ruleset.add(parse_text(settings_rules(settings), "settings"))
            ruleset.add(parse_text(settings.extra_rules, "extra_rules"))
            ruleset.add(parse_text(_package_text("baseline.conf"), "baseline.conf"))
            return cls(ruleset, source, pattern_set=pattern_set, settings=settings, replay=replay)
        setup = find_setup(crs)
        if setup is not None:
            ruleset.add(parse_file(setup))
        ruleset.add(parse_text(settings_rules(settings), "settings"))
        ruleset.add(parse_text(settings.extra_rules, "extra_rules"))
        for path in sorted(crs.glob("*.conf")):
            ruleset.add(parse_file(path))
        version = _crs_version(ruleset.component_signatures)
        return cls(
            ruleset,
            f"crs {version} at {crs}",
            pattern_set=pattern_set,
            settings=settings,
            crs_version=version,
            replay=replay,
        )

    @classmethod
    def from_text(
        cls, text: str, *, name: str = "rules", pattern_set: bool = True, replay: bool = True
    ) -> WAF:
        """A WAF running the engine defaults plus the given SecLang (for tests and tools)."""
        ruleset = RuleSet()
        ruleset.add(parse_text(_package_text("engine.conf"), "engine.conf"))
        ruleset.add(parse_text(text, name))
        return cls(ruleset, name, pattern_set=pattern_set, replay=replay)

    def transaction(
        self,
        client_ip: str = "127.0.0.1",
        client_port: int = 0,
        server_ip: str = "127.0.0.1",
        server_port: int = 80,
        request_id: str | None = None,
    ) -> Transaction:
        return Transaction(self, client_ip, client_port, server_ip, server_port, request_id)


def _regexes(rules: list[Rule], paranoia: int = 4) -> list[Regex]:
    """The @rx patterns of the rules, less those of rules tagged above the paranoia level."""
    out: list[Regex] = []
    for head in rules:
        if _paranoia_of(head) > paranoia:
            continue
        rule: Rule | None = head
        while rule is not None:
            if isinstance(rule.operator, Rx):
                out.append(rule.operator.regex)
            rule = rule.chain
    return out


def _paranoia_of(rule: Rule) -> int:
    for tag in rule.tags:
        level = tag.removeprefix("paranoia-level/")
        if level != tag and level.isdigit():
            return int(level)
    return 1


def _chain(head: Rule) -> list[Rule]:
    out: list[Rule] = []
    rule: Rule | None = head
    while rule is not None:
        out.append(rule)
        rule = rule.chain
    return out


def _prescreen(rule: Rule) -> tuple[str, int] | None:
    """For an @rx/@pm rule on request/response data only, what lets the pattern set skip it."""
    if rule.screen_id is None or rule.negated:
        return None
    # counts excluded: removing targets at run time changes a count, it does not only drop it
    if not rule.targets or not all(t.cacheable and not t.count for t in rule.targets):
        return None
    return "\x01".join(rule.screen_keys), rule.screen_bit


def _package_text(name: str) -> str:
    return resources.files("milliwatt.shield.waf").joinpath(name).read_text(encoding="utf-8")


def _crs_version(signatures: list[str]) -> str:
    for sig in signatures:
        m = re.search(r"OWASP_CRS/(\S+)", sig)
        if m:
            return m.group(1)
    return "(unknown version)"


__all__ = ["PACKAGED_CRS", "WAF", "RuleLoadError", "find_crs", "packaged_crs_version"]
