"""The placement algorithms on instances whose best answer is plain, and their guarantees."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from milliwatt.edge.geo import Place, modelled_rtt_ms, rtt_matrix_ms
from milliwatt.edge.placement import (
    Objective,
    greedy,
    mean_rtt,
    place,
    swap_search,
    weighted_quantile,
)


def on_equator(*longitudes: float, weights: list[float] | None = None) -> list[Place]:
    weights = weights or [1.0] * len(longitudes)
    return [Place(f"x{lon:g}", 0.0, lon, w) for lon, w in zip(longitudes, weights, strict=True)]


def names(sites: list[Place], chosen: list[int]) -> set[str]:
    return {sites[j].name for j in chosen}


def test_two_clusters_get_one_site_each() -> None:
    europe = [Place("London", 51.5, -0.1, 9), Place("Paris", 48.9, 2.4, 11)]
    america = [Place("New York", 40.7, -74.0, 19), Place("Boston", 42.4, -71.1, 4)]
    sites = [
        Place("Frankfurt", 50.1, 8.7),
        Place("Amsterdam", 52.4, 4.9),
        Place("Ashburn", 39.0, -77.5),
        Place("Newark", 40.7, -74.2),
    ]
    users = europe + america
    for objective in Objective:
        chosen = place(rtt_matrix_ms(users, sites), [u.weight for u in users], 2, objective)
        assert names(sites, chosen.chosen) == {"Amsterdam", "Newark"}, objective
        assert [sites[j].name for j in chosen.serving] == [
            "Amsterdam",
            "Amsterdam",
            "Newark",
            "Newark",
        ]


@pytest.mark.parametrize(("heavy", "expected"), [(0, "x0"), (2, "x2"), (4, "x4")])
def test_weight_moves_a_single_site_to_the_weighted_median(heavy: int, expected: str) -> None:
    # on a line, the 1-median is the weighted median of the users
    weights = [1.0] * 5
    weights[heavy] = 10.0
    users = on_equator(0, 1, 2, 3, 4, weights=weights)
    chosen = place(rtt_matrix_ms(users, users), weights, 1, Objective.mean)
    assert names(users, chosen.chosen) == {expected}


def test_p90_gives_up_the_crowd_to_reach_the_tail() -> None:
    users = on_equator(0, 20, weights=[80, 20])
    sites = on_equator(0, 10, 20)
    matrix = rtt_matrix_ms(users, sites)
    assert names(sites, place(matrix, [80, 20], 1, Objective.mean).chosen) == {"x0"}
    assert names(sites, place(matrix, [80, 20], 1, Objective.median).chosen) == {"x0"}
    p90 = place(matrix, [80, 20], 1, Objective.p90)
    assert names(sites, p90.chosen) == {"x10"}
    middle = modelled_rtt_ms(users[0], sites[1])
    assert weighted_quantile(p90.rtt_ms, [80, 20], 0.9) == pytest.approx(middle, rel=1e-5)


def test_weighted_quantile_is_the_value_that_q_of_the_weight_is_within() -> None:
    values = np.array([4.0, 1.0, 3.0, 2.0])
    assert weighted_quantile(values, [1, 1, 1, 1], 0.5) == 2.0
    assert weighted_quantile(values, [1, 1, 1, 1], 0.75) == 3.0
    assert weighted_quantile(values, [1, 1, 1, 1], 0.9) == 4.0
    assert weighted_quantile(values, [1, 0, 0, 0], 0.5) == 4.0
    assert weighted_quantile(values, [0, 7, 1, 1], 0.9) == 3.0


def random_instance(seed: int, users: int, sites: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    people = [Place(f"u{i}", lat, lon) for i, (lat, lon) in enumerate(_points(rng, users))]
    towers = [Place(f"s{j}", lat, lon) for j, (lat, lon) in enumerate(_points(rng, sites))]
    weights = rng.pareto(1.2, users) + 0.01  # city sizes are heavy-tailed
    return rtt_matrix_ms(people, towers), weights


def _points(rng: np.random.Generator, count: int) -> np.ndarray:
    return np.column_stack([rng.uniform(-60, 70, count), rng.uniform(-180, 180, count)])


@pytest.mark.parametrize("seed", range(12))
def test_interchange_never_ends_worse_than_greedy_and_no_swap_improves_it(seed: int) -> None:
    matrix, weights = random_instance(seed, users=60, sites=25)
    w = (weights / weights.sum()).astype(np.float32)
    k = 1 + seed % 6
    start = greedy(matrix, w, k)
    found = swap_search(matrix, w, start)
    assert len(set(found)) == k
    cost = mean_rtt(matrix, weights, found)
    assert cost <= mean_rtt(matrix, weights, start)
    # a local optimum: no single swap of a chosen site for another is better
    for position, other in itertools.product(range(k), range(matrix.shape[1])):
        if other not in found:
            swapped = [*found]
            swapped[position] = other
            assert mean_rtt(matrix, weights, swapped) >= cost * (1 - 1e-6)


def test_small_instances_mostly_reach_the_optimum_found_by_brute_force() -> None:
    # interchange is a local search: a local optimum may be a little worse than the global one
    gaps = []
    for seed in range(100, 130):
        matrix, weights = random_instance(seed, users=30, sites=10)
        best = min(
            mean_rtt(matrix, weights, list(combo)) for combo in itertools.combinations(range(10), 3)
        )
        found = mean_rtt(matrix, weights, place(matrix, weights, 3, Objective.mean).chosen)
        gaps.append(found / best - 1)
    assert min(gaps) > -1e-6  # nothing beats brute force: the figures are consistent
    assert sum(gap < 1e-6 for gap in gaps) >= 25
    assert max(gaps) < 0.03


@pytest.mark.parametrize("objective", [Objective.median, Objective.p90])
def test_a_percentile_objective_beats_or_ties_the_mean_solution_on_it(objective: Objective) -> None:
    matrix, weights = random_instance(7, users=300, sites=120)
    q = {Objective.median: 0.5, Objective.p90: 0.9}[objective]
    by_mean = place(matrix, weights, 5, Objective.mean)
    by_quantile = place(matrix, weights, 5, objective)
    assert weighted_quantile(by_quantile.rtt_ms, weights, q) <= weighted_quantile(
        by_mean.rtt_ms, weights, q
    )


def test_deterministic_for_the_same_inputs() -> None:
    matrix, weights = random_instance(3, users=200, sites=80)
    runs = [place(matrix, weights, 8, Objective.p90).chosen for _ in range(2)]
    assert runs[0] == runs[1]


def test_bad_arguments_are_refused() -> None:
    matrix, weights = random_instance(1, users=5, sites=3)
    with pytest.raises(ValueError, match=r"outside 1\.\.3"):
        place(matrix, weights, 4, Objective.mean)
    with pytest.raises(ValueError, match="summing to more than 0"):
        place(matrix, np.zeros(5), 1, Objective.mean)


def plain_greedy(matrix: np.ndarray, weights: np.ndarray, k: int) -> list[int]:
    chosen: list[int] = []
    for _ in range(k):
        options = [j for j in range(matrix.shape[1]) if j not in chosen]
        chosen.append(min(options, key=lambda j: mean_rtt(matrix, weights, [*chosen, j])))
    return chosen


@pytest.mark.parametrize("seed", range(5))
def test_lazy_greedy_picks_what_plain_greedy_picks(seed: int) -> None:
    matrix, weights = random_instance(200 + seed, users=80, sites=70)
    w = (weights / weights.sum()).astype(np.float32)
    assert greedy(matrix, w, 12) == plain_greedy(matrix, weights, 12)
