from __future__ import annotations

from pathlib import Path

import pytest

CORPORA = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpora"
CRS_RULES = CORPORA / "crs" / "rules"
CRS_TESTS = CORPORA / "crs" / "regression" / "tests"


@pytest.fixture(scope="session")
def crs_rules() -> Path:
    if not CRS_RULES.is_dir():
        pytest.skip(f"CRS rules not found at {CRS_RULES} (shared corpora absent)")
    return CRS_RULES


@pytest.fixture(scope="session")
def crs_tests() -> Path:
    if not CRS_TESTS.is_dir():
        pytest.skip(f"CRS regression tests not found at {CRS_TESTS} (shared corpora absent)")
    return CRS_TESTS


@pytest.fixture(scope="session")
def crs_waf(crs_rules: Path):  # type: ignore[no-untyped-def]
    from milliwatt.shield.waf import WAF, WafSettings

    return WAF.load(crs_rules, WafSettings(mode="blocking", paranoia=1))
