"""Choosing K sites for a weighted user population over a users x sites RTT matrix.

Weighted mean RTT is the p-median problem (NP-hard). The method is the classic one that
finds optima or near-optima on instances of this size: greedy addition (each step adds the
site that lowers the objective most), then Teitz-Bart interchange (swap a chosen site for
an unchosen one while the best swap still lowers the objective), with the swap gains of
all K x M pairs computed at once from each user's nearest and second-nearest chosen site
(Whitaker's fast interchange, vectorised). A percentile objective (median, p90) is not a
sum, so it is met through coverage instead: the q-quantile is <= T exactly when the sites
cover q of the weight within T, so a bisection on T runs greedy maximum coverage (the
(1 - 1/e) approximation) and keeps the best solution it sees.

Written here rather than taken from a library: kmedoids (FasterPAM) and scikit-learn-extra's
KMedoids want one square matrix (users are the candidates) and take no weights; MILP
solvers (OR-Tools, PuLP) need N x M assignment variables, 9 million for the world's cities.
Everything is deterministic: ties go to the lowest index.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
Vector = npt.NDArray[np.float64]
BLOCK_CELLS = 1 << 22  # cells per column block: temporaries stay near 16 MB at any size
RELATIVE_TOLERANCE = 1e-6  # float32 sums are good to about this; smaller gains are noise


class Objective(StrEnum):
    mean = "mean"
    median = "median"
    p90 = "p90"


QUANTILE = {Objective.median: 0.5, Objective.p90: 0.9}


@dataclass(frozen=True)
class Placement:
    chosen: list[int]  # column indices of the chosen sites
    serving: npt.NDArray[np.intp]  # per user (row), the column of its nearest chosen site
    rtt_ms: Vector  # per user, the RTT to that site


def place(rtt: Matrix, weights: npt.ArrayLike, k: int, objective: Objective) -> Placement:
    """The K columns of `rtt` (users x sites, ms) that serve the weighted rows best."""
    users, sites = rtt.shape
    if not 1 <= k <= sites:
        raise ValueError(f"k={k} outside 1..{sites}")
    w64 = np.asarray(weights, dtype=np.float64)
    if w64.shape != (users,) or not w64.sum() > 0:
        raise ValueError("one weight per user, summing to more than 0")
    w = (w64 / w64.sum()).astype(np.float32)
    chosen = swap_search(rtt, w, greedy(rtt, w, k))
    if objective is not Objective.mean:
        chosen = coverage_search(rtt, w, k, QUANTILE[objective], chosen)
    return assign(rtt, chosen)


def assign(rtt: Matrix, chosen: Sequence[int]) -> Placement:
    """Each user served by its nearest chosen site (the first chosen among equals)."""
    columns = np.asarray(chosen, dtype=np.intp)
    nearest = np.argmin(rtt[:, columns], axis=1)
    serving = columns[nearest]
    return Placement(
        list(chosen), serving, rtt[np.arange(len(serving)), serving].astype(np.float64)
    )


def mean_rtt(rtt: Matrix, weights: npt.ArrayLike, chosen: Sequence[int]) -> float:
    """The weighted mean RTT with `chosen` open, in float64."""
    w = np.asarray(weights, dtype=np.float64)
    return float(w @ assign(rtt, chosen).rtt_ms / w.sum())


def weighted_quantile(values: Vector, weights: npt.ArrayLike, q: float) -> float:
    """The least value v such that at least q of the weight has values <= v."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    at = int(np.searchsorted(cumulative, q * cumulative[-1] * (1 - 1e-12), side="left"))
    return float(values[order[min(at, len(order) - 1)]])


def greedy(rtt: Matrix, w: npt.NDArray[np.float32], k: int, start: Sequence[int] = ()) -> list[int]:
    """Add sites to `start`, each the one that lowers the weighted mean RTT most, up to k."""
    chosen = list(start)
    nearest = np.full(rtt.shape[0], np.inf, dtype=np.float32)
    for column in chosen:
        np.minimum(nearest, rtt[:, column], out=nearest)
    while len(chosen) < k:
        totals = _capped_sums(rtt, w, nearest)
        totals[chosen] = np.inf
        best = int(np.argmin(totals))
        chosen.append(best)
        np.minimum(nearest, rtt[:, best], out=nearest)
    return chosen


def swap_search(
    rtt: Matrix, w: npt.NDArray[np.float32], chosen: Sequence[int], max_swaps: int | None = None
) -> list[int]:
    """Teitz-Bart interchange: make the best swap while it lowers the mean, checked in float64."""
    current = list(chosen)
    cost = mean_rtt(rtt, w, current)
    limit = max_swaps if max_swaps is not None else 20 * len(current) + 100
    for _ in range(limit):
        out_position, incoming, estimate = _best_swap(rtt, w, current)
        if estimate >= cost - RELATIVE_TOLERANCE * max(cost, 1e-9):
            break
        candidate = [*current]
        candidate[out_position] = incoming
        new_cost = mean_rtt(rtt, w, candidate)
        if not new_cost < cost:  # float32 said better, float64 says not: a tie
            break
        current, cost = candidate, new_cost
    return current


def _best_swap(
    rtt: Matrix, w: npt.NDArray[np.float32], chosen: list[int]
) -> tuple[int, int, float]:
    """(position in `chosen` to drop, column to add, the mean RTT after that swap)."""
    columns = np.asarray(chosen, dtype=np.intp)
    to_chosen = rtt[:, columns]
    if len(chosen) > 1:
        two = np.argpartition(to_chosen, 1, axis=1)[:, :2]
        pair = np.take_along_axis(to_chosen, two, axis=1)
        swap = pair[:, 0] > pair[:, 1]
        first = np.where(swap, two[:, 1], two[:, 0])
        d1, d2 = pair.min(axis=1), pair.max(axis=1)
    else:
        first = np.zeros(rtt.shape[0], dtype=np.intp)
        d1, d2 = to_chosen[:, 0], np.full(rtt.shape[0], np.inf, dtype=np.float32)
    # users grouped by their nearest chosen site; an empty group costs nothing to drop
    order = np.argsort(first, kind="stable")
    present, starts = np.unique(first[order], return_index=True)
    near, second, weight = d1[order, None], d2[order, None], w[order, None]
    totals = np.empty((len(chosen), rtt.shape[1]), dtype=np.float32)
    for block in _blocks(rtt):
        part = rtt[order, block]  # a copy: reused in place below
        kept = np.minimum(part, near)
        kept *= weight
        extra = np.minimum(part, second, out=part)  # each user's cost if its site went
        extra *= weight
        extra -= kept
        totals[:, block] = kept.sum(axis=0)
        totals[present, block] += np.add.reduceat(extra, starts, axis=0)
    totals[:, columns] = np.inf
    flat = int(np.argmin(totals))
    position, incoming = divmod(flat, rtt.shape[1])
    return position, incoming, float(totals[position, incoming])


def coverage_search(
    rtt: Matrix, w: npt.NDArray[np.float32], k: int, q: float, start: list[int]
) -> list[int]:
    """Bisect on T for the least radius within which greedy coverage reaches q of the weight;
    sites left over after coverage are added for the mean. Never worse than `start`."""
    best, best_key = start, _quantile_key(rtt, w, start, q)
    low, high = 0.0, best_key[0]
    for _ in range(40):
        if high - low <= max(0.01, 1e-4 * high):
            break
        radius = (low + high) / 2
        covering = _greedy_cover(rtt, w, k, q, radius)
        if covering is None:
            low = radius
            continue
        candidate = greedy(rtt, w, k, covering)
        key = _quantile_key(rtt, w, candidate, q)
        if key < best_key:
            best, best_key = candidate, key
        high = min(radius, key[0])
    return best


def _quantile_key(
    rtt: Matrix, w: npt.NDArray[np.float32], chosen: list[int], q: float
) -> tuple[float, float]:
    served = assign(rtt, chosen).rtt_ms
    return weighted_quantile(served, w, q), float(w.astype(np.float64) @ served)


def _greedy_cover(
    rtt: Matrix, w: npt.NDArray[np.float32], k: int, q: float, radius: float
) -> list[int] | None:
    """At most k sites that cover q of the weight within `radius`, greedily; None if not."""
    need = q * float(w.astype(np.float64).sum()) * (1 - 1e-9)
    gain = np.empty(rtt.shape[1], dtype=np.float32)
    for block in _blocks(rtt):
        gain[block] = w @ (rtt[:, block] <= radius).astype(np.float32)
    covered = np.zeros(rtt.shape[0], dtype=bool)
    weight, chosen = 0.0, list[int]()
    while weight < need and len(chosen) < k:
        gain[chosen] = -1.0
        best = int(np.argmax(gain))
        if gain[best] <= 0:
            return None
        chosen.append(best)
        newly = ~covered & (rtt[:, best] <= radius)
        covered |= newly
        weight += float(w[newly].astype(np.float64).sum())
        gain -= w[newly] @ (rtt[newly] <= radius).astype(np.float32)
    return chosen if weight >= need else None


def _capped_sums(rtt: Matrix, w: npt.NDArray[np.float32], cap: Matrix) -> Matrix:
    """For each column j, sum over users of w * min(rtt[u, j], cap[u])."""
    sums = np.empty(rtt.shape[1], dtype=np.float32)
    for block in _blocks(rtt):
        sums[block] = w @ np.minimum(rtt[:, block], cap[:, None])
    return sums


def _blocks(rtt: Matrix) -> Iterator[slice]:
    width = max(1, BLOCK_CELLS // max(1, rtt.shape[0]))
    for begin in range(0, rtt.shape[1], width):
        yield slice(begin, min(begin + width, rtt.shape[1]))
