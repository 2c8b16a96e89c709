"""Integer helpers with bounded cost: primality and base conversion."""

from __future__ import annotations

import random
import string

MAX_PRIME_BITS = 4_096
DIGITS = string.digits + string.ascii_lowercase
# Miller-Rabin with these bases is exact below 3.3e24 (Sorenson & Webster, 2015)
_DETERMINISTIC_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
_DETERMINISTIC_LIMIT = 3_317_044_064_679_887_385_961_981
_SMALL_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47)


def is_prime(n: int) -> bool:
    """Exact below 3.3e24; above, a Miller-Rabin test with 40 rounds (error < 4^-40)."""
    if n.bit_length() > MAX_PRIME_BITS:
        raise ValueError(f"primality is checked for numbers up to {MAX_PRIME_BITS} bits")
    if n < 2:
        return False
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    if n < _DETERMINISTIC_LIMIT:
        bases: tuple[int, ...] = _DETERMINISTIC_BASES
    else:
        # seeded so the same number always gets the same answer
        rng = random.Random(n)
        bases = tuple(rng.randrange(2, n - 1) for _ in range(40))
    return all(_passes(n, a, d, s) for a in bases)


def _passes(n: int, a: int, d: int, s: int) -> bool:
    x = pow(a, d, n)
    if x in (1, n - 1):
        return True
    for _ in range(s - 1):
        x = pow(x, 2, n)
        if x == n - 1:
            return True
    return False


def parse_integer(text: str, base: int) -> int:
    """Read a whole number written in `base` (2-36); 0x/0o/0b prefixes must match the base."""
    _check_base(base)
    cleaned = text.strip().replace("_", "").replace(" ", "").lower()
    negative = cleaned.startswith("-")
    cleaned = cleaned.lstrip("+-")
    prefixes = {16: "0x", 8: "0o", 2: "0b"}
    if base in prefixes and cleaned.startswith(prefixes[base]):
        cleaned = cleaned[2:]
    if not cleaned or len(cleaned) > 4_000:
        raise ValueError(f"{text!r} is not a number in base {base} (empty or over 4000 digits)")
    bad = sorted({c for c in cleaned if c not in DIGITS[:base]})
    if bad:
        raise ValueError(f"{text!r} is not a number in base {base}: bad digit(s) {''.join(bad)}")
    value = 0
    for c in cleaned:
        value = value * base + DIGITS.index(c)
    return -value if negative else value


def write_in_base(n: int, base: int) -> str:
    """Write n in `base` (2-36), lowercase letters for digits above 9."""
    _check_base(base)
    if n == 0:
        return "0"
    sign, n = ("-", -n) if n < 0 else ("", n)
    out = []
    while n:
        n, r = divmod(n, base)
        out.append(DIGITS[r])
    return sign + "".join(reversed(out))


def _check_base(base: int) -> None:
    if not 2 <= base <= 36:
        raise ValueError(f"base must be between 2 and 36, got {base}")
