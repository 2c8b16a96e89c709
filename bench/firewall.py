"""What the prompt firewall costs per 1 KB of text on one core, against embedding the same
text with all-MiniLM-L6-v2 (the other candidate: an embedding + a small classifier), side by
side; and the held-out figures recorded with the shipped weights.

    python bench/firewall.py [--texts 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the goal is stated
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from milliwatt.shield.firewall import InjectionDetector  # noqa: E402

INJECTION = ROOT.parent / "shared" / "corpora" / "injection"
CORPUS = INJECTION / "purplellama-cyberseceval" / "data.jsonl"


def kilobyte_texts(count: int) -> list[str]:
    """Texts of about 1 KB: corpus rows joined (or a fixed sentence when the corpora are absent)."""
    rows = []
    if CORPUS.exists():
        rows = [json.loads(line)["text"] for line in CORPUS.read_text().split("\n") if line.strip()]
    rows = rows or ["Please summarise the attached quarterly report for the board meeting."]
    texts, i = [], 0
    while len(texts) < count:
        text = ""
        while len(text.encode()) < 1024:
            text += rows[i % len(rows)] + "\n"
            i += 1
        texts.append(text.encode()[:1024].decode("utf-8", "ignore"))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200)
    args = parser.parse_args()
    texts = kilobyte_texts(args.texts)
    detector = InjectionDetector()
    detector.score(texts[0])
    ngram = []
    cpu_started = time.process_time()  # CPU time: the cost on one core, however busy the host
    for text in texts:
        started = time.perf_counter()
        detector.score(text)
        ngram.append((time.perf_counter() - started) * 1000)
    ngram_cpu_ms = (time.process_time() - cpu_started) * 1000 / len(texts)
    minilm_ms = float("nan")
    try:
        from milliwatt.models.embeddings import Embedder

        embedder = Embedder(threads=1)
        embedder.embed([texts[0]])
        sample = texts[: max(20, args.texts // 5)]
        cpu_started = time.process_time()
        for i, text in enumerate(sample):
            embedder.embed([f"{i} {text}"])  # a new text each time: no cached answer
        minilm_ms = (time.process_time() - cpu_started) * 1000 / len(sample)
    except Exception as exc:  # the embedding model is optional here
        print(f"MiniLM not measured: {exc}")
    ngram_ms = statistics.median(ngram)
    p95 = statistics.quantiles(ngram, n=20)[-1]
    held = detector.meta.get("held_out", {})
    everything = detector.meta.get("out_of_fold", {})  # 5 folds over both halves
    assert isinstance(held, dict) and isinstance(everything, dict)
    print(f"1 KB texts, one core (OMP/BLAS threads 1), {len(ngram)} texts:")
    print(f"  n-gram detector    {ngram_cpu_ms:7.3f} ms CPU per text  (wall median {ngram_ms:.3f},")
    print(f"                     p95 {p95:.3f}: the wall times include waiting for a busy host)")
    print(f"  MiniLM embedding   {minilm_ms:7.3f} ms CPU per text  (before any classifier)")
    print(
        f"held-out (recorded at training: the recipe fitted on the tuning half): {json.dumps(held)}"
    )
    print(
        f"ngram_cpu_ms_per_kb={ngram_cpu_ms:.3f} ngram_wall_ms_per_kb={ngram_ms:.3f} "
        f"minilm_cpu_ms_per_kb={minilm_ms:.2f} goal_ms_per_kb=5 "
        f"heldout_tpr={held.get('tpr', float('nan')):.3f} "
        f"heldout_fpr={held.get('fpr', float('nan')):.4f} "
        f"heldout_tpr_at_1pct_fpr={held.get('tpr_at_1pct_fpr', float('nan')):.3f} "
        f"oof_tpr_at_1pct_fpr={everything.get('tpr_at_1pct_fpr', float('nan')):.3f}"
    )


if __name__ == "__main__":
    main()
