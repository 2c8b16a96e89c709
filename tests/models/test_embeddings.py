"""The numpy all-MiniLM-L6-v2 against sentence-transformers' published behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from milliwatt.models.embeddings import Embedder, EmbeddingModelMissingError, get_embedder


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    try:
        return get_embedder()
    except EmbeddingModelMissingError as exc:
        pytest.skip(f"embedding model not installed: {exc}")


def test_matches_reference_values(embedder: Embedder) -> None:
    # sentence-transformers' all-MiniLM-L6-v2 output for "hello world", first five
    # dimensions, as pinned in fastembed's test suite (tests/test_text_onnx_embeddings.py)
    reference = np.array([-0.034478, 0.03102, 0.00673, 0.02611, -0.039362])
    vectors = embedder.embed(["hello world", "flag embedding"])
    np.testing.assert_allclose(vectors[0, :5], reference, atol=2e-5)


def test_rows_are_unit_float32(embedder: Embedder) -> None:
    vectors = embedder.embed(["one", "two words", "a somewhat longer sentence here"])
    assert vectors.shape == (3, embedder.dimension) == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_paraphrase_is_closer_than_unrelated(embedder: Embedder) -> None:
    a, paraphrase, unrelated = embedder.embed(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The stock market fell sharply today.",
        ]
    )
    assert a @ paraphrase > 0.6
    assert a @ unrelated < 0.2


def test_result_does_not_depend_on_batch(embedder: Embedder) -> None:
    alone = embedder.embed(["the cat sat on the mat"])[0]
    padded = embedder.embed(["word " * 200, "the cat sat on the mat", "x"], batch_size=2)
    np.testing.assert_allclose(padded[1], alone, atol=1e-5)
    np.testing.assert_array_equal(embedder.embed(["the cat sat on the mat"])[0], alone)


def test_long_text_is_truncated_at_256_tokens(embedder: Embedder) -> None:
    long_text = "retrieval " * 1000
    assert embedder.count_tokens(long_text) == 256
    head = embedder.embed([long_text])[0]
    longer = embedder.embed([long_text + "completely different ending " * 50])[0]
    np.testing.assert_allclose(head, longer, atol=1e-6)


def test_empty_input_and_bad_arguments(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, 384)
    with pytest.raises(TypeError, match="sequence of texts"):
        embedder.embed("not a list")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        embedder.embed(["x"], batch_size=0)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        Embedder(threads=0)


def test_singleton(embedder: Embedder) -> None:
    assert get_embedder() is embedder


def test_a_repeated_single_text_is_embedded_once(embedder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    computed: list[int] = []
    original = embedder._embed_batch

    def counting(texts, batch_size):  # type: ignore[no-untyped-def]
        computed.append(len(texts))
        return original(texts, batch_size)

    monkeypatch.setattr(embedder, "_embed_batch", counting)
    first = embedder.embed(["how often should I descale the kettle"])
    first[0, 0] = 99.0  # callers own what they get back
    again = embedder.embed(["how often should I descale the kettle"])
    assert again[0, 0] != 99.0
    assert computed == [1]  # the second request was answered from the recent texts
    batch = embedder.embed(["how often should I descale the kettle", "other"])
    np.testing.assert_allclose(again[0], batch[0], atol=1e-5)
