"""`milliwatt edge plan`'s inputs and answer: users, candidate sites and measured RTTs from
CSV files, checked line by line, turned into one users x sites RTT matrix; the placement's
figures weighted by users."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from milliwatt.edge.geo import Place, load_places, read_rows, rtt_matrix_ms
from milliwatt.edge.placement import Matrix, Objective, place, weighted_quantile
from milliwatt.errors import InvalidRequestError


@dataclass(frozen=True)
class PlanInputs:
    users: list[Place]
    sites: list[Place]
    rtt_ms: Matrix  # users x sites: the fiber model, measured RTTs where given
    measured: int  # how many user-site pairs were measured


@dataclass(frozen=True)
class ServedUser:
    city: str
    site: str
    rtt_ms: float
    weight: float


@dataclass(frozen=True)
class Plan:
    sites: list[str]  # most weight served first
    objective: Objective
    mean_rtt_ms: float
    median_rtt_ms: float
    p90_rtt_ms: float
    per_user: list[ServedUser]

    def as_json(self) -> dict[str, Any]:
        return {
            "sites": self.sites,
            "objective": self.objective.value,
            "mean_rtt_ms": round(self.mean_rtt_ms, 3),
            "median_rtt_ms": round(self.median_rtt_ms, 3),
            "p90_rtt_ms": round(self.p90_rtt_ms, 3),
            "per_user": [
                {"city": u.city, "site": u.site, "rtt_ms": round(u.rtt_ms, 3), "weight": u.weight}
                for u in self.per_user
            ],
        }


def load_inputs(users_path: Path, sites_path: Path, rtt_path: Path | None) -> PlanInputs:
    """The checked inputs: non-empty files of unique names, users' weights above 0 in all."""
    users = load_places(users_path, name_column="city", weight_column="weight", unique_names=True)
    sites = load_places(sites_path, name_column="site", unique_names=True)
    if not users:
        raise InvalidRequestError(f"{users_path}: no users (want rows of city,lat,lon,weight)")
    if not sites:
        raise InvalidRequestError(f"{sites_path}: no candidate sites (want rows of site,lat,lon)")
    if not sum(u.weight for u in users) > 0:
        raise InvalidRequestError(f"{users_path}: every weight is 0")
    rtt = rtt_matrix_ms(users, sites)
    measured = 0 if rtt_path is None else apply_measured(rtt_path, users, sites, rtt)
    return PlanInputs(users, sites, rtt, measured)


def apply_measured(path: Path, users: list[Place], sites: list[Place], rtt: Matrix) -> int:
    """Put the file's measured RTTs (src,dst,rtt_ms; either direction) into `rtt`. Pairs of two
    users or two sites are allowed and unused (a PoP mesh's file has them); a name in neither
    file, a bad number or a pair given twice is an error naming the line."""
    user_row = {u.name: i for i, u in enumerate(users)}
    site_column = {s.name: j for j, s in enumerate(sites)}
    seen: dict[frozenset[str], int] = {}
    cells: set[tuple[int, int]] = set()
    rows = 0
    for line, row in read_rows(path, ("src", "dst", "rtt_ms")):
        rows += 1
        ends = [(row.get(column) or "").strip() for column in ("src", "dst")]
        for name in ends:
            if name not in user_row and name not in site_column:
                raise InvalidRequestError(
                    f"{path}:{line}: {name!r} is neither a user city nor a candidate site"
                )
        pair = frozenset(ends)
        if pair in seen:
            raise InvalidRequestError(
                f"{path}:{line}: {' - '.join(ends)} repeats line {seen[pair]}"
            )
        seen[pair] = line
        value = _rtt(path, line, row.get("rtt_ms"))
        for user, site in (ends, ends[::-1]):
            if user in user_row and site in site_column:
                rtt[user_row[user], site_column[site]] = value
                cells.add((user_row[user], site_column[site]))
    if rows == 0:
        raise InvalidRequestError(f"{path}: no measurements (want rows of src,dst,rtt_ms)")
    return len(cells)


def _rtt(path: Path, line: int, text: str | None) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise InvalidRequestError(f"{path}:{line}: rtt_ms {text!r} is not a number") from None
    if not (math.isfinite(value) and value >= 0):
        raise InvalidRequestError(f"{path}:{line}: rtt_ms {value} is not a finite value >= 0")
    return value


def make_plan(inputs: PlanInputs, k: int, objective: Objective, sites_path: Path) -> Plan:
    """Choose k sites; each user is served by its nearest (fastest) chosen one."""
    if k < 1:
        raise InvalidRequestError(f"--k {k}: choose at least 1 site")
    if k > len(inputs.sites):
        raise InvalidRequestError(
            f"--k {k} is more than the {len(inputs.sites)} candidate sites in {sites_path}"
        )
    weights = np.array([u.weight for u in inputs.users], dtype=np.float64)
    placement = place(inputs.rtt_ms, weights, k, objective)
    served = np.bincount(placement.serving, weights=weights, minlength=len(inputs.sites))
    ranked = sorted(placement.chosen, key=lambda j: (-served[j], inputs.sites[j].name))
    per_user = [
        ServedUser(user.name, inputs.sites[site].name, float(rtt), user.weight)
        for user, site, rtt in zip(inputs.users, placement.serving, placement.rtt_ms, strict=True)
    ]
    return Plan(
        sites=[inputs.sites[j].name for j in ranked],
        objective=objective,
        mean_rtt_ms=float(weights @ placement.rtt_ms / weights.sum()),
        median_rtt_ms=weighted_quantile(placement.rtt_ms, weights, 0.5),
        p90_rtt_ms=weighted_quantile(placement.rtt_ms, weights, 0.9),
        per_user=per_user,
    )


def plan_table(plan: Plan) -> str:
    """One line per chosen site (users served, their share of the weight, median and worst
    RTT), then the summary."""
    total = sum(u.weight for u in plan.per_user)
    width = min(48, max(4, *(len(site) for site in plan.sites)))
    lines = [f"{'site':{width}} {'users':>6} {'weight':>7} {'median ms':>10} {'max ms':>8}"]
    for site in plan.sites:
        users = [u for u in plan.per_user if u.site == site]
        rtts = np.array([u.rtt_ms for u in users])
        share = sum(u.weight for u in users) / total
        median = weighted_quantile(rtts, [u.weight for u in users], 0.5) if users else 0.0
        worst = float(rtts.max()) if users else 0.0
        lines.append(
            f"{site[:width]:{width}} {len(users):6} {share:7.1%} {median:10.1f} {worst:8.1f}"
        )
    lines.append(
        f"{len(plan.sites)} sites for {len(plan.per_user)} user cities (objective: "
        f"{plan.objective.value}); RTT weighted by users: median {plan.median_rtt_ms:.1f} ms, "
        f"p90 {plan.p90_rtt_ms:.1f} ms, mean {plan.mean_rtt_ms:.1f} ms"
    )
    return "\n".join(lines)
