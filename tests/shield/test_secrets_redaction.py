"""Secrets by reference (environment, 0600 file) and the output scanner that masks them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from milliwatt.shield.redaction import (
    _LOG_ANY,
    _LOG_PATTERNS,
    MASK,
    StreamRedactor,
    luhn_valid,
    redact_arguments,
    redact_output,
    redact_record,
    redact_text,
)
from milliwatt.shield.secrets import SecretError, Secrets

KEYS = [
    "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2",
    "sk-ant-api03-" + "x" * 40,
    "ghp_" + "a" * 36,
    "github_pat_" + "11ABCDEFG" + "x" * 40,
    "AKIA" + "ABCDEFGHIJKLMNOP",
    "AIza" + "S" * 35,
    "xoxb-" + "1234567890-abcdefghij",
    "hf_" + "q" * 34,
    "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "glpat-" + "z" * 20,
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
]


@pytest.mark.parametrize("key", KEYS)
def test_well_known_keys_are_masked_in_answers_and_logs(key: str) -> None:
    text = f"here it is: {key} (keep it safe)"
    assert redact_output(text) == f"here it is: {MASK} (keep it safe)"
    assert key not in redact_text(text)


LOG_TEXTS = [
    *(f"here it is: {key} (keep it safe)" for key in KEYS),
    "mail me at a.b+c@mail.example.co.uk today",
    "card 4111 1111 1111 1111 and 4111-1111-1111-1112",
    "Authorization: Bearer abc.def-ghi",
    "PASSWORD=hunter2&Token is xyz",
    "key mw_abcdefghij_s3cr3t-part was used",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
    "an ordinary sentence with 12345 and 2026-12-06",
    "",
    "OWASP_CRS/PROTOCOL-ENFORCEMENT",
]


@pytest.mark.parametrize("text", LOG_TEXTS)
def test_the_log_prefilter_changes_nothing(text: str) -> None:
    # a string none of the log patterns matches is passed over after one search: the same
    # as running every pattern on it
    slow = text
    for pattern, replacement in _LOG_PATTERNS:
        slow = pattern.sub(replacement, slow)
    assert redact_text(text) == slow
    assert (_LOG_ANY.search(text) is None) == (slow == text)


def test_private_key_blocks_and_bearer_tokens_and_named_passwords() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAKC\n-----END RSA PRIVATE KEY-----"
    assert redact_output(f"key:\n{pem}\ndone") == f"key:\n{MASK}\ndone"
    assert redact_output("Authorization: Bearer abc.def-123456") == f"Authorization: Bearer {MASK}"
    assert redact_output("the password is hunter22") == f"the password is {MASK}"


def test_cards_are_masked_only_when_they_pass_luhn() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert redact_output("card 4111 1111 1111 1111 ok") == f"card {MASK} ok"
    assert redact_output("card 5500-0000-0000-0004.") == f"card {MASK}."
    ordinary = "order 4111111111111112, total 1234567890123.50, 2**64 = 18446744073709551616"
    assert redact_output(ordinary) == ordinary


def test_answers_keep_addresses_numbers_and_code() -> None:
    text = 'Mail bob@example.com: 42 items. password = input("pw")'
    assert redact_output(text) == text
    assert redact_arguments({"to": ["bob@example.com"], "n": 3, "body": "ghp_" + "a" * 36}) == {
        "to": ["bob@example.com"],
        "n": 3,
        "body": MASK,
    }


def test_a_streamed_secret_cut_into_pieces_is_still_masked() -> None:
    key = "ghp_" + "b" * 36
    text = "start " + "word " * 80 + f"the key is {key} and card 4111 1111 1111 1111 end"
    for size in (1, 3, 7, 50):
        redactor = StreamRedactor()
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        out = "".join(redactor.feed(p) for p in pieces) + redactor.flush()
        assert out == redact_output(text)
        assert key not in out and "4111" not in out


def test_ordinary_words_stream_as_they_come_and_a_known_value_waits() -> None:
    redactor = StreamRedactor()
    assert [redactor.feed(p) for p in ["Hello", "!", " How", " are", " you"]] == [
        "", "", "Hello!", " How", " are"
    ]  # fmt: skip
    value = "two words-secret 77"
    Secrets(environ={"PHRASE": value}).get("PHRASE")
    redactor = StreamRedactor()
    out = [redactor.feed(p) for p in ["say ", "two ", "words-secret ", "77 ", "ok"]]
    assert "".join(out) + redactor.flush() == f"say {MASK} ok"


def test_an_env_secret_is_resolved_and_masked_wherever_it_appears() -> None:
    value = "correct-horse-battery-staple-7"  # no known format: only its value betrays it
    secrets = Secrets(environ={"SMTP_PASSWORD": value})
    assert secrets.get("env:SMTP_PASSWORD") == value
    assert redact_output(f"I used {value} to log in") == f"I used {MASK} to log in"
    assert value not in redact_text(f"log: {value}")


def test_a_log_line_seen_before_a_secret_was_resolved_is_masked_after() -> None:
    value = "plum-orchard-lantern-4417"
    line = f"matched value: {value}"
    assert redact_text(line) == line  # nothing to mask yet: remembered as it is
    Secrets(environ={"ORCHARD_KEY": value}).get("env:ORCHARD_KEY")
    assert redact_text(line) == f"matched value: {MASK}"


def test_a_records_own_request_id_is_kept_whole() -> None:
    request_id = "4111111111111111a0b1c2d3e4f5a6b7"  # hex with a card-like run of digits
    record = redact_record({"request_id": request_id, "data": "4111111111111111"})
    assert record == {"request_id": request_id, "data": MASK}


def _write(path: Path, text: str, mode: int) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_the_secrets_file_must_be_private(tmp_path: Path) -> None:
    path = _write(tmp_path / "secrets.toml", 'api_token = "file-secret-value-1"\n', 0o600)
    assert Secrets(path, environ={}).get("file:api_token") == "file-secret-value-1"
    assert Secrets(path, environ={}).get("api_token") == "file-secret-value-1"
    for mode in (0o644, 0o640, 0o604):
        os.chmod(path, mode)
        with pytest.raises(SecretError, match=r"may be read by others \(mode 6\d\d\); run: chmod"):
            Secrets(path, environ={}).get("file:api_token")


def test_missing_and_malformed_references_name_the_secret_not_a_value(tmp_path: Path) -> None:
    path = _write(tmp_path / "secrets.toml", 'n = 3\nok = "value-ok-123"\n', 0o600)
    with pytest.raises(SecretError, match="values must be strings: n"):
        Secrets(path, environ={}).get("file:ok")
    empty = Secrets(tmp_path / "absent.toml", environ={})
    with pytest.raises(SecretError, match="secret 'SMTP' is not set in the environment"):
        empty.get("env:SMTP")
    with pytest.raises(SecretError, match="use env:NAME, file:NAME or NAME"):
        empty.get("vault:SMTP")


def test_a_streamed_value_after_its_name_waits_for_the_value() -> None:
    value = "Zq9" + "x" * 70  # an opaque token of no known format, longer than the hold
    text = "word " * 30 + f"Authorization: Bearer {value} then the password: {value[:20]} end"
    for size in (1, 4):
        redactor = StreamRedactor()
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        streamed = [redactor.feed(p) for p in pieces]
        out = "".join(streamed) + redactor.flush()
        assert value[:20] not in out and out.count(MASK) == 2
        assert sum(1 for s in streamed if s) > 30  # it streamed word by word
