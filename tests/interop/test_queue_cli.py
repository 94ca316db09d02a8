"""`sealpost queue list|flush|drop ID` (CONTRACT.md): what waits in the outbound queue, retrying
it all now, and removing an entry with a bounce (RFC 3464 report) to its sender."""

from __future__ import annotations

import email
import email.policy
import re

from harness import HOSTNAME, assert_fails, assert_ok, lines
from mailserver import ALICE
from smtpclient import build_message, new_marker

HELO = "client.test"
HEADER = re.compile(r"^(\d+) recipients? waiting in (\d+) messages?$")
LINE = re.compile(r"^(\d+) (\S+) attempts=(\d+) next=(now|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) error=(.+)$")
FLUSHED = re.compile(r"^(\d+) recipients? due now$")


def queue_lines(mail) -> list[re.Match]:
    """`queue list` parsed: the header line checked, one match of LINE per waiting recipient."""
    out = lines(assert_ok(mail.instance.run("queue", "list")).out)
    if out == ["queue is empty"]:
        return []
    header = HEADER.match(out[0])
    assert header, f"no header line: {out}"
    entries = [LINE.match(line) for line in out[1:]]
    assert all(entries), f"unexpected list line in {out}"
    assert int(header[1]) == len(entries), out
    assert int(header[2]) == len({m[1] for m in entries}), out
    return entries


def submit(mail, marker: str, recipients: list[str], service: str = "submissions") -> int:
    """Alice submits a message to `recipients` (remote: queued); returns its queue id."""
    message = build_message(marker, sender=ALICE, to=recipients[0])
    with mail.login(service, ALICE, helo=HELO) as conn:
        assert conn.send_mail(ALICE, recipients, message).is_(250), conn.log()
    queued = mail.db.queued(marker)
    assert [q.address for q in queued] == recipients, queued
    assert len({q.queue_id for q in queued}) == 1, queued
    return queued[0].queue_id


def test_empty_queue(run):
    assert lines(assert_ok(run("queue", "list")).out) == ["queue is empty"]
    assert lines(assert_ok(run("queue", "flush")).out) == ["0 recipients due now"]


def test_list_flush_drop_bounces_to_the_local_sender(mail):
    marker = new_marker()
    remotes = [f"one-{marker}@ext.test", f"two-{marker}@ext.test"]
    queue_id = submit(mail, marker, remotes)

    mine = [m for m in queue_lines(mail) if int(m[1]) == queue_id]
    assert [m[2] for m in mine] == remotes, "one line per waiting recipient, in order"
    for m in mine:
        assert int(m[3]) >= 0 and m[5], m[0]

    flushed = lines(assert_ok(mail.instance.run("queue", "flush")).out)
    assert len(flushed) == 1 and FLUSHED.match(flushed[0]), flushed
    assert int(FLUSHED.match(flushed[0])[1]) >= len(remotes), flushed
    assert all(m[4] == "now" for m in queue_lines(mail) if int(m[1]) == queue_id), "flushed: due now"

    dropped = assert_ok(mail.instance.run("queue", "drop", str(queue_id)))
    out = lines(dropped.out)
    assert out[0] == f"dropped queue entry {queue_id} (2 recipients still waiting)", dropped
    assert out[1] == f"bounce delivered to {ALICE}", dropped
    assert mail.db.queued(marker) == [], "the entry is gone"
    assert all(int(m[1]) != queue_id for m in queue_lines(mail))

    # The bounce: in Alice's INBOX, an RFC 3464 report in an RFC 6522 multipart/report.
    # (stored before the command returned: no waiting)
    stored = mail.db.messages(ALICE, "INBOX", marker)
    assert len(stored) == 1, stored
    assert stored[0].header("Return-Path") == ["<>"], "sent with the null reverse-path"
    report = email.message_from_bytes(stored[0].data, policy=email.policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["From"].addresses[0].addr_spec == f"MAILER-DAEMON@{HOSTNAME}"
    assert report["From"].addresses[0].display_name == "Mail Delivery System"
    assert report["To"].addresses[0].addr_spec == ALICE
    assert report["Subject"] == "Undelivered Mail Returned to Sender"
    assert report["Auto-Submitted"] == "auto-replied"
    assert report["Message-ID"] and report["Date"]
    human, status, original = report.get_payload()
    assert human.get_content_type() == "text/plain"
    assert "removed from the queue by the administrator" in human.get_content()
    assert status.get_content_type() == "message/delivery-status"
    per_message, *per_recipient = status.get_payload()
    assert per_message["Reporting-MTA"] == f"dns; {HOSTNAME}"
    assert per_message["Arrival-Date"]
    assert [r["Final-Recipient"] for r in per_recipient] == [f"rfc822; {r}" for r in remotes]
    for recipient in per_recipient:
        assert recipient["Action"] == "failed"
        assert recipient["Status"] == "5.0.0"
        assert "removed from the queue by the administrator" in recipient["Diagnostic-Code"]
    assert original.get_content_type() == "message/rfc822"
    returned = original.get_payload()[0]
    assert returned["X-Test-Id"] == marker, "the original message comes back"


def test_drop_over_submission_port_587(mail):
    """The same through STARTTLS submission, one recipient: the singular forms."""
    marker = new_marker()
    queue_id = submit(mail, marker, [f"solo-{marker}@ext.test"], service="submission")
    out = lines(assert_ok(mail.instance.run("queue", "drop", str(queue_id))).out)
    assert out == [f"dropped queue entry {queue_id} (1 recipient still waiting)", f"bounce delivered to {ALICE}"]
    assert len(mail.db.messages(ALICE, "INBOX", marker)) == 1


def test_drop_unknown_or_invalid_id(mail):
    assert_fails(mail.instance.run("queue", "drop", "987654321"), 1, "987654321")
    assert_fails(mail.instance.run("queue", "drop", "not-an-id"), 2, "not-an-id")
    assert_fails(mail.instance.run("queue", "drop", "0"), 2, "0")
