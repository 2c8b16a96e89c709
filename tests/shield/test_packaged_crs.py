"""The OWASP CRS shipped in the package: found with no setup, blocking, overridable."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from milliwatt.config import ShieldConfig
from milliwatt.shield.http import build_waf_middleware
from milliwatt.shield.waf import WAF, WafSettings
from milliwatt.shield.waf.engine import PACKAGED_CRS, find_crs, packaged_crs_version

pytestmark = pytest.mark.anyio

OWN_RULES = 'SecRule ARGS "@contains sentinel" "id:1001,phase:2,deny,status:403"\n'


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_crs_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MILLIWATT_CRS_DIR", raising=False)


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _own_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "own"
    rules.mkdir()
    (rules / "REQUEST-901-OWN.conf").write_text(OWN_RULES)
    return rules


def test_package_ships_crs_v4_with_its_licence_and_version() -> None:
    assert find_crs(None) == PACKAGED_CRS
    crs = PACKAGED_CRS.parent
    assert "Apache License" in (crs / "LICENSE").read_text()
    assert (crs / "crs-setup.conf.example").is_file()
    version = packaged_crs_version()
    assert re.fullmatch(r"4\.\d+\.\d+(-\w+)?", version)
    # the VERSION file says what the rules themselves say
    signature = f'SecComponentSignature "OWASP_CRS/{version}"'
    assert signature in (PACKAGED_CRS / "REQUEST-901-INITIALIZATION.conf").read_text()
    assert len(list(PACKAGED_CRS.glob("*.conf"))) >= 25
    assert list(PACKAGED_CRS.glob("*.data"))


def test_default_load_runs_the_packaged_crs() -> None:
    waf = WAF.load(settings=WafSettings(paranoia=1), pattern_set=False)
    assert waf.crs_version == packaged_crs_version()
    assert waf.source == f"crs {waf.crs_version} at {PACKAGED_CRS}"
    assert waf.rule_count > 500


@pytest.mark.parametrize(
    ("path", "blocked"),
    [
        ("/v1/models?id=1%27%20OR%20%271%27%3D%271", True),  # SQL injection
        ("/v1/models?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", True),  # XSS
        ("/v1/models?file=..%2F..%2F..%2Fetc%2Fpasswd", True),  # path traversal
        ("/v1/models?q=the%20weather%20in%20Paris", False),
    ],
)
async def test_serve_default_blocks_classic_attacks(path: str, blocked: bool) -> None:
    middleware = build_waf_middleware(_ok)  # what `milliwatt serve` builds with no settings
    assert middleware.waf.crs_version == packaged_crs_version()
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get(path)
    assert r.status_code == (403 if blocked else 200), r.text


async def test_crs_dir_setting_overrides_the_package(tmp_path: Path) -> None:
    middleware = build_waf_middleware(_ok, crs_dir=_own_rules(tmp_path))
    assert str(tmp_path / "own") in middleware.waf.source
    assert middleware.waf.rule_count < 50
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/?a=sentinel")).status_code == 403
        assert (await client.get("/?id=1%27%20OR%20%271%27%3D%271")).status_code == 200


def test_environment_overrides_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MILLIWATT_CRS_DIR", str(_own_rules(tmp_path)))
    assert find_crs(None) == tmp_path / "own"
    assert str(tmp_path / "own") in WAF.load(pattern_set=False).source


def test_baseline_is_chosen_explicitly() -> None:
    middleware = build_waf_middleware(_ok, rules="baseline")
    assert middleware.waf.source == "baseline (chosen by configuration)"
    assert middleware.waf.crs_version is None
    assert ShieldConfig(rules="baseline").rules == "baseline"
    with pytest.raises(ValueError, match="baseline"):
        ShieldConfig(rules="baseline", crs_dir=Path("/somewhere"))
    with pytest.raises(ValueError, match="rules must be"):
        WafSettings(rules="none")  # type: ignore[arg-type]


def test_wheel_carries_the_rules(tmp_path: Path) -> None:
    builders = pytest.importorskip("hatchling.builders.wheel", reason="hatchling not installed")
    import zipfile

    root = Path(__file__).resolve().parents[2]
    builder = builders.WheelBuilder(str(root))
    wheel = next(builder.build(directory=str(tmp_path), versions=["standard"]))
    names = set(zipfile.ZipFile(wheel).namelist())
    crs = "milliwatt/shield/waf/crs/"
    for name in ("LICENSE", "VERSION", "crs-setup.conf.example"):
        assert crs + name in names
    for rule in PACKAGED_CRS.iterdir():
        assert f"{crs}rules/{rule.name}" in names
