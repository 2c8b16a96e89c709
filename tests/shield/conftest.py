"""Fixtures shared by the shield's tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def trainer() -> ModuleType:
    """scripts/train_firewall.py as a module (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "train_firewall", REPO / "scripts" / "train_firewall.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
