"""The Sent copy of submitted mail and the DSN extension on submission (issue 6 point 5).

- A message submitted on 465/587 is filed once in the sender's Sent mailbox, \\Seen, in the same
  commit as its delivery (`[smtp] save_sent`, default on).
- The copy a client APPENDs to Sent right after sending (Thunderbird, Apple Mail, mutt) is not
  stored again: the APPEND answers OK with the APPENDUID of the copy already there (RFC 4315 §3)
  and adds its flags to it. Other messages, other mailboxes: stored as usual.
- DSN (RFC 3461) is offered on 465/587, not on 25; NOTIFY=SUCCESS for a local recipient gives the
  sender a `delivered` report (RFC 3461 §6.2.1, RFC 3464) in their INBOX.

Clients: smtplib over TLS (465, and 587 with STARTTLS) and imaplib over TLS (993); the store is
read with maildb.
"""

from __future__ import annotations

import imaplib
import re
import smtplib
import time
import uuid
from email.utils import formatdate

import pytest

from harness import HOSTNAME, Instance
from mailserver import MailServer, configure, provision, readme_config_table, serving
from tlsclient import IO_TIMEOUT, client_context

SERVICES = ("smtp", "submission", "submissions", "imaps")


class CopiesServer(MailServer):
    """The SMTP listeners and imaps, with fresh accounts per test."""

    user_prefix = "sent"

    def smtp_login(self, user: str, password: str, service: str = "submissions") -> smtplib.SMTP:
        """An authenticated smtplib session on 465 (implicit TLS) or 587 (STARTTLS)."""
        if service == "submissions":
            client = smtplib.SMTP_SSL("127.0.0.1", self.ports[service], context=client_context(),
                                      timeout=IO_TIMEOUT)
        else:
            client = smtplib.SMTP("127.0.0.1", self.ports[service], timeout=IO_TIMEOUT)
            client.ehlo("client.test")
            client.starttls(context=client_context())
        client.ehlo("client.test")
        client.login(user, password)
        return client

    def imap_login(self, user: str, password: str) -> imaplib.IMAP4_SSL:
        client = imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=client_context(),
                                   timeout=IO_TIMEOUT)
        client.login(user, password)
        return client


def start_copies_server(binary, folder, certs, smtp: dict | None = None) -> CopiesServer:
    instance = Instance(binary, folder, certs, services=SERVICES)
    settings = configure(instance, smtp)
    provision(instance)
    return CopiesServer(instance, instance.serve(), settings)


@pytest.fixture(scope="module")
def server(sealpost_bin, certs, tmp_path_factory) -> CopiesServer:
    yield from serving(start_copies_server(sealpost_bin, tmp_path_factory.mktemp("copies"), certs))


@pytest.fixture(scope="module")
def no_copies(sealpost_bin, certs, tmp_path_factory) -> CopiesServer:
    """A server with `[smtp] save_sent = false`."""
    if readme_config_table("save_sent") != "smtp":
        pytest.fail("README's configuration reference does not document [smtp] save_sent")
    running = start_copies_server(sealpost_bin, tmp_path_factory.mktemp("nocopies"), certs,
                                  smtp={"save_sent": "false"})
    assert running.settings == {"save_sent": "false"}
    yield from serving(running)


def message(sender: str, rcpt: str, marker: str, message_id: str | None = None) -> bytes:
    """A message as a client composes it (CRLF lines), with a unique marker in the body."""
    lines = [f"From: {sender}", f"To: {rcpt}", f"Subject: copies {marker}", f"Date: {formatdate()}"]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    return ("\r\n".join(lines) + f"\r\n\r\nbody {marker}\r\n").encode()


def new_id() -> str:
    return f"<{uuid.uuid4().hex}@client.test>"


def appenduid(response: list) -> tuple[int, int]:
    """(UIDVALIDITY, UID) of the `[APPENDUID v u]` in imaplib's APPEND answer."""
    text = response[-1].decode() if isinstance(response[-1], bytes) else str(response[-1])
    m = re.search(r"\[APPENDUID (\d+) (\d+)\]", text)
    assert m, f"no APPENDUID in {response!r}"
    return int(m[1]), int(m[2])


def sent_copies(server: CopiesServer, user: str, marker: str):
    return server.db.messages(user, "Sent", marker)


def wait_for_copies(server: CopiesServer, user: str, mailbox: str, marker: str, count: int = 1):
    deadline = time.monotonic() + 5
    while True:
        found = server.db.messages(user, mailbox, marker)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def uidvalidity(client: imaplib.IMAP4, mailbox: str) -> int:
    typ, data = client.status(mailbox, "(UIDVALIDITY)")
    assert typ == "OK", data
    return int(re.search(rb"UIDVALIDITY (\d+)", data[0])[1])


# --- the Sent copy --------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["submissions", "submission"])
def test_submitted_message_is_filed_once_in_sent_and_seen(server, service):
    sender, password = server.new_user()
    rcpt, _ = server.new_user()
    marker = uuid.uuid4().hex
    with server.smtp_login(sender, password, service) as smtp:
        smtp.sendmail(sender, [rcpt], message(sender, rcpt, marker, new_id()))
    copies = sent_copies(server, sender, marker)
    assert len(copies) == 1, copies
    assert copies[0].flags.split() == ["\\Seen"]
    delivered = server.db.messages(rcpt, "INBOX", marker)
    assert len(delivered) == 1 and delivered[0].flags == ""
    assert delivered[0].blob_hash == copies[0].blob_hash, "one blob for the delivery and the copy"
    assert server.db.messages(sender, "INBOX", marker) == [], "the copy is not a delivery"

    with server.imap_login(sender, password) as imap:
        typ, data = imap.select("Sent", readonly=True)
        assert typ == "OK" and data == [b"1"], data
        typ, data = imap.fetch("1", "(FLAGS)")
        assert typ == "OK" and b"\\Seen" in data[0], data


def test_message_to_remote_recipient_is_filed_too(server):
    sender, password = server.new_user()
    marker = uuid.uuid4().hex
    with server.smtp_login(sender, password) as smtp:
        smtp.sendmail(sender, ["someone@remote.test"], message(sender, "someone@remote.test", marker))
    copies = sent_copies(server, sender, marker)
    assert len(copies) == 1, copies
    # RFC 6409 §8.3: the submission server added the Message-ID, and the copy carries it.
    message_id = copies[0].header("Message-ID")[0].strip()
    assert message_id.startswith("<") and message_id.endswith(f"@{HOSTNAME}>"), copies[0].data
    assert [q.address for q in server.db.queued(marker)] == ["someone@remote.test"]


@pytest.mark.parametrize("service", ["submissions", "submission"])
def test_client_append_after_sending_keeps_one_copy(server, service):
    sender, password = server.new_user()
    rcpt, _ = server.new_user()
    marker = uuid.uuid4().hex
    composed = message(sender, rcpt, marker, new_id())
    with server.smtp_login(sender, password, service) as smtp:
        smtp.sendmail(sender, [rcpt], composed)
    [filed] = sent_copies(server, sender, marker)

    # What Thunderbird does next: APPEND its own copy to Sent.
    with server.imap_login(sender, password) as imap:
        typ, data = imap.append("Sent", "(\\Seen $Sent)", imaplib.Time2Internaldate(time.time()), composed)
        assert typ == "OK", data
        assert appenduid(data) == (uidvalidity(imap, "Sent"), filed.uid)
        # A retry of the same APPEND: the same answer.
        typ, data = imap.append("Sent", "(\\Seen)", None, composed)
        assert typ == "OK" and appenduid(data)[1] == filed.uid, data
        typ, data = imap.select("Sent", readonly=True)
        assert data == [b"1"], data

    copies = sent_copies(server, sender, marker)
    assert len(copies) == 1, copies
    assert copies[0].uid == filed.uid
    assert set(copies[0].flags.split()) == {"\\Seen", "$Sent"}, "the APPEND's flags are added"
    assert copies[0].data == filed.data, "the copy filed at submission stays"


def test_append_of_a_message_not_submitted_is_stored(server):
    sender, password = server.new_user()
    rcpt, _ = server.new_user()
    submitted = uuid.uuid4().hex
    with server.smtp_login(sender, password) as smtp:
        smtp.sendmail(sender, [rcpt], message(sender, rcpt, submitted, new_id()))
    marker = uuid.uuid4().hex
    with server.imap_login(sender, password) as imap:
        # Never submitted (another Message-ID), and one without any Message-ID.
        for composed in (message(sender, rcpt, marker, new_id()), message(sender, rcpt, marker)):
            typ, data = imap.append("Sent", "(\\Seen)", None, composed)
            assert typ == "OK", data
            appenduid(data)
        # The submitted message into another mailbox: stored there.
        [filed] = sent_copies(server, sender, submitted)
        typ, data = imap.append("Drafts", None, None, filed.data)
        assert typ == "OK", data
    assert len(sent_copies(server, sender, marker)) == 2
    assert len(server.db.messages(sender, "Drafts", submitted)) == 1
    assert len(sent_copies(server, sender, submitted)) == 1


def test_another_accounts_append_is_stored(server):
    sender, password = server.new_user()
    other, other_password = server.new_user()
    marker = uuid.uuid4().hex
    composed = message(sender, other, marker, new_id())
    with server.smtp_login(sender, password) as smtp:
        smtp.sendmail(sender, [other], composed)
    with server.imap_login(other, other_password) as imap:
        typ, data = imap.append("Sent", "(\\Seen)", None, composed)
        assert typ == "OK", data
    assert len(sent_copies(server, other, marker)) == 1
    assert len(sent_copies(server, sender, marker)) == 1


def test_save_sent_false_files_nothing(no_copies):
    sender, password = no_copies.new_user()
    rcpt, _ = no_copies.new_user()
    marker = uuid.uuid4().hex
    composed = message(sender, rcpt, marker, new_id())
    with no_copies.smtp_login(sender, password) as smtp:
        smtp.sendmail(sender, [rcpt], composed)
    assert len(wait_for_copies(no_copies, rcpt, "INBOX", marker)) == 1
    assert sent_copies(no_copies, sender, marker) == []
    # The client's own copy is then the one kept.
    with no_copies.imap_login(sender, password) as imap:
        typ, data = imap.append("Sent", "(\\Seen)", None, composed)
        assert typ == "OK", data
    copies = sent_copies(no_copies, sender, marker)
    assert len(copies) == 1 and copies[0].data == composed


# --- DSN on submission ------------------------------------------------------------------------------


def test_dsn_offered_on_submission_ports_only(server):
    for service in ("submissions", "submission"):
        sender, password = server.new_user()
        with server.smtp_login(sender, password, service) as smtp:
            assert smtp.has_extn("dsn"), f"{service}: {smtp.esmtp_features}"
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=IO_TIMEOUT) as smtp:
        smtp.ehlo("client.test")
        assert not smtp.has_extn("dsn"), smtp.esmtp_features


def test_notify_success_for_a_local_recipient_gives_a_delivered_report(server):
    sender, password = server.new_user()
    rcpt, _ = server.new_user()
    marker = uuid.uuid4().hex
    with server.smtp_login(sender, password) as smtp:
        smtp.sendmail(sender, [rcpt], message(sender, rcpt, marker, new_id()),
                      mail_options=["RET=HDRS", f"ENVID=env-{marker}"],
                      rcpt_options=["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{rcpt}"])
    assert len(server.db.messages(rcpt, "INBOX", marker)) == 1
    reports = wait_for_copies(server, sender, "INBOX", f"env-{marker}")
    assert len(reports) == 1, reports
    report = reports[0].data.decode()
    assert report.startswith("Return-Path: <>\r\n"), report
    assert "Content-Type: multipart/report; report-type=delivery-status" in report, report
    assert f"Original-Envelope-Id: env-{marker}\r\n" in report, report
    assert f"Original-Recipient: rfc822; {rcpt}\r\n" in report, report
    assert f"Final-Recipient: rfc822; {rcpt}\r\n" in report, report
    assert "Action: delivered\r\nStatus: 2.0.0\r\n" in report, report
    # RFC 3461 §4.3: a success report returns the header only.
    assert f"Subject: copies {marker}" in report and f"body {marker}" not in report, report


def test_no_report_without_notify_success(server):
    sender, password = server.new_user()
    rcpt, _ = server.new_user()
    marker = uuid.uuid4().hex
    with server.smtp_login(sender, password) as smtp:
        smtp.sendmail(sender, [rcpt], message(sender, rcpt, marker, new_id()),
                      mail_options=[f"ENVID=env-{marker}"])
        smtp.sendmail(sender, [rcpt], message(sender, rcpt, marker, new_id()),
                      mail_options=[f"ENVID=env-{marker}"], rcpt_options=["NOTIFY=FAILURE,DELAY"])
    assert len(wait_for_copies(server, rcpt, "INBOX", marker, 2)) == 2
    assert server.db.absent(f"env-{marker}") == [], "no report for a plain delivery"
