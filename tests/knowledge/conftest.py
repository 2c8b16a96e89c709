from __future__ import annotations

from pathlib import Path

import pytest

from milliwatt.models.embeddings import Embedder, EmbeddingModelMissingError, get_embedder

WIDGET = """# Widget manual

The widget is a small device that measures the humidity of soil in a garden.

## Installation

Push the widget ten centimetres into the soil, next to the roots of the plant. Then press
the button for three seconds until the light blinks green.

## Batteries

The widget runs for two years on a single AA battery. Replace it when the light blinks red.
"""

KETTLE = """The kettle boils one litre of water in ninety seconds. Never fill it above the MAX line.

Descale the kettle every month with white vinegar to keep it working.
"""

BICYCLE = """<html><body><article><h1>Bicycle care</h1>
<h2>Tyres</h2><p>Inflate road bicycle tyres to between six and eight bar before each ride.</p>
<h2>Chain</h2><p>Oil the chain every three hundred kilometres, and wipe off the excess.</p>
</article></body></html>"""


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    try:
        return get_embedder()
    except EmbeddingModelMissingError as exc:
        pytest.skip(f"embedding model not installed: {exc}")


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "home").mkdir(parents=True)
    (folder / "widget.md").write_text(WIDGET, encoding="utf-8")
    (folder / "home" / "kettle.txt").write_text(KETTLE, encoding="utf-8")
    (folder / "home" / "bicycle.html").write_text(BICYCLE, encoding="utf-8")
    return folder


def corpora_dir() -> Path:
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora"
