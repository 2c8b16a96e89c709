"""Word-level evidence that a function does what a request asks, and its combination.

A sentence cosine says a request and a function are about the same thing; BFCL's
irrelevance questions are near misses that are ("roots of a linear equation" against
`find_roots` of a quadratic one). A function that is meant tends to have its own words
echoed by the request: `echo` is the share of the function's name and description words
(content words, matched by stem) that the request uses.

`near_miss_probability` combines that with the sentence-level evidence into the
probability that a function is meant: a logistic regression whose weights were fit on
BFCL's tuning half by bench/fit_relevance.py (docs/evals.md, "Relevance alone"). It is
only applied to functions that describe themselves (MIN_DESCRIBED words or more, as 90% of
BFCL's do): a terse function ("pkg.track: tracking") echoes few of any request's words,
and the data it was fit on holds almost none of them.
"""

from __future__ import annotations

import math
import re

from milliwatt.models.base import ToolSpec

# words that say how a request is asked, not what it asks for
_STOPWORDS = """a about above after again all also am an and any are as at be been before being
below between both but by can could did do does doing down during each few for from
further had has have having he her here hers him his how i if in into is it its itself
just let me more most my no nor not now of off on once only or other our ours out over
own same she should so some such than that the their them then there these they this
those through to too under until up very was we were what when where which while who
whom why will with would you your yours want need like know please tell show give find
get calculate compute determine provide many much can't what's it's i'm i'd let's
using use used given based one two three four five six seven eight nine ten"""
STOPWORDS = frozenset(_STOPWORDS.split())
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_MIN_LETTERS = 3
# content words a description needs for the near-miss weights to apply: BFCL's 10th
# percentile (its median is 6); fewer, and the judge falls back on the margin alone
MIN_DESCRIBED = 4
# logistic weights over (score, margin, fits, echo), fit on BFCL's tuning half with
# balanced classes: python bench/fit_relevance.py prints them
WEIGHTS: dict[str, float] = {
    "bias": -7.84,
    "score": 8.38,
    "margin": 0.85,
    "fits": 2.88,
    "echo": 3.01,
}


def words(text: str) -> list[str]:
    """Lowercased content words, in order, each once: `getStockQuote` gives stock, quote
    ('get' says how, not what)."""
    spaced = _CAMEL.sub(" ", text.replace("_", " "))
    found = (w.lower().strip("'") for w in _WORD.findall(spaced))
    kept = (w for w in found if len(w) >= _MIN_LETTERS and w not in STOPWORDS)
    return list(dict.fromkeys(kept))


def same_stem(a: str, b: str) -> bool:
    """'area'/'areas', 'compound'/'compounded', 'calculate'/'calculation'; not
    'internal'/'international' (the shared start must cover 3/4 of the shorter word)."""
    if a == b:
        return True
    shorter = min(len(a), len(b))
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    return common >= max(4, 0.75 * shorter)


def head_words(spec: ToolSpec) -> list[str]:
    """The words that say what a function does: its name's and its description's."""
    return words(f"{spec.name} {spec.description}")


def echo(request: str, spec: ToolSpec) -> float:
    """The share of the function's own words (name, description) the request uses, by stem:
    "roots of a linear equation" echoes roots and equation of `find_roots: Find the roots
    of a quadratic equation`, but not quadratic (2/3)."""
    own = head_words(spec)
    if not own:
        return 0.0
    asked = words(request)
    return sum(any(same_stem(a, w) for a in asked) for w in own) / len(own)


def described(spec: ToolSpec) -> bool:
    """Does the function say enough about itself for the near-miss evidence to apply?"""
    return len(words(spec.description)) >= MIN_DESCRIBED


def near_miss_probability(score: float, margin: float, fits: bool, echoed: float) -> float:
    """P(the function is meant), from the best cosine, the margin over the null set, the
    argument fit and the echo; the weights are WEIGHTS, fit on BFCL's tuning half."""
    z = WEIGHTS["bias"] + WEIGHTS["score"] * score + WEIGHTS["margin"] * margin
    z += WEIGHTS["fits"] * float(fits) + WEIGHTS["echo"] * echoed
    return 1.0 / (1.0 + math.exp(-z))
