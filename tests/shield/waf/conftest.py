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


@pytest.fixture(scope="session", autouse=True)
def waf_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compiled phrase databases go to a scratch folder, not the user's cache."""
    import os

    os.environ.setdefault("MILLIWATT_WAF_CACHE", str(tmp_path_factory.mktemp("waf-cache")))
