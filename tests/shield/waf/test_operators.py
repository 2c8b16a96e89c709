from __future__ import annotations

from pathlib import Path

import pytest

from milliwatt.shield.waf.macros import Macro, compile_macro
from milliwatt.shield.waf.operators import compile_operator
from milliwatt.shield.waf.regexes import Regex


class Ctx:
    def __init__(self, tx: dict[str, str] | None = None) -> None:
        self.tx = tx or {}
        self.captures: tuple[str, ...] = ()

    def expand(self, macro: Macro) -> str:
        return macro.expand(lambda name, key: self.tx.get(key or "", ""))

    def set_captures(self, groups: tuple[str, ...]) -> None:
        self.captures = groups

    def may_match(self, rx: Regex, value: str) -> bool:
        return True


def run(op: str, value: str, tx: dict[str, str] | None = None, rule_dir: Path = Path(".")) -> bool:
    operator, negated = compile_operator(op, rule_dir)
    return operator.evaluate(Ctx(tx), value, capture=True) != negated


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("@rx (?i)union\\s+select", "1 UNION  SELECT 2", True),
        ("@rx ^a.b$", "a\nb", True),  # PCRE_DOTALL
        ("@rx ^abc$", "abc\n", False),  # PCRE_DOLLAR_ENDONLY
        ("@rx \\xff", "\xff", True),  # byte semantics
        ("!@rx ^[a-z]+$", "abc", False),
        ("bare-pattern", "a bare-pattern", True),
        ("@pm one two three", "xx TWO yy", True),
        ("@pm one two", "nothing", False),
        ("@beginsWith /admin", "/admin/x", True),
        ("@endsWith .php", "/x.php", True),
        ("@contains evil", "so evil", True),
        ("@containsWord evil", "devilish", False),
        ("@streq GET", "GET", True),
        ("@within GET HEAD POST", "HEAD", True),
        ("@within GET HEAD POST", "", False),
        ("@eq 5", "5", True),
        ("@eq 0", "junk", True),  # atoi of junk is 0
        ("@gt 5", "6", True),
        ("@ge 5", "5", True),
        ("@lt 5", "-1", True),
        ("@le 5", "6", False),
        ("@ipMatch 10.0.0.0/8,192.168.1.1,::1", "10.2.3.4", True),
        ("@ipMatch 10.0.0.0/8,::1", "::1", True),
        ("@ipMatch 10.0.0.0/8", "not-an-ip", False),
        ("@validateByteRange 32-126", "abc", False),
        ("@validateByteRange 32-126", "ab\x01", True),
        ("@validateByteRange 1-255", "a\x00", True),
        ("@validateUrlEncoding", "a%2Fb", False),
        ("@validateUrlEncoding", "a%2", True),
        ("@validateUrlEncoding", "a%zz", True),
        ("@validateUtf8Encoding", "caf\xc3\xa9", False),
        ("@validateUtf8Encoding", "\xc0\xaf", True),  # overlong
        ("@unconditionalMatch", "", True),
        ("@noMatch", "x", False),
        ("@detectSQLi", "1' OR '1'='1", True),
        ("@detectSQLi", "a perfectly normal sentence", False),
        ("@detectXSS", "<script>alert(1)</script>", True),
        ("@detectXSS", "hello <b>world</b>", False),
    ],
)
def test_operator(op: str, value: str, expected: bool) -> None:
    assert run(op, value) is expected


def test_macro_arguments_expand_per_transaction() -> None:
    assert run("@ge %{tx.threshold}", "7", {"threshold": "5"})
    assert not run("@ge %{tx.threshold}", "7", {"threshold": "9"})
    assert run("@within %{tx.allowed}", "PUT", {"allowed": "GET PUT"})


def test_rx_capture_sets_groups() -> None:
    operator, _ = compile_operator("@rx (a+)(x)?(b)", Path("."))
    ctx = Ctx()
    assert operator.evaluate(ctx, "zzaab", capture=True)
    assert ctx.captures == ("aab", "aa", "", "b")


@pytest.mark.parametrize("pattern", ["^.*$", ".*", "^.*", ".*$"])
def test_a_match_everything_pattern_answers_like_the_regex(pattern: str) -> None:
    # answered without running the regex: the same as RE2 gives (`.` takes newlines)
    shortcut, regex = Regex(pattern), Regex(pattern)
    regex.whole = False
    assert shortcut.whole
    for value in ("", "x-forwarded-for", "a\nb\r\nc", "\x00\xff"):
        assert shortcut.matches(value) and regex.matches(value)
        assert shortcut.search(value) == regex.search(value) == (value,)
    assert not Regex("^.*$x").whole and not Regex("^(.*)$").whole


def test_detect_sqli_captures_fingerprint() -> None:
    operator, _ = compile_operator("@detectSQLi", Path("."))
    ctx = Ctx()
    assert operator.evaluate(ctx, "1 UNION SELECT password FROM users", capture=True)
    assert ctx.captures and ctx.captures[0]


def test_remembered_verdicts_are_the_same_and_still_capture() -> None:
    # libinjection's and @ipMatch's verdicts are kept by value: a value seen again gets the
    # same answer, and the fingerprint again
    sqli, _ = compile_operator("@detectSQLi", Path("."))
    xss, _ = compile_operator("@detectXSS", Path("."))
    ip, _ = compile_operator("@ipMatch 10.0.0.0/8", Path("."))
    for _ in range(2):
        first, second = Ctx(), Ctx()
        assert sqli.evaluate(first, "1 UNION SELECT password FROM users", capture=True)
        assert not sqli.evaluate(second, "a perfectly normal sentence", capture=True)
        assert first.captures and first.captures[0] and not second.captures
        assert xss.evaluate(Ctx(), "<script>alert(1)</script>", capture=False)
        assert not xss.evaluate(Ctx(), "hello <b>world</b>", capture=False)
        assert ip.evaluate(Ctx(), "10.9.8.7", capture=False)
        assert not ip.evaluate(Ctx(), "11.9.8.7", capture=False)


def test_pm_from_file(tmp_path: Path) -> None:
    (tmp_path / "words.data").write_text("# a comment\n\nNmap\nsqlmap\n")
    assert run("@pmFromFile words.data", "Agent: NMAP scripting", rule_dir=tmp_path)
    assert not run("@pmFromFile words.data", "curl", rule_dir=tmp_path)
    with pytest.raises(ValueError, match="cannot read data file"):
        compile_operator("@pmFromFile absent.data", tmp_path)


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ("@validateByteRange 1-300", "outside 0-255"),
        ("@validateByteRange a-b", "bad byte range"),
        ("@ipMatch 10.0.0.0/99", "bad address"),
        ("@rx (?P<x", "invalid regular expression"),
        ("@geoLookup", "unsupported operator @geoLookup"),
    ],
)
def test_bad_operator_arguments(op: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_operator(op, Path("."))


def test_lookaround_falls_back_to_bounded_engine() -> None:
    rx = Regex("foo(?=bar)")
    assert rx.engine == "regex"
    assert rx.matches("foobar") and not rx.matches("foobaz")


def test_macro_compiles_literals_and_references() -> None:
    macro = compile_macro("score %{tx.a} of %{MATCHED_VAR}")
    assert macro.parts == ("score ", ("TX", "a"), " of ", ("MATCHED_VAR", None))
    assert compile_macro("plain").is_constant


def test_phrase_sets_without_hyperscan(monkeypatch: pytest.MonkeyPatch) -> None:
    from milliwatt.shield.waf import regexes

    monkeypatch.setattr(regexes, "hyperscan", None)
    phrases = regexes.PhraseSet(["Nmap", "caf\u00e9", "a.b"])
    assert phrases.first_match("user agent: NMAP/7") == "NMAP"
    assert phrases.first_match("un CAF\u00c9".encode().decode("latin-1")) is None  # ASCII folding
    assert phrases.first_match("le caf\u00e9".encode().decode("latin-1")) is not None
    assert phrases.first_match("axb") is None


def test_pattern_set_answers_exactly() -> None:
    from milliwatt.shield.waf import regexes

    union, digits = regexes.Regex("(?i)union\\s+select"), regexes.Regex("^\\d+$")
    found = regexes.PatternSet([union, digits])
    assert found.covered == 2 and union.set_id is not None and digits.set_id is not None
    assert found.matching("1 UNION  select 2") == {union.set_id}
    assert found.matching("12345") == {digits.set_id}
    assert found.matching("12a") == frozenset()
    assert found.matching("caf\u00e9\x00\xff") == frozenset()  # any byte is a valid value
