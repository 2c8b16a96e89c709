"""The CRS regression suite (go-ftw YAML) is the engine's contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from milliwatt.shield.waf import WAF, ftw
from milliwatt.shield.waf.transformations import TRANSFORMATIONS


@pytest.mark.slow
def test_crs_regression_suite_passes(crs_rules: Path, crs_tests: Path) -> None:
    report = ftw.run([crs_tests], crs_rules)
    total = report.passed + report.failed
    assert total > 3000
    failures = {
        rule: [o.test_id for o in items] for rule, items in report.failures_by_rule().items()
    }
    assert report.passed / total >= 0.99, failures
    assert len(report.skipped) <= 10


def test_ftw_cli_prints_failures_by_rule_and_summary(crs_rules: Path, crs_tests: Path) -> None:
    from typer.testing import CliRunner

    from milliwatt.shield.waf.cli import app

    files = [crs_tests / "REQUEST-913-SCANNER-DETECTION" / "913100.yaml"]
    result = CliRunner().invoke(app, ["ftw", *map(str, files), "--rules", str(crs_rules)])
    assert result.exit_code == 0, result.output
    assert re.search(r"^\d+ passed, 0 failed$", result.output.strip().splitlines()[-1])


def test_ftw_reports_a_failing_test(tmp_path: Path, crs_rules: Path) -> None:
    case = {
        "rule_id": 942100,
        "tests": [
            {"test_id": 1, "stages": [{"input": {"uri": "/?a=hello", "headers": {"Host": "localhost"}},  # noqa: E501
                                       "output": {"log": {"expect_ids": [942100]}}}]},
            {"test_id": 2, "stages": [{"input": {"uri": "/x y", "headers": {"Host": "localhost"}},
                                       "output": {"status": 400}}]},
        ],
    }  # fmt: skip
    path = tmp_path / "942100.yaml"
    path.write_text(yaml.safe_dump(case))
    report = ftw.run([path], crs_rules)
    assert (report.passed, report.failed) == (1, 1)
    assert report.failures_by_rule()[942100][0].problems == ["expected ids [942100] did not fire"]


def test_pattern_set_agrees_with_every_pattern(crs_waf: WAF, crs_tests: Path) -> None:
    """On the regression payloads, the one-pass set names exactly the patterns that match."""
    from milliwatt.shield.waf.engine import _regexes

    values: list[str] = []
    for path in sorted(crs_tests.rglob("*.yaml"))[::3]:
        for test in yaml.safe_load(path.read_text()).get("tests", []):
            for stage in test.get("stages", []):
                data = stage.get("input", {})
                for raw in (str(data.get("uri", "")), str(data.get("data", ""))):
                    raw = raw.encode("utf-8", "surrogateescape").decode("latin-1")
                    decoded = TRANSFORMATIONS["urldecodeuni"](raw)
                    values += [raw, decoded, TRANSFORMATIONS["lowercase"](decoded)]
    patterns = [rx for rx in _regexes(crs_waf.ruleset.rules()) if rx.set_id is not None]
    assert crs_waf.pattern_set is not None and len(patterns) >= 150  # those up to its paranoia
    matches = 0
    for value in values:
        answer = crs_waf.pattern_set.matching(value)
        assert answer is not None, value[:80]
        for rx in patterns:
            assert (rx.set_id in answer) == rx.matches(value), (rx.source[:80], value[:80])
        matches += len(answer)
    assert matches > 200


def test_ftw_skips_empty_files_and_reports_malformed_ones(tmp_path: Path, crs_rules: Path) -> None:
    from typer.testing import CliRunner

    from milliwatt.shield.waf.cli import app

    good = {
        "rule_id": 942100,
        "tests": [{"test_id": 1, "stages": [{"input": {"uri": "/?a=1%27%20OR%201%3D1--", "headers": {"Host": "localhost"}},  # noqa: E501
                                             "output": {"log": {"expect_ids": [942100]}}}]}],
    }  # fmt: skip
    (tmp_path / "a-comments.yaml").write_text("# only a comment\n# and another\n")
    (tmp_path / "b-942100.yaml").write_text(yaml.safe_dump(good))
    (tmp_path / "920100.yaml").write_text("rule_id: 920100\ntests: [unclosed\n")
    (tmp_path / "c-list.yaml").write_text("- just\n- a list\n")
    (tmp_path / "d-stages.yaml").write_text("rule_id: 1\ntests:\n  - test_id: 1\n    stages: 7\n")
    report = ftw.run([tmp_path], crs_rules)
    assert report.empty_files == [tmp_path / "a-comments.yaml"]
    assert (report.passed, report.failed) == (1, 3)
    failures = {o.file: o for items in report.failures_by_rule().values() for o in items}
    assert set(failures) == {
        str(tmp_path / n) for n in ("920100.yaml", "c-list.yaml", "d-stages.yaml")
    }
    assert failures[str(tmp_path / "920100.yaml")].rule_id == 920100
    assert all(o.problems[0].startswith("malformed test file: ") for o in failures.values())
    assert "not a mapping" in failures[str(tmp_path / "c-list.yaml")].problems[0]
    assert "stages" in failures[str(tmp_path / "d-stages.yaml")].problems[0]

    result = CliRunner().invoke(app, ["ftw", str(tmp_path), "--rules", str(crs_rules)])
    assert result.exit_code == 1, result.output  # failures: the run says so in its status
    assert f"skipped {tmp_path / 'a-comments.yaml'}: no YAML document in it" in result.output
    assert f"test 0 ({tmp_path / '920100.yaml'}): malformed test file: not YAML" in result.output
    assert result.output.strip().splitlines()[-1] == "1 passed, 3 failed, 1 empty files"
