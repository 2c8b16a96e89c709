"""Where a window sits: tags that mark an instruction addressed to the reader inside data.

The n-grams say what a window says; these tags say how it says it and where. A line that
opens with an order ("Include ...", "Translate ...") or speaks to the reader ("your
answer") means little in a user's request, where orders are normal, and a lot in a table,
a piece of code or an e-mail, where the text around it gives none. Each tag is one hashed
feature whose weight the model learns, alone and joined with the kind of document
(short, prose, table, code), so the same words can weigh differently in each.
"""

from __future__ import annotations

import re
from collections import Counter

# Verbs that open an order to the reader; a compact list of common English imperatives.
IMPERATIVES = frozenset(
    """add answer append apply ask avoid begin call change check choose compose convert copy
    create define delete describe draft drop embed enlist ensure execute explain fetch find
    follow forget forward generate give go help ignore include incorporate insert install
    integrate introduce keep let list make mention merge meld modify open output paste post
    print provide put rearrange recommend reference remember remove rename repeat replace reply
    respond restate return reveal rewrite run say send share show sign skip start stop
    suggest summarize summarise switch tell translate try type update upload use utilize visit
    write""".split()  # noqa: SIM905 (a block of words reads better than 95 quoted ones)
)  # fmt: skip
_ADDRESS = re.compile(r"\b(you|your|yours|yourself)\b")
_MODAL = re.compile(
    r"^(please|kindly|can you|could you|would you|will you|i want you|you must|"
    r"you should|you need|make sure|be sure|don't|do not|never|always)\b"
)
_CODE_LINE = re.compile(r"[=;{}()\[\]]|^\s{2,}|^(def|class|import|from|return|if|for)\b|```")
_WORD = re.compile(r"[^\W\d_]+")
_TOPIC_WORD = re.compile(r"[^\W\d_]{4,}")  # words long enough to carry a topic
_JOINED = frozenset({"imperative", "modal", "address", "question", "off_form"})


def document_kind(lines: list[str]) -> str:
    """table, code or prose: what most of a long text's lines look like."""
    filled = [line for line in lines if line.strip()]
    if len(filled) < 3:
        return "prose"
    if sum(line.count("|") >= 2 for line in filled) >= 0.6 * len(filled):
        return "table"
    if sum(bool(_CODE_LINE.search(line)) for line in filled) >= 0.4 * len(filled):
        return "code"
    return "prose"


def _lead(part: str) -> str:
    match = _WORD.search(part[:40])
    return match.group() if match else ""


def sentence_tags(part: str, kind: str, line: str) -> list[str]:
    """Tags of one line, sentence or cell (normalized) from a document of this kind; `line`
    is the raw line it came from, to see whether it breaks the document's form."""
    lead = _lead(part)
    # which verb opens an order weighs apart; any other first word is left to the n-grams
    # (a tag per word would learn the words that open lines of one language's attacks)
    tags = [f"lead:{lead}", "imperative"] if lead in IMPERATIVES else []
    if _MODAL.match(part):
        tags.append("modal")
    if _ADDRESS.search(part):
        tags.append("address")
    if part.endswith("?"):
        tags.append("question")
    off_form = (kind == "table" and line.count("|") < 2) or (
        kind == "code" and not _CODE_LINE.search(line) and len(line.split()) >= 4
    )
    if off_form:
        tags.append("off_form")  # prose among table rows or code lines
    tags += [f"{kind}|{tag}" for tag in tags]
    if off_form:
        alone = [tag for tag in tags if "|" not in tag and not tag.startswith("lead:")]
        tags += [f"off_form|{tag}" for tag in alone if tag != "off_form"]
    return tags


def shift_tags(orders: int, parts: int, own: bool) -> list[str]:
    """A window with an order in a document that gives almost none: the mood shifts."""
    if not own or parts == 0:
        return []
    share = orders / parts
    return ["mood_shift"] if share <= 0.2 else ["orders_common"]


def topic_words(text: str) -> Counter[str]:
    return Counter(_TOPIC_WORD.findall(text))


def cohesive(marked: int, parts: int) -> bool:
    """Whether a document has a topic for a line to stray from: in one where most lines
    share no word with the rest (another language's inflections, a list of notices), a
    stranger line is nothing out of the way."""
    return parts < 3 or marked <= parts // 2


def stranger_tags(part: str, document: Counter[str], tags: list[str]) -> list[str]:
    """A line that shares no topic word with the rest of its document ("stranger"), or under
    a quarter of them ("loose"): a request planted in an e-mail or a table about something
    else. Alone and joined with how the line speaks and where it sits (its `tags`)."""
    own = topic_words(part)
    if sum(own.values()) < 3:
        return []
    shared = sum(1 for word, count in own.items() if document[word] > count)
    mark = "stranger" if shared == 0 else "loose" if shared < 0.25 * len(own) else None
    if mark is None:
        return []
    return [mark, *(f"{mark}|{tag}" for tag in tags if tag in _JOINED or tag.startswith("part|"))]
