"""Fit the near-miss weights of the relevance decision on BFCL's tuning half, and show the
trade-off that sets its threshold.

    python bench/fit_relevance.py [--data DIR]

For every tuning-half question (sha256 of the id even; the held-out half is never read),
the best-ranked offered function gives four figures (agent/relevance_features.py): the best
cosine, the margin over the null set, the argument fit and the echo (the share of the
function's own words the request uses). A logistic regression (numpy, classes weighted
equally, L2 0.01) is fit on the questions whose function describes itself; its weights are
printed beside the stored WEIGHTS. The trade-off curve uses probabilities from 5-fold
cross-validation (averaged over 5 shuffles), so no question is scored by weights fit on it:
for each threshold, the share of questions wanting a call that are declined and of
irrelevance questions that are. The chosen threshold maximises their difference (Youden's
J): a wrong decline and a wrong call each cost one answer. The last line holds the headline
figures.
"""

from __future__ import annotations

import sys

import numpy as np

from bfcl_data import bfcl_folder
from milliwatt.agent.relevance import RelevanceJudge
from milliwatt.agent.relevance_features import WEIGHTS
from milliwatt.evals.bfcl import load_category, tool_specs
from milliwatt.evals.bfcl_ast import category_kind
from milliwatt.evals.bfcl_split import split_of
from milliwatt.models.embeddings import get_embedder

CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"]
FEATURES = ("score", "margin", "fits", "echo")
THRESHOLDS = np.round(np.arange(0.10, 0.71, 0.05), 2)
L2 = 0.01
FOLDS, SHUFFLES = 5, 5


def fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Logistic regression by gradient descent on standardised features, classes weighted
    equally; the weights are returned for the raw features."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    weight = np.where(y, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(3000):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        grad = (p - y) * weight
        w -= 0.5 * (z.T @ grad / len(y) + L2 * w)
        b -= 0.5 * float(grad.mean())
    return w / std, b - float((w / std) @ mean)


def cross_validated(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each row's logit from weights fit without it, averaged over shuffles."""
    logits = np.zeros(len(y))
    for seed in range(SHUFFLES):
        order = np.random.default_rng(seed).permutation(len(y))
        for fold in range(FOLDS):
            test = order[fold::FOLDS]
            train = np.setdiff1d(order, test)
            w, b = fit(x[train], y[train])
            logits[test] += (x[test] @ w + b) / SHUFFLES
    return logits


def main() -> int:
    data = bfcl_folder(__doc__.split("\n\n")[0])
    if data is None:
        return 1
    judge = RelevanceJudge(get_embedder().embed, decline_below=None)  # the margin alone
    rows: list[tuple[float, float, float, float]] = []
    wants, described, margin_declined = [], [], []
    for category in CATEGORIES:
        for case in load_category(data, category):
            if split_of(case.id) != "tuning":
                continue
            request = " ".join(m["content"] for m in case.messages if m["role"] == "user")
            best = judge.judge(request, tool_specs(case.functions))[0]
            rows.append((best.score, best.margin, float(best.fits), best.echo))
            wants.append(category_kind(category) != "irrelevance")
            described.append(best.meant is not None)
            margin_declined.append(best.verdict == "decline")
    x, y = np.array(rows), np.array(wants)
    inside, floor = np.array(described), np.array(margin_declined)
    w, b = fit(x[inside], y[inside])
    print(
        f"tuning half: {y.sum()} questions wanting a call, {(~y).sum()} irrelevance; "
        f"{inside.mean():.1%} with a described best function"
    )
    fitted = {"bias": b, **dict(zip(FEATURES, w, strict=True))}
    print("weights fit now: " + ", ".join(f"{k} {v:+.2f}" for k, v in fitted.items()))
    print("weights stored:  " + ", ".join(f"{k} {WEIGHTS[k]:+.2f}" for k in fitted))
    logits = np.zeros(len(y))
    logits[inside] = cross_validated(x[inside], y[inside])
    probability = 1 / (1 + np.exp(-logits))
    print("decline below | wanting a call declined | irrelevance declined | J")
    best_j, chosen = -1.0, 0.0
    curve: dict[float, tuple[float, float]] = {}
    for threshold in THRESHOLDS:
        declined = floor | (inside & (probability < threshold))
        relevant, irrelevant = float(declined[y].mean()), float(declined[~y].mean())
        curve[float(threshold)] = (relevant, irrelevant)
        j = irrelevant - relevant
        print(f"{threshold:13.2f} | {relevant:23.1%} | {irrelevant:20.1%} | {j:.3f}")
        if j > best_j:
            best_j, chosen = j, float(threshold)
    margin_only = (float(floor[y].mean()), float(floor[~y].mean()))
    print(
        f"margin alone  | {margin_only[0]:23.1%} | {margin_only[1]:20.1%} | "
        f"{margin_only[1] - margin_only[0]:.3f}"
    )
    print(f"chosen: decline below {chosen:.2f}")
    gap = max(abs(fitted[k] - WEIGHTS[k]) for k in fitted)
    figures = {
        "decline_below": chosen,
        "cv_relevant_declined": round(curve[chosen][0], 3),
        "cv_irrelevant_declined": round(curve[chosen][1], 3),
        "margin_relevant_declined": round(margin_only[0], 3),
        "margin_irrelevant_declined": round(margin_only[1], 3),
        "stored_weights_gap": round(gap, 3),
    }
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
