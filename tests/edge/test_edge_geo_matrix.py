"""The vectorised RTT matrix agrees with the one-pair model; places files checked by line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from milliwatt.edge.geo import Place, load_places, modelled_rtt_ms, rtt_matrix_ms
from milliwatt.errors import InvalidRequestError


def test_matrix_is_the_pairwise_model() -> None:
    rng = np.random.default_rng(5)
    a = [Place(f"a{i}", lat, lon) for i, (lat, lon) in enumerate(rng.uniform(-89, 89, (40, 2)))]
    b = [Place(f"b{i}", lat, lon * 2) for i, (lat, lon) in enumerate(rng.uniform(-89, 89, (30, 2)))]
    b.append(Place("antipode", -a[0].lat, a[0].lon + 180 if a[0].lon < 0 else a[0].lon - 180))
    matrix = rtt_matrix_ms(a, b)
    assert matrix.shape == (40, 31) and matrix.dtype == np.float32
    expected = np.array([[modelled_rtt_ms(x, y) for y in b] for x in a])
    np.testing.assert_allclose(matrix, expected, rtol=1e-5, atol=1e-4)
    assert matrix[0, -1] == pytest.approx(2 * 20015.1 * 1.5 / 199.86, rel=1e-3)  # half round


def test_duplicate_names_name_both_lines_and_blank_lines_count(tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text("site,lat,lon\nA,1,2\n\nB,3,4\nA,5,6\n")
    assert len(load_places(path, name_column="site")) == 3  # allowed unless asked
    with pytest.raises(InvalidRequestError, match=r"sites.csv:5: site 'A' repeats line 2$"):
        load_places(path, name_column="site", unique_names=True)


def test_a_file_that_is_not_text_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes(b"city,lat,lon,weight\nK\xf6ln,50.9,6.96,1\n")
    with pytest.raises(InvalidRequestError, match=r"users.csv:\d+: not UTF-8 text"):
        load_places(path, name_column="city", weight_column="weight")
    with pytest.raises(InvalidRequestError, match=r"missing\.csv: cannot read"):
        load_places(tmp_path / "missing.csv", name_column="city")
