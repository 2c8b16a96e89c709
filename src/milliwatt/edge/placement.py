"""Choosing K sites for a weighted user population over a users x sites RTT matrix.

Weighted mean RTT is the p-median problem (NP-hard). The method is the classic one that
finds optima or near-optima on instances of this size: greedy addition (each step adds the
site that lowers the objective most; evaluated lazily), then Teitz-Bart interchange (swap a
chosen site for an unchosen one while a swap lowers the objective). The gains of the swaps
of all K chosen sites x a block of candidates come at once from each user's nearest and
second-nearest chosen site (Whitaker's fast interchange, vectorised), and a block's best
swap is made at once (eager, as in FasterPAM). A percentile objective (median, p90) is not
a sum, so it is met through coverage instead: the q-quantile is <= T exactly when the sites
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
LAZY_BATCH = 32  # sites evaluated again per step of lazy greedy (doubled while too few)
SWAP_COLUMNS = 128  # candidates per step of the interchange: small enough to swap eagerly
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
    by_site = np.ascontiguousarray(rtt.T)
    chosen = swap_search(rtt, w, greedy(rtt, w, k, by_site=by_site))
    if objective is not Objective.mean:
        chosen = coverage_search(rtt, w, k, QUANTILE[objective], chosen, by_site)
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


def greedy(
    rtt: Matrix,
    w: npt.NDArray[np.float32],
    k: int,
    start: Sequence[int] = (),
    by_site: Matrix | None = None,
) -> list[int]:
    """Add sites to `start`, each the one that lowers the weighted mean RTT most, up to k.
    Lazily (CELF): a site's gain only shrinks as sites are added, so last step's gains bound
    this step's, and only the sites with the highest bounds are evaluated again. `by_site`:
    rtt transposed and contiguous (a site's RTTs in one row), made here unless given."""
    chosen = list(start)
    if by_site is None:
        by_site = np.ascontiguousarray(rtt.T)  # gathering columns of rtt misses cache per cell
    if not chosen:
        no_cap = np.full(rtt.shape[0], np.inf, dtype=np.float32)
        chosen.append(int(np.argmin(_capped_sums(rtt, w, no_cap))))
    if len(chosen) >= k:
        return chosen
    nearest = by_site[chosen].min(axis=0)
    bound = np.empty(rtt.shape[1], dtype=np.float32)
    for block in _blocks(rtt):
        bound[block] = w @ np.maximum(nearest[:, None] - rtt[:, block], 0)
    while len(chosen) < k:
        bound[chosen] = -np.inf
        batch = min(LAZY_BATCH, rtt.shape[1] - len(chosen))
        while True:
            candidates = np.sort(np.argpartition(-bound, batch - 1)[:batch])
            gains = np.maximum(nearest[None, :] - by_site[candidates], 0) @ w
            bound[candidates] = gains
            best = int(candidates[np.argmax(gains)])
            others = bound.copy()
            others[candidates] = -np.inf
            if gains.max() >= others.max() or batch == rtt.shape[1] - len(chosen):
                break
            batch = min(2 * batch, rtt.shape[1] - len(chosen))
        chosen.append(best)
        np.minimum(nearest, by_site[best], out=nearest)
    return chosen


def swap_search(
    rtt: Matrix, w: npt.NDArray[np.float32], chosen: Sequence[int], max_swaps: int | None = None
) -> list[int]:
    """Teitz-Bart interchange, eager: candidates are scanned in blocks of columns and the best
    swap of a block is made at once when it lowers the mean (checked in float64), as FasterPAM
    does; it ends when a whole pass over the candidates finds none, at a local optimum. Eager
    swaps take a few passes where best-improvement takes one full pass per swap."""
    current = list(chosen)
    cost = mean_rtt(rtt, w, current)
    limit = max_swaps if max_swaps is not None else 20 * len(current) + 100
    blocks = list(_blocks(rtt, SWAP_COLUMNS))
    neighbours, idle, at, swaps = _Neighbours(rtt, w, current), 0, 0, 0
    while idle < len(blocks) and swaps < limit:
        position, incoming, estimate = neighbours.best_swap(blocks[at])
        if estimate < cost - RELATIVE_TOLERANCE * max(cost, 1e-9):
            candidate = [*current]
            candidate[position] = incoming
            new_cost = mean_rtt(rtt, w, candidate)
            if new_cost < cost:  # else float32 saw a gain that float64 does not: a tie
                current, cost, swaps, idle = candidate, new_cost, swaps + 1, 0
                neighbours = _Neighbours(rtt, w, current)
                continue  # the same block again: the swap may have opened another
        idle, at = idle + 1, (at + 1) % len(blocks)
    return current


class _Neighbours:
    """Each user's nearest and second-nearest chosen site, users grouped by the nearest."""

    def __init__(self, rtt: Matrix, w: npt.NDArray[np.float32], chosen: list[int]) -> None:
        self.rtt, self.chosen = rtt, np.asarray(chosen, dtype=np.intp)
        to_chosen = rtt[:, self.chosen]
        if len(chosen) > 1:
            two = np.argpartition(to_chosen, 1, axis=1)[:, :2]
            pair = np.take_along_axis(to_chosen, two, axis=1)
            first = np.where(pair[:, 0] > pair[:, 1], two[:, 1], two[:, 0])
            d1, d2 = pair.min(axis=1), pair.max(axis=1)
        else:
            first = np.zeros(rtt.shape[0], dtype=np.intp)
            d1, d2 = to_chosen[:, 0], np.full(rtt.shape[0], np.inf, dtype=np.float32)
        # an empty group (a site nearest to nobody) costs nothing to drop
        self.order = np.argsort(first, kind="stable")
        self.present, self.starts = np.unique(first[self.order], return_index=True)
        self.near, self.second = d1[self.order, None], d2[self.order, None]
        self.weight = w[self.order, None]

    def best_swap(self, block: slice) -> tuple[int, int, float]:
        """(position in chosen to drop, column of `block` to add, the mean RTT after)."""
        part = self.rtt[self.order, block]  # a copy: reused in place below
        kept = np.minimum(part, self.near)
        kept *= self.weight
        extra = np.minimum(part, self.second, out=part)  # each user's cost if its site went
        extra *= self.weight
        extra -= kept
        totals = np.repeat(kept.sum(axis=0)[None, :], len(self.chosen), axis=0)
        totals[self.present] += np.add.reduceat(extra, self.starts, axis=0)
        inside = self.chosen[(self.chosen >= block.start) & (self.chosen < block.stop)]
        totals[:, inside - block.start] = np.inf
        position, offset = divmod(int(np.argmin(totals)), totals.shape[1])
        return position, block.start + offset, float(totals[position, offset])


def coverage_search(
    rtt: Matrix,
    w: npt.NDArray[np.float32],
    k: int,
    q: float,
    start: list[int],
    by_site: Matrix,
) -> list[int]:
    """Bisect on T for the least radius within which greedy coverage reaches q of the weight;
    sites left over after coverage are added for the mean. Never worse than `start`."""
    best, best_key = start, _quantile_key(rtt, w, start, q)
    low, high = 0.0, best_key[0]
    for _ in range(40):
        if high - low <= max(0.01, 1e-4 * high):
            break
        radius = (low + high) / 2
        covering = _greedy_cover(rtt, w, k, q, radius, by_site)
        if covering is None:
            low = radius
            continue
        candidate = greedy(rtt, w, k, covering, by_site)
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
    rtt: Matrix, w: npt.NDArray[np.float32], k: int, q: float, radius: float, by_site: Matrix
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
        newly = ~covered & (by_site[best] <= radius)
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


def _blocks(rtt: Matrix, most: int | None = None) -> Iterator[slice]:
    width = max(1, BLOCK_CELLS // max(1, rtt.shape[0]))
    width = min(width, most or width)
    for begin in range(0, rtt.shape[1], width):
        yield slice(begin, min(begin + width, rtt.shape[1]))
