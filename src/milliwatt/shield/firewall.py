"""The prompt firewall: how likely a text is to carry instructions aimed at the model.

A linear model over hashed features, trained by `scripts/train_firewall.py`: character 3-5
grams (robust to misspellings, other languages and split words), word 1-2 grams, and a few
precise patterns of known attacks (chat-template tokens, "ignore previous instructions",
hidden-markdown exfiltration), each pattern a tag whose weight was learned. Numpy
only; a 1 KB text costs about 1.5 milliseconds of CPU.

A long text is read in overlapping windows (of 256 and of 768 characters), and line by line,
sentence by sentence and cell by cell, and scored by its worst window, so an instruction
buried in a long e-mail, page or table is not diluted by the text around it. Each window
also carries context tags (firewall_context): whether a line opens with an order or speaks
to the reader, and whether it breaks the form or the topic of the document around it (prose
among table rows or code, a line sharing no word with the rest), each with its own weight.

The score is a probability in [0, 1]; `is_injection` compares it with the threshold chosen
at training time from out-of-fold scores (see docs/security.md for the figures).
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import unicodedata
import zlib
from pathlib import Path

import numpy as np

from milliwatt.shield.firewall_context import (
    cohesive,
    document_kind,
    sentence_tags,
    shift_tags,
    stranger_tags,
    topic_words,
)

FEATURE_VERSION = 5
WEIGHTS = Path(__file__).with_name("firewall.npz")  # written by scripts/train_firewall.py
TAG_BITS = 14  # context tags: a few hundred distinct ones
WINDOWS = (256, 768)  # window sizes in characters: short ones for a buried line, long for context
_CHAR_NGRAMS = (3, 4, 5)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads a hash over the high bits
_PRIME = np.uint64(1_000_003)
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACE = re.compile(r"\s+")
_SENTENCE = re.compile(r"\n+|(?<=[.!?])\s+|\s*\|\s*")  # lines, sentences, table cells
MIN_SENTENCE = 24
_TOKEN = re.compile(r"\w+|[^\w\s]")
# "ignore / forget", "previous / above / instructions" and "password" in the languages the
# attacks come in (verb-final ones put the verb last): one feature across languages, so the
# many English examples teach the weight of the few in Hindi or Korean
_IGNORE_ANY = (
    "ignor|oubli|olvid|esquec|dimentic|vergiss|yok say|görmezden gel|abaikan|lupakan|"
    "balewalain|huwag pansinin|bỏ qua|phớt lờ|игнорир|забуд|забыть|تجاهل|انس|अनदेखा|"
    "नज़रअंदाज़|नजरअंदाज|भूल जा|উপেক্ষা|ভুলে যা|무시|잊어|無視|忘れ|忽略|忘记|忘掉|无视|"
    "เพิกเฉย|ละเว้น|ไม่สนใจ|อย่าสนใจ|อย่าไปสนใจ|ลืม|kalimutan|unut|quên"
)
_PRIOR_ANY = (
    "previous|above|prior|précéden|ci-dessus|ce qui précède|anterior|previa|acima|precedent|"
    "sopra|vorherig|bisherig|obig|oben|önceki|yukarıdaki|sebelumnya|di atas|nauna|nakaraan|"
    "itaas|trước|ở trên|предыдущ|выше|вышеизлож|السابق|أعلاه|ما سبق|पिछल|ऊपर|उपरोक्त|"
    "পূর্ববর্তী|উপরের|이전|위의|위 |以前|上記|前の|以上|之前|上述|上面|ก่อนหน้า|ข้างต้น|"
    "instruc|istruzion|anweisung|talimat|instruks|tagubilin|hướng dẫn|инструкц|تعليمات|"
    "निर्देश|নির্দেশ|지시|명령|指示|指令|คำสั่ง|คำแนะนำ|"
    # what you were told
    "you were told|you've been told|you have been told|on t'a dit|on vous a dit|te dijeron|"
    "te han dicho|se te ha dicho|te disseram|lhe disseram|foi dito|ti è stato detto|"
    "ti hanno detto|gesagt|söylenen|dikatakan|diberitahu|sinabi sa iyo|được bảo|được dặn|"
    "говорили|сказали|قيل لك|कहा गया|বলা হয়েছে|들은|말한 것|言われた|告诉你的|被告知|ที่บอก"
)
_SECRET_ANY = (
    "password|passphrase|passcode|mot de passe|contraseña|senha|passwort|kennwort|şifre|"
    "parola|kata sandi|mật khẩu|пароль|كلمة المرور|كلمة السر|पासवर्ड|পাসওয়ার্ড|비밀번호|"
    "パスワード|密码|密碼|รหัสผ่าน|"
    "secret key|clé secrète|clave secreta|chiave segreta|chave secreta|geheime schlüssel|"
    "geheimen schlüssel|gizli anahtar|kunci rahasia|lihim na susi|khóa bí mật|секретный ключ|"
    "المفتاح السري|गुप्त कुंजी|গোপন চাবি|গোপন কী|비밀 키|비밀키|秘密鍵|密钥|กุญแจลับ|คีย์ลับ"
)
# a switch to a privileged mode, in the same languages
_MODE_ANY = (
    "god mode|system mode|developer mode|debug mode|admin mode|maintenance mode|sudo mode|"
    "系统模式|システムモード|시스템 모드|режим бога|режим системы|режим разработчика|"
    "modo de sistema|modo sistema|modo desarrollador|modo dios|modo deus|modo desenvolvedor|"
    "mode système|mode développeur|mode dieu|modalità sistema|modalità sviluppatore|"
    "systemmodus|entwicklermodus|gottmodus|sistem modu|geliştirici modu|tanrı modu|"
    "mode sistem|mode pengembang|mode dewa|chế độ hệ thống|chế độ nhà phát triển|"
    "وضع النظام|وضع المطور|सिस्टम मोड|সিস্টেম মোড|โหมดระบบ"
)
# precise signs of an attack; the model learns how much each one counts
RULES: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern)
    for name, pattern in {
        "ignore_previous": r"\b(ignore|disregard|forget|override|skip|bypass)\b.{0,40}"
        r"\b(previous|prior|above|earlier|preceding|original|all|any|your)\b.{0,30}"
        r"\b(instructions?|prompts?|directions?|rules|guidelines|context|tasks?)\b",
        "new_instructions": r"\b(new|updated|real|actual|important|urgent)\s+(instructions?|task|"
        r"directive|orders?)\b",
        "role_marker": r"(^|[\[<({#|])\s*/?\s*(system|admin|administrator|assistant|developer|"
        r"agent|ai)\s*(override|instruction|message|request|note|mode|prompt)?\s*[\]>):|]",
        "template_token": r"<\|(im_start|im_end|system|user|assistant|endoftext|eot_id|"
        r"start_header_id)\|>|\[/?inst\]|<</?sys>>|###\s*(instruction|system|response)",
        "persona": r"\b(you are now|from now on|act as|pretend (to be|you are)|roleplay as|"
        r"developer mode|jailbreak|do anything now)\b",
        "conceal": r"\b(do not|don't|never)\s+(tell|inform|mention|reveal|let)\b.{0,20}\b(user|"
        r"human|anyone)\b",
        "prompt_leak": r"\b(reveal|print|repeat|show|output|disclose)\b.{0,30}\b(system prompt|"
        r"instructions above|initial prompt|hidden prompt|your prompt|secret)\b",
        "exfil_markdown": r"!\[[^\]]*\]\(\s*https?://[^)\s]*[?&][^)\s]*=",
        "before_answer": r"\b(before|instead of)\s+(responding|answering|replying|summari[sz]ing|"
        r"doing anything)\b",
        "tool_call": r"\b(call|invoke|use|run|execute)\s+(the\s+)?(\w+[_.])?\w*\s*"
        r"(tool|function)\b",
        "ignore_previous_any": f"({_IGNORE_ANY}).{{0,40}}({_PRIOR_ANY})"
        f"|({_PRIOR_ANY}).{{0,40}}({_IGNORE_ANY})",
        "secret_any": _SECRET_ANY,
        "mode_any": _MODE_ANY,
    }.items()
}


# words one of which each rule needs to match at all: a substring test skips the regex
_RULE_HINTS: dict[str, tuple[str, ...]] = {
    "ignore_previous": ("ignore", "disregard", "forget", "override", "skip", "bypass"),
    "new_instructions": ("instruction", "task", "directive", "order"),
    "template_token": ("<|", "[inst", "[/inst", "<<sys", "<</sys", "###"),
    "persona": ("you are now", "from now on", "act as", "pretend", "roleplay as",
                "developer mode", "jailbreak", "do anything now"),
    "conceal": ("not", "don't", "never"),
    "prompt_leak": ("system prompt", "instructions above", "initial prompt", "hidden prompt",
                    "your prompt", "secret"),
    "exfil_markdown": ("![",),
    "before_answer": ("before", "instead of"),
    "tool_call": ("tool", "function"),
    "ignore_previous_any": tuple(_IGNORE_ANY.split("|")),
    "secret_any": tuple(_SECRET_ANY.split("|")),
    "mode_any": tuple(_MODE_ANY.split("|")),
}  # fmt: skip


def _rule_hits(window: str) -> list[str]:
    return [
        name
        for name, rule in RULES.items()
        if any(hint in window for hint in _RULE_HINTS.get(name, ("",))) and rule.search(window)
    ]


def normalize(text: str) -> str:
    """NFKC (full-width and look-alike forms), invisible characters out, lower case, one space."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    return _SPACE.sub(" ", text).strip().lower()


def windows(text: str, sentences: bool = True) -> list[str]:
    """The normalized text in windows of each size, overlapping by half, whole if it fits;
    a longer text's lines and sentences too (an instruction planted as a line of its own)."""
    return [window for window, _tags, _start in tagged_windows(text, sentences)]


def tagged_windows(text: str, sentences: bool = True) -> list[tuple[str, list[str], int]]:
    """`windows` with each window's context tags (see firewall_context) and where it starts
    in the normalized text (-1 for a line, sentence or cell)."""
    flat = normalize(text)
    if len(flat) <= WINDOWS[0]:
        return _with_rules([(flat, ["short", *sentence_tags(flat, "short", flat)], 0)])
    lines = text.split("\n")
    kind = document_kind(lines)
    found: list[tuple[str, list[str], int]] = []
    for size in WINDOWS:
        if len(flat) <= size:
            found.append((flat, [f"whole|{kind}"], 0))
            break
        step = size // 2
        tags = [f"{size}|{kind}"]
        found += [(flat[i : i + size], tags, i) for i in range(0, len(flat) - step, step)]
    if sentences:
        parts = [
            (part, line)
            for line in lines
            for part in map(normalize, _SENTENCE.split(line))
            if MIN_SENTENCE <= len(part) <= WINDOWS[0]
        ]
        tagged = [(part, sentence_tags(part, kind, line)) for part, line in parts]
        orders = sum("imperative" in tags or "modal" in tags for _part, tags in tagged)
        document = topic_words(flat)
        placed = []
        for part, tags in tagged:
            own = "imperative" in tags or "modal" in tags
            part_tags = [f"part|{kind}", *tags, *shift_tags(orders - own, len(tagged) - 1, own)]
            placed.append((part, part_tags, stranger_tags(part, document, part_tags)))
        keep = cohesive(sum(bool(marks) for _p, _t, marks in placed), len(placed))
        found += [(part, [*tags, *(marks if keep else [])], -1) for part, tags, marks in placed]
    return _with_rules(found)


def _with_rules(found: list[tuple[str, list[str], int]]) -> list[tuple[str, list[str], int]]:
    """Each window's attack-pattern hits as tags: a hit weighs as much in a long window as in
    a short one (among the n-grams it would be scaled down by the window's length)."""
    return [(w, [*tags, *(f"rule:{name}" for name in _rule_hits(w))], s) for w, tags, s in found]


def _word_keys(text: str, shift: np.uint64) -> np.ndarray:
    """Hashed word 1- and 2-grams of one text (empty when none)."""
    tokens = _TOKEN.findall(text)
    hashed = [zlib.crc32(t.encode()) for t in tokens]
    hashed += [zlib.crc32(f"{a} {b}".encode(), 1) for a, b in itertools.pairwise(tokens)]
    words = np.array(hashed, dtype=np.uint64) + np.uint64(0x5BD1E995)
    return (words * _MIX) >> shift


def tag_features(tags: list[str]) -> np.ndarray:
    """Sorted unique indices of a window's context tags (a table of their own, not scaled
    by the window's length: a tag weighs as much in a short line as in a long one)."""
    if not tags:
        return np.zeros(0, dtype=np.int64)
    hashed = np.array([zlib.crc32(tag.encode(), 3) for tag in tags], dtype=np.uint64)
    keys = ((hashed + np.uint64(0x5BD1E995)) * _MIX) >> np.uint64(64 - TAG_BITS)
    return np.unique(keys).astype(np.int64)


@functools.lru_cache(maxsize=4096)
def _tag_index(tags: tuple[str, ...]) -> np.ndarray:
    return tag_features(list(tags))  # the same few tag lists come back in every text


def features(window: str, bits: int) -> np.ndarray:
    """Sorted unique feature indices of one normalized window."""
    shift = np.uint64(64 - bits)
    parts = [_char_ngrams(window.encode("utf-8"), shift), _word_keys(window, shift)]
    ordered = np.sort(np.concatenate(parts))  # sort + neighbours: several times np.unique's speed
    keep = np.empty(ordered.size, dtype=bool)
    keep[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep].astype(np.int64)


def _char_ngrams(data: bytes, shift: np.uint64) -> np.ndarray:
    raw = np.frombuffer(data, dtype=np.uint8).astype(np.uint64)
    found = []
    for n in _CHAR_NGRAMS:
        count = len(raw) - n + 1
        if count <= 0:
            continue
        h = np.full(count, n, dtype=np.uint64)
        for k in range(n):
            h = h * _PRIME + raw[k : k + count]  # wraps modulo 2**64, as intended
        found.append((h * _MIX) >> shift)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.uint64)


def _batch_features(parts: list[str], bits: int) -> tuple[np.ndarray, np.ndarray]:
    """`features` of every window at once: (window number, feature index) pairs, unique.

    The same features as calling `features` on each window, in a few numpy passes over all
    of them instead of many small ones per window (most of the cost of a short window).
    """
    shift = np.uint64(64 - bits)
    data = [part.encode("utf-8") for part in parts]
    lengths = np.array([len(d) for d in data], dtype=np.int64)
    raw = np.frombuffer(b"".join(data), dtype=np.uint8).astype(np.uint64)
    owner = np.repeat(np.arange(len(parts), dtype=np.uint64), lengths)
    ends = np.repeat(np.cumsum(lengths), lengths)  # where each byte's window ends
    keys, owners = [], []
    for n in _CHAR_NGRAMS:
        count = raw.size - n + 1
        if count <= 0:
            continue
        h = np.full(count, n, dtype=np.uint64)
        for k in range(n):
            h = h * _PRIME + raw[k : k + count]
        inside = np.arange(count) + n <= ends[:count]  # n-grams across two windows dropped
        keys.append((h[inside] * _MIX) >> shift)
        owners.append(owner[:count][inside])
    for number, part in enumerate(parts):
        words = _word_keys(part, shift)
        if words.size:
            keys.append(words)
            owners.append(np.full(words.size, number, dtype=np.uint64))
    if not keys:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    combined = np.sort((np.concatenate(owners) << np.uint64(bits)) | np.concatenate(keys))
    keep = np.empty(combined.size, dtype=bool)
    keep[:1] = True
    np.not_equal(combined[1:], combined[:-1], out=keep[1:])
    combined = combined[keep]
    mask = np.uint64((1 << bits) - 1)
    return (combined >> np.uint64(bits)).astype(np.int64), (combined & mask).astype(np.int64)


class InjectionDetector:
    """Scores text for prompt injection; `score` in [0, 1], `is_injection` at the threshold."""

    def __init__(self, weights: Path | None = None) -> None:
        path = weights or WEIGHTS
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("feature_version") != FEATURE_VERSION:
                raise ValueError(f"{path}: weights for features v{meta.get('feature_version')}")
            self._weights = data["weights"].astype(np.float32)
            self._tag_weights = data["tag_weights"].astype(np.float32)
            self._bias = float(data["bias"])
        self.bits: int = int(meta["bits"])
        self.threshold: float = float(meta["threshold"])
        self.meta: dict[str, object] = meta

    def score(self, text: str) -> float:
        """Probability that the text carries injected instructions (its worst window's)."""
        found = tagged_windows(text)
        window_of, index = _batch_features([window for window, _t, _s in found], self.bits)
        count = np.bincount(window_of, minlength=len(found))
        total = np.bincount(window_of, weights=self._weights[index], minlength=len(found))
        ngrams = total / np.sqrt(np.maximum(count, 1))
        tags = [float(self._tag_weights[_tag_index(tuple(t))].sum()) for _w, t, _s in found]
        best = self._bias + float(np.max(ngrams + np.array(tags)))
        return float(1.0 / (1.0 + np.exp(-best)))

    def is_injection(self, text: str) -> bool:
        return self.score(text) >= self.threshold


@functools.cache
def default_detector() -> InjectionDetector:
    """The detector trained on the shipped weights, loaded once per process."""
    return InjectionDetector()


# A tool's description says what the tool does. Orders to the model about other things
# (hidden steps, secrets to read, the user kept in the dark) are the marks of tool poisoning.
_POISONED_DESCRIPTION = re.compile(
    r"<\s*/?\s*(important|system|instructions?|secret|hidden)\s*>"
    r"|\bbefore (using|calling|invoking|running) (this|any|the) tool\b"
    r"|\b(do not|don't|never)\s+(tell|inform|mention|reveal|notify|alert)\b.{0,30}\b(user|human)"
    r"|\b(otherwise|or else) (the|this) tool (will|would) (not|fail)"
    r"|(~|\$home|/home/\w+|/root)/\.(ssh|aws|config|cursor|env|gnupg|netrc)|\bid_(rsa|ed25519)\b"
    r"|\bmcp\.json\b|/etc/(passwd|shadow)"
    r"|\b(instead|also|secretly|silently),? (send|forward|email|post|upload|call)\b"
    r"|\b(all|every|each) (of your )?(responses?|replies|reply|answers?|outputs?) "
    r"(must|should|shall)\b"
    r"|\bfirst (output|print|say)\b.{0,40}\bthen\b|\balways (output|print|say|reply with|"
    r"respond with|begin with|start with)\b",
)


def screen_tool_description(name: str, description: str) -> str | None:
    """Why a remote tool must be refused (its description reads as an injection), or None."""
    text = normalize(description)
    poisoned = _POISONED_DESCRIPTION.search(text)
    if poisoned is not None:
        return f"its description gives the model hidden orders ({poisoned.group()!r})"
    detector = default_detector()
    score = detector.score(f"{name}: {description}")
    if score >= detector.threshold:
        return f"its description reads as a prompt injection (score {score:.2f})"
    return None
