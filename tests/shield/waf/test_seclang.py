from __future__ import annotations

from pathlib import Path

import pytest

from milliwatt.shield.waf import WAF, RuleLoadError
from milliwatt.shield.waf.seclang import parse_text, split_actions, split_targets


def test_continuations_comments_and_quotes() -> None:
    text = '# comment\nSecRule ARGS "@rx a\\"b" \\\n    "id:1,phase:2,pass"\n\nSecMarker END\n'
    directives = parse_text(text, "x.conf")
    assert [(d.name, d.line) for d in directives] == [("SecRule", 2), ("SecMarker", 5)]
    assert directives[0].args == ("ARGS", '@rx a"b', "id:1,phase:2,pass")


def test_continuations_of_blanks_make_no_directive() -> None:
    # a continued line holding only blanks (\x1c is one to str.strip) used to crash the parser
    text = "\x1c \\\n\t\nSecMarker END\n\\\n\x1c"
    assert [(d.name, d.line) for d in parse_text(text, "x.conf")] == [("SecMarker", 3)]


def test_actions_keep_commas_inside_quotes() -> None:
    actions = split_actions("id:1,msg:'a, b',t:none,setvar:'tx.x=+%{tx.y}'", "f", 1)
    assert actions == [("id", "1"), ("msg", "a, b"), ("t", "none"), ("setvar", "tx.x=+%{tx.y}")]


def test_targets_with_regex_keys_exclusions_and_counts() -> None:
    specs = split_targets("REQUEST_COOKIES|!REQUEST_COOKIES:/__utm|x/|&ARGS|XML:/*", "f", 1)
    assert [(s.name, s.key, s.key_is_regex, s.count, s.exclude) for s in specs] == [
        ("REQUEST_COOKIES", None, False, False, False),
        ("REQUEST_COOKIES", "__utm|x", True, False, True),
        ("ARGS", None, False, True, False),
        ("XML", "/*", False, False, False),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('SecRule ARGS "@rx a" "phase:2,pass"', "rule has no id"),
        ('SecRule ARGS "@nosuchop a" "id:1,pass"', "unsupported operator @nosuchop"),
        ('SecRule ARGS "@rx a" "id:1,t:nosuchtf"', "unsupported transformation t:nosuchtf"),
        ('SecRule ARGS "@rx a" "id:1,frobnicate"', "unsupported action 'frobnicate'"),
        ('SecRule NOT_A_VAR "@rx a" "id:1"', "unsupported variable NOT_A_VAR"),
        ("SecFrobnicate On", "unsupported directive"),
        ('SecRule ARGS "@rx (" "id:1"', "invalid regular expression"),
        ('SecRule ARGS "@rx a" "id:1,chain"', "chain but no rule follows"),
        ('SecRule ARGS "@rx a', "unterminated double quote"),
        ('SecRule ARGS "@rx a" "id:1,phase:9"', "bad phase"),
        ("SecRuleEngine Sometimes", "must be one of"),
    ],
)
def test_bad_rules_name_file_line_and_problem(text: str, message: str) -> None:
    with pytest.raises(RuleLoadError) as err:
        WAF.from_text("\n\n" + text, name="my.conf")
    assert err.value.file == "my.conf"
    assert err.value.line == 3
    assert message in str(err.value)
    assert str(err.value).startswith("my.conf:3:")


def test_bad_rule_file_in_a_directory_is_named(tmp_path: Path) -> None:
    (tmp_path / "REQUEST-901-X.conf").write_text(
        'SecAction "id:1,pass"\nSecRule ARGS "@bogus" "id:2"\n'
    )
    with pytest.raises(RuleLoadError) as err:
        WAF.load(tmp_path)
    assert err.value.file.endswith("REQUEST-901-X.conf") and err.value.line == 2


def test_include_is_resolved_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "inner.conf").write_text('SecRule ARGS "@contains x" "id:7,phase:2,deny"\n')
    main = tmp_path / "main.conf"
    main.write_text("Include inner.conf\n")
    directives = parse_text(main.read_text(), str(main))
    assert directives[0].args[2] == "id:7,phase:2,deny"
    with pytest.raises(RuleLoadError, match="no such file"):
        parse_text("Include missing.conf\n", str(main))


def test_missing_rules_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no CRS rule files"):
        WAF.load(tmp_path / "nothing-here")


def test_no_crs_falls_back_to_baseline_loudly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from milliwatt.shield.waf import engine

    monkeypatch.delenv("MILLIWATT_CRS_DIR", raising=False)
    monkeypatch.setattr(engine, "PACKAGED_CRS", Path("/nonexistent/crs/rules"))
    waf = WAF.load()
    assert waf.source == "baseline (no CRS found)"
    assert "NO OWASP CRS FOUND" in caplog.text
    assert waf.rule_count >= 10


def test_crs_dir_from_environment(monkeypatch: pytest.MonkeyPatch, crs_rules: Path) -> None:
    monkeypatch.setenv("MILLIWATT_CRS_DIR", str(crs_rules.parent))
    waf = WAF.load()
    assert waf.source.startswith("crs 4.") and str(crs_rules) in waf.source


def test_remove_and_update_target_directives() -> None:
    waf = WAF.from_text(
        'SecRule ARGS "@contains evil" "id:10,phase:2,deny"\n'
        'SecRule ARGS "@contains bad" "id:11,phase:2,deny,tag:foo"\n'
        'SecRule ARGS "@contains ugly" "id:12,phase:2,deny"\n'
        "SecRuleRemoveById 10\n"
        "SecRuleRemoveByTag foo\n"
        'SecRuleUpdateTargetById 12 "!ARGS:safe"\n'
    )
    ids = [r.id for r in waf.ruleset.rules()]
    assert 10 not in ids and 11 not in ids and 12 in ids
    rule = next(r for r in waf.ruleset.rules() if r.id == 12)
    assert [t.key for t in rule.excluded] == ["safe"]
