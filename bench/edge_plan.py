"""PoP placement on the world's cities: `milliwatt edge plan`'s planner against naive choices.

Users: every city of the corpus (Natural Earth, 3,060 cities >= 100k people), weighted by
population. Candidate sites: the same cities. RTTs: the fiber model of milliwatt.edge.geo
(2/3 c, path inflation 1.5). For K in (10, 25, 50, 100) it prints the weighted median and
p90 RTT and the seconds taken by: the planner (greedy + interchange, objective mean), greedy
alone, and the naive choice of the K most populous cities; for K=50 also the p90 objective.
The issue's goal: K=50, median <= 10 ms and p90 <= 40 ms.

    python3 bench/edge_plan.py [--cities ../shared/corpora/cities/cities.csv]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from milliwatt.edge.placement import Objective, assign, greedy, weighted_quantile
from milliwatt.edge.plan import PlanInputs, load_inputs, make_plan

CITIES = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "cities" / "cities.csv"
KS = (10, 25, 50, 100)


def write_city_csvs(cities: Path, folder: Path) -> tuple[Path, Path]:
    """users.csv (weight: population) and sites.csv of every city, named "City, Country"
    (city names repeat across countries; 26 repeat within one, those get " #2", " #3")."""
    users, sites = folder / "users.csv", folder / "sites.csv"
    seen: dict[str, int] = {}
    with cities.open(newline="", encoding="utf-8") as source:
        rows = list(csv.DictReader(source))
    with users.open("w", newline="") as u, sites.open("w", newline="") as s:
        user_rows, site_rows = csv.writer(u), csv.writer(s)
        user_rows.writerow(["city", "lat", "lon", "weight"])
        site_rows.writerow(["site", "lat", "lon"])
        for row in rows:
            name = f"{row['city']}, {row['country']}"
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name} #{seen[name]}"
            user_rows.writerow([name, row["lat"], row["lon"], row["population"]])
            site_rows.writerow([name, row["lat"], row["lon"]])
    return users, sites


def figures(inputs: PlanInputs, chosen: list[int]) -> tuple[float, float]:
    weights = np.array([u.weight for u in inputs.users])
    served = assign(inputs.rtt_ms, chosen).rtt_ms
    return weighted_quantile(served, weights, 0.5), weighted_quantile(served, weights, 0.9)


def timed(run: Callable[[], list[int]]) -> tuple[list[int], float]:
    start = time.perf_counter()
    chosen = run()
    return chosen, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cities", type=Path, default=CITIES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        users, sites = write_city_csvs(args.cities, Path(folder))
        start = time.perf_counter()
        inputs = load_inputs(users, sites, None)
        load_s = time.perf_counter() - start
    n = len(inputs.users)
    print(f"{n} user cities x {len(inputs.sites)} candidate sites; CSVs + matrix {load_s:.2f} s")
    weights = np.array([u.weight for u in inputs.users])
    w = (weights / weights.sum()).astype(np.float32)
    by_population = [int(j) for j in np.argsort(-weights, kind="stable")]
    print(f"{'K':>4} {'method':26} {'median ms':>10} {'p90 ms':>8} {'seconds':>8}")
    headline: dict[str, str] = {}
    for k in KS:
        runs: dict[str, tuple[list[int], float]] = {
            "planner (mean)": timed(lambda k=k: _plan(inputs, k, Objective.mean, sites)),
            "greedy only": timed(lambda k=k: greedy(inputs.rtt_ms, w, k)),
            "most populous (naive)": timed(lambda k=k: by_population[:k]),
        }
        if k == 50:
            runs["planner (p90)"] = timed(lambda: _plan(inputs, 50, Objective.p90, sites))
        for method, (chosen, seconds) in runs.items():
            median, p90 = figures(inputs, chosen)
            print(f"{k:4} {method:26} {median:10.2f} {p90:8.2f} {seconds:8.2f}")
            key = {"planner (mean)": f"k{k}", "most populous (naive)": f"naive_k{k}"}.get(method)
            if key and k in (10, 50):
                headline |= {
                    f"{key}_median_rtt_ms": f"{median:.2f}",
                    f"{key}_p90_rtt_ms": f"{p90:.2f}",
                }
            if method == "planner (mean)" and k == 50:
                headline["k50_seconds"] = f"{seconds:.2f}"
                headline["goal_met"] = str(median <= 10 and p90 <= 40).lower()
    print(" ".join(f"{key}={value}" for key, value in headline.items()))


def _plan(inputs: PlanInputs, k: int, objective: Objective, sites: Path) -> list[int]:
    chosen = make_plan(inputs, k, objective, sites).sites
    index = {site.name: j for j, site in enumerate(inputs.sites)}
    return [index[name] for name in chosen]


if __name__ == "__main__":
    main()
