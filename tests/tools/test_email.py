"""email.send against a real SMTP server on loopback (aiosmtpd), email.read from real mailboxes."""

from __future__ import annotations

import mailbox
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from milliwatt.config import EmailConfig
from milliwatt.tools.email import TOOLS, configure_email
from milliwatt.tools.registry import Effect, ToolContext, ToolRegistry


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"agent", b"s3cret")
    return AuthResult(success=ok)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
        configure_email(EmailConfig(), agent="mailer")


TOOLSET = ToolRegistry(TOOLS)
CONTEXT = ToolContext(agent="mailer")


def test_effects_are_declared() -> None:
    assert TOOLSET.get("email.send").effects == {Effect.SENDS}
    assert TOOLSET.get("email.read").effects == {Effect.READS_UNTRUSTED}


def test_send_delivers_through_smtp_with_the_password_from_the_environment(
    smtp: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port = smtp
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    configure_email(
        EmailConfig(
            smtp_host="127.0.0.1",
            smtp_port=port,
            security="none",
            username="agent",
            password_env="TEST_SMTP_PASSWORD",
            sender="agent@home.example",
        ),
        agent="mailer",
    )
    result = TOOLSET.call(
        "email.send",
        {
            "to": ["Bob <bob@corp.example>"],
            "subject": "Report\r\nBcc: x@evil.example",
            "body": "Ready.",
        },
        CONTEXT,
    )
    assert result.ok, result.error
    assert result.value["sent_to"] == ["bob@corp.example"]
    (envelope,) = inbox.envelopes
    assert envelope.rcpt_tos == ["bob@corp.example"]
    assert envelope.mail_from == "agent@home.example"
    content = (
        envelope.content.decode() if isinstance(envelope.content, bytes) else str(envelope.content)
    )
    assert "Subject: Report Bcc: x@evil.example" in content  # one header line, no injected Bcc
    assert "\nBcc:" not in content
    assert "s3cret" not in str(result.value)


def test_a_wrong_or_missing_password_is_a_clear_error(
    smtp: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port = smtp
    config = EmailConfig(
        smtp_host="127.0.0.1",
        smtp_port=port,
        security="none",
        username="agent",
        password_env="TEST_SMTP_PASSWORD",
        sender="agent@home.example",
    )
    configure_email(config, agent="mailer")
    monkeypatch.delenv("TEST_SMTP_PASSWORD", raising=False)
    missing = TOOLSET.call(
        "email.send", {"to": ["bob@corp.example"], "subject": "s", "body": "b"}, CONTEXT
    )
    assert missing.error is not None and "TEST_SMTP_PASSWORD" in missing.error
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    wrong = TOOLSET.call(
        "email.send", {"to": ["bob@corp.example"], "subject": "s", "body": "b"}, CONTEXT
    )
    assert wrong.error is not None and "SMTP server did not take" in wrong.error
    assert inbox.envelopes == []


def test_bad_recipients_and_no_server_are_refused() -> None:
    configure_email(EmailConfig(), agent="mailer")
    none = TOOLSET.call(
        "email.send", {"to": ["bob@corp.example"], "subject": "s", "body": "b"}, CONTEXT
    )
    assert none.error is not None and "no SMTP server" in none.error
    configure_email(EmailConfig(smtp_host="127.0.0.1", sender="a@b.example"), agent="mailer")
    bad = TOOLSET.call(
        "email.send", {"to": ["not an address"], "subject": "s", "body": "b"}, CONTEXT
    )
    assert bad.error is not None and "not e-mail addresses" in bad.error


def _eml(sender: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "me@home.example", subject
    message.set_content(body)
    return message


def test_read_a_folder_of_eml_files_newest_first(tmp_path: Path) -> None:
    import os

    for i, (sender, subject) in enumerate(
        [("alice@a.example", "Lunch"), ("carol@c.example", "Invoice")]
    ):
        path = tmp_path / f"{subject.lower()}.eml"
        path.write_bytes(_eml(sender, subject, f"Body of {subject}.").as_bytes())
        os.utime(path, (1000 + i, 1000 + i))
    configure_email(EmailConfig(mailbox=tmp_path), agent="mailer")
    result = TOOLSET.call("email.read", {}, CONTEXT)
    assert result.untrusted
    subjects = [m["subject"] for m in result.value["messages"]]
    assert subjects == ["Invoice", "Lunch"]
    assert result.value["messages"][0]["from"] == "carol@c.example"
    assert result.value["messages"][0]["body"] == "Body of Invoice."
    only = TOOLSET.call("email.read", {"query": "lunch"}, CONTEXT)
    assert [m["subject"] for m in only.value["messages"]] == ["Lunch"]


def test_read_an_mbox_and_a_maildir(tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "inbox.mbox")
    box.add(_eml("dave@d.example", "Tickets", "Two tickets for Friday."))
    box.flush()
    configure_email(EmailConfig(mailbox=tmp_path / "inbox.mbox"), agent="mailer")
    (message,) = TOOLSET.call("email.read", {}, CONTEXT).value["messages"]
    assert message["subject"] == "Tickets" and message["body"] == "Two tickets for Friday."
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    maildir.add(_eml("erin@e.example", "Keys", "Under the mat."))
    configure_email(EmailConfig(mailbox=tmp_path / "Maildir"), agent="mailer")
    (message,) = TOOLSET.call("email.read", {}, CONTEXT).value["messages"]
    assert message["from"] == "erin@e.example"
    configure_email(EmailConfig(mailbox=tmp_path / "missing"), agent="mailer")
    missing = TOOLSET.call("email.read", {}, CONTEXT)
    assert missing.error is not None and "does not exist" in missing.error
