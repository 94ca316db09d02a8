"""Outbound delivery by the queue scheduler of `sealpost serve` (RFC 5321 §4.5.4, §5.1): a
sending instance A (test.example, Alice) resolves MX records through a test DNS server
(dnsserver.py) and delivers to a receiving instance B (remote.example) over STARTTLS, DKIM-signed
(Ed25519 + RSA, checked with dkimpy); 5xx replies, null MX and NXDOMAIN come back as RFC 3464
bounces; temporary failures stay queued and leave after `sealpost queue flush`; a kill -9 in the
middle of a delivery loses nothing; several messages to one domain share a connection.

A's `[outbound] remote_port` is B's smtp port, so "the MX host" is whatever listens on that
port at 127.0.0.1: B, nothing (connection refused), or a fake SMTP server (outbound_support.FakeSmtp).
"""

from __future__ import annotations

import email
import email.policy
import re
import time

import dkim  # dkimpy (+ pynacl for Ed25519, RFC 8463): installed by scripts/test
import nacl  # noqa: F401 - dkimpy verifies Ed25519 signatures with it
import pytest
from dnslib import DNSRecord

from dnsserver import DnsServer
from outbound_support import FakeSmtp, accepts, queue_entries, wait_until
from harness import HOSTNAME, Instance, assert_ok, lines
from maildb import MailDb, Stored, parse_headers
from mailserver import (ALICE, BOB, SMTP_SERVICES, MailServer, configure, provision,
                        stop_mail_server)
from smtpclient import build_message, new_marker

HELO = "client.test"
REMOTE_DOMAIN = "remote.example"
REMOTE_HOST = "mx.remote.example"  # B's hostname and the MX of remote.example
REMOTE_USER = f"bob@{REMOTE_DOMAIN}"
NULL_MX_DOMAIN = "nullmx.example"
NO_SUCH_DOMAIN = "nxdomain-test.example"  # under the served zone "example", no records: NXDOMAIN

# How long a message may take to reach B (the scheduler is woken at once on queueing; after a
# `queue flush` from the CLI it polls the store every 5 s).
ARRIVE_TIMEOUT = 20.0



# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dns():
    """Authoritative for everything under `example`: remote.example's MX, a null MX, the DKIM
    keys of test.example (added by the `sender` fixture); other names are NXDOMAIN."""
    server = DnsServer({
        REMOTE_DOMAIN: {"MX": [(10, REMOTE_HOST)]},
        REMOTE_HOST: {"A": ["127.0.0.1"]},
        NULL_MX_DOMAIN: {"MX": [(0, ".")]},
    }, zones=["example"])
    with server:
        yield server


class Remote(MailServer):
    """The receiving instance B; may be stopped and started again on the same ports."""

    def stop(self) -> None:
        if self.server.alive():
            self.server.assert_graceful_stop()
        self.wait_port_free()

    def start(self) -> None:
        if not self.server.alive():
            self.server = self.instance.serve()

    def wait_port_free(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while accepts(self.ports["smtp"]) and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture(scope="module")
def remote(sealpost_bin, certs, tmp_path_factory) -> Remote:
    """B: hostname mx.remote.example, the domain remote.example with one user; debug logs
    (a line per accepted connection)."""
    instance = Instance(sealpost_bin, tmp_path_factory.mktemp("remote"), certs, services=SMTP_SERVICES)
    instance.config.hostname = REMOTE_HOST
    instance.config.log = {"level": "debug"}
    settings = configure(instance)
    assert_ok(instance.run("domain", "add", REMOTE_DOMAIN))
    assert_ok(instance.run("user", "add", REMOTE_USER, "--password-stdin", input="remote-Secret-pass-9\n"))
    server = Remote(instance, instance.serve(), settings)
    yield server
    if server.server.alive():
        problem = stop_mail_server(server)
        if problem:
            pytest.fail(problem)


@pytest.fixture(scope="module")
def sender(sealpost_bin, certs, tmp_path_factory, dns, remote) -> MailServer:
    """A: the provisioned test.example server, its DNS the test server, remote MX hosts on B's
    smtp port, one connection per destination domain at a time (so that messages waiting
    together share it). Its DKIM public keys are published in the test DNS server."""
    instance = Instance(sealpost_bin, tmp_path_factory.mktemp("sender"), certs, services=SMTP_SERVICES)
    settings = configure(instance)
    instance.config.extra["dns"] = f'nameservers = ["{dns.nameserver}"]'
    instance.config.extra["outbound"] = (f"remote_port = {remote.ports['smtp']}\n"
                                         "max_connections_per_domain = 1")
    instance.write_config()
    provision(instance)
    publish_dkim_keys(instance, dns, "test.example")
    server = MailServer(instance, instance.serve(), settings)
    yield server
    problem = stop_mail_server(server)
    if problem:
        pytest.fail(problem)


@pytest.fixture(autouse=True)
def remote_running(remote):
    """Every test starts with B running (a test may stop it, or the one before may have)."""
    remote.start()
    yield


def publish_dkim_keys(instance: Instance, dns: DnsServer, domain: str) -> None:
    """The `_domainkey` TXT records of `sealpost domain records DOMAIN`, served by `dns`."""
    out = assert_ok(instance.run("domain", "records", domain)).out
    published = 0
    for line in out.splitlines():
        m = re.match(r"^(\S+)\s+\d+\s+IN\s+TXT\s+(.*)$", line.strip())
        if m and "._domainkey." in m[1]:
            dns.set(m[1], "TXT", [re.findall(r'"((?:[^"\\]|\\.)*)"', m[2])])
            published += 1
    assert published >= 2, f"expected DKIM records for two keys:\n{out}"


# --- helpers -----------------------------------------------------------------------------------


def submit(mail: MailServer, marker: str, recipients: list[str], sender: str = ALICE,
           service: str = "submissions") -> bytes:
    """`sender` submits a message carrying `marker` to `recipients`; returns the bytes sent."""
    message = build_message(marker, sender=sender, to=recipients[0])
    with mail.login(service, sender, helo=HELO) as conn:
        reply = conn.send_mail(sender, recipients, message)
        assert reply.is_(250), f"{reply}\n{conn.log()}"
        conn.quit()
    return message




def wait_messages(db: MailDb, address: str, marker: str, timeout: float = ARRIVE_TIMEOUT,
                  count: int = 1) -> list[Stored]:
    """The copies of `marker` in the INBOX of `address` once there are `count` (or at the timeout)."""

    def enough():
        found = db.messages(address, "INBOX", marker)
        return found if len(found) >= count else None

    return wait_until(enough, timeout) or db.messages(address, "INBOX", marker)


def arrived(remote: Remote, sender: MailServer, marker: str, count: int = 1) -> list[Stored]:
    """B's copies of the message (at least `count`, waiting up to ARRIVE_TIMEOUT); explains a miss."""
    found = wait_messages(remote.db, REMOTE_USER, marker, count=count)
    assert len(found) >= count, (
        f"message {marker} not delivered to {REMOTE_USER} on B within {ARRIVE_TIMEOUT}s\n"
        f"A's queue: {assert_ok(sender.instance.run('queue', 'list')).out}\n"
        f"A's log (tail):\n{sender.log()[-3000:]}\nB's log (tail):\n{remote.log()[-2000:]}")
    return found


def wait_queue_empty_of(sender: MailServer, marker: str, timeout: float = 5.0) -> None:
    """The entry of `marker` left A's queue (its outcome is recorded just after the remote 250)."""
    left = wait_until(lambda: not sender.db.queued(marker), timeout)
    assert left, f"still queued on A: {sender.db.queued(marker)}\n{sender.instance.run('queue', 'list').out}"


def bounce_of(sender: MailServer, marker: str) -> tuple[Stored, email.message.EmailMessage]:
    """The bounce of `marker` in Alice's INBOX on A (waiting for it), parsed."""
    found = wait_messages(sender.db, ALICE, marker)
    assert len(found) == 1, (
        f"expected one bounce in {ALICE}'s INBOX, got {len(found)}\n"
        f"A's queue: {sender.instance.run('queue', 'list').out}\nA's log (tail):\n{sender.log()[-3000:]}")
    stored = found[0]
    report = email.message_from_bytes(stored.data, policy=email.policy.default)
    return stored, report


def check_failure_report(stored: Stored, report, recipient: str, marker: str) -> email.message.Message:
    """An RFC 3464 failure report (in an RFC 6522 multipart/report) for `recipient` to the local
    sender, with the null Return-Path; returns its per-recipient block."""
    assert stored.header("Return-Path") == ["<>"], f"a bounce is sent with the null reverse-path: {stored.data[:400]!r}"
    assert report.get_content_type() == "multipart/report", report.get_content_type()
    assert report.get_param("report-type") == "delivery-status"
    assert report["To"].addresses[0].addr_spec == ALICE
    parts = report.get_payload()
    assert len(parts) >= 2, [p.get_content_type() for p in parts]
    status = parts[1]
    assert status.get_content_type() == "message/delivery-status"
    per_message, *per_recipient = status.get_payload()
    assert per_message["Reporting-MTA"] == f"dns; {HOSTNAME}"
    assert [r["Final-Recipient"] for r in per_recipient] == [f"rfc822; {recipient}"], per_recipient
    block = per_recipient[0]
    assert block["Action"] == "failed", str(block)
    if len(parts) > 2:  # the returned message (or its headers)
        assert marker in parts[2].as_string(), "the returned original carries the marker"
    return block


def dns_txt(dns: DnsServer):
    """A dkimpy `dnsfunc` asking the test DNS server (over UDP, as a resolver would)."""

    def lookup(name, timeout=5):
        qname = name.decode() if isinstance(name, bytes) else name
        reply = DNSRecord.parse(DNSRecord.question(qname, "TXT").send("127.0.0.1", dns.port, timeout=timeout))
        for rr in reply.rr:
            if rr.rtype == 16:  # TXT
                return b"".join(rr.rdata.data)
        return None

    return lookup


def dkim_tags(value: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (t.partition("=") for t in re.sub(r"\s+", "", value).split(";")) if k}


# --- a. delivered over STARTTLS, DKIM-signed ---------------------------------------------------------


def test_delivered_over_starttls_and_dkim_signed(sender, remote, dns):
    marker = new_marker()
    original = submit(sender, marker, [REMOTE_USER])
    copies = arrived(remote, sender, marker)
    assert len(copies) == 1, copies
    data = copies[0].data
    assert data.endswith(original.split(b"\r\n\r\n", 1)[1]), "the body arrives unchanged"

    headers = parse_headers(data)
    names = [name.lower() for name, _ in headers]
    assert names[0] == "return-path" and headers[0][1] == f"<{ALICE}>", headers[:3]
    assert names.count("return-path") == 1, f"exactly one Return-Path (B's): {headers}"
    received = [v for k, v in headers if k.lower() == "received"]
    assert received, headers
    by_b = received[0]
    assert by_b.startswith(f"from {HOSTNAME} "), f"A says its hostname in EHLO: {by_b}"
    assert re.search(rf"\bby {re.escape(REMOTE_HOST)}\b", by_b), by_b
    assert re.search(r"\bwith ESMTPS\b", by_b), f"TLS (STARTTLS) was not used: {by_b}"
    assert re.search(r"TLS\s*v?1[._]?[23]", by_b, re.I), f"no TLS version named: {by_b}"

    signatures = [v for k, v in headers if k.lower() == "dkim-signature"]
    assert len(signatures) == 2, f"expected an Ed25519 and an RSA signature: {signatures}"
    tags = [dkim_tags(s) for s in signatures]
    assert sorted(t.get("a") for t in tags) == ["ed25519-sha256", "rsa-sha256"], tags
    assert all(t.get("d") == "test.example" for t in tags), tags
    # DKIM-Signature fields come after B's trace fields and before the message's own headers.
    first_sig = names.index("dkim-signature")
    assert names.index("from") > first_sig, names

    checker = dkim.DKIM(data)
    for idx in range(2):
        try:
            ok = checker.verify(idx=idx, dnsfunc=dns_txt(dns))
        except dkim.DKIMException as error:
            ok = f"exception: {error}"
        assert ok is True, f"signature {idx} ({tags[idx].get('a')}) does not verify: {ok}\n{data[:1500]!r}"

    wait_queue_empty_of(sender, marker)
    assert lines(assert_ok(sender.instance.run("queue", "list")).out) == ["queue is empty"]


def test_mixed_local_and_remote_recipients(sender, remote):
    """One submission to Bob (local on A) and B's user: Bob's copy keeps A's Return-Path; the
    remote copy has only B's (A's local Return-Path is not sent along, RFC 5321 §4.4)."""
    marker = new_marker()
    submit(sender, marker, [BOB, REMOTE_USER])
    local = wait_messages(sender.db, BOB, marker, timeout=5)
    assert len(local) == 1, local
    assert local[0].data.startswith(f"Return-Path: <{ALICE}>\r\n".encode()), local[0].data[:200]

    copies = arrived(remote, sender, marker)
    assert len(copies) == 1, copies
    headers = parse_headers(copies[0].data)
    return_paths = [v for k, v in headers if k.lower() == "return-path"]
    assert headers[0][0].lower() == "return-path", headers[:3]
    assert return_paths == [f"<{ALICE}>"], f"exactly one Return-Path, B's: {return_paths}"
    # Trace fields, newest first (RFC 5321 §4.4): B's Received, then A's from the submission.
    received = [v for k, v in headers if k.lower() == "received"]
    assert len(received) == 2, received
    assert received[0].startswith(f"from {HOSTNAME} ") and f"by {REMOTE_HOST}" in received[0], received
    assert received[1].startswith(f"from {HELO} ") and f"by {HOSTNAME}" in received[1], received
    assert "ESMTPSA" in received[1], f"A's Received of the authenticated submission: {received[1]}"
    # B's Return-Path precedes all of them: A's local Return-Path did not travel.
    names = [k.lower() for k, _ in headers]
    assert names.index("return-path") < names.index("received")
    wait_queue_empty_of(sender, marker)


# --- b. c. bounces ---------------------------------------------------------------------------------


def test_remote_5xx_bounces_to_the_sender(sender, remote):
    marker = new_marker()
    recipient = f"nosuchuser-{marker}@{REMOTE_DOMAIN}"
    submit(sender, marker, [recipient])
    stored, report = bounce_of(sender, marker)
    block = check_failure_report(stored, report, recipient, marker)
    assert block["Status"] == "5.1.1", f"B refuses an unknown user with 550 5.1.1:\n{block}"
    diagnostic = block["Diagnostic-Code"] or ""
    assert re.match(r"(?i)smtp;\s*550 5\.1\.1 ", diagnostic), f"B's reply is quoted:\n{block}"
    wait_queue_empty_of(sender, marker)
    assert remote.db.find(marker) == [], "nothing stored on B"
    # RFC 3464 §2.3.5: the MTA that gave the reply, as `dns; HOST`.
    assert (block["Remote-MTA"] or "").lower() == f"dns; {REMOTE_HOST}", (
        f"Remote-MTA must name the MX host that refused:\n{block}")


@pytest.mark.parametrize("domain, status", [(NULL_MX_DOMAIN, "5.1.10"), (NO_SUCH_DOMAIN, "5.1.2")],
                         ids=["null-mx", "nxdomain"])
def test_undeliverable_domain_bounces(sender, domain, status):
    """RFC 7505 §3: a null MX fails at once (5.1.10); a domain that does not exist, 5.1.2."""
    marker = new_marker()
    recipient = f"someone-{marker}@{domain}"
    submit(sender, marker, [recipient])
    stored, report = bounce_of(sender, marker)
    block = check_failure_report(stored, report, recipient, marker)
    assert block["Status"] == status, str(block)
    wait_queue_empty_of(sender, marker)


# --- d. retry --------------------------------------------------------------------------------------


def test_deferred_while_remote_down_then_delivered_after_flush(sender, remote):
    remote.stop()
    marker = new_marker()
    submit(sender, marker, [REMOTE_USER])
    queue_id = sender.db.queued(marker)[0].queue_id

    def attempted():
        mine = [m for m in queue_entries(sender) if int(m[1]) == queue_id]
        return mine if mine and int(mine[0][3]) >= 1 else None

    mine = wait_until(attempted, 15)
    assert mine, f"no failed attempt recorded: {sender.instance.run('queue', 'list').out}\n{sender.log()[-2000:]}"
    assert mine[0][2] == REMOTE_USER
    assert mine[0][4] != "now", f"a temporary failure is retried later: {mine[0][0]}"
    assert mine[0][5] != "-" and mine[0][5].startswith("4."), f"the error is shown: {mine[0][0]}"
    assert [q.status for q in sender.db.queued(marker)] == ["queued"]

    remote.start()
    out = lines(assert_ok(sender.instance.run("queue", "flush")).out)
    assert re.match(r"^[1-9]\d* recipients? due now$", out[0]), out
    copies = arrived(remote, sender, marker)
    assert len(copies) == 1, copies
    wait_queue_empty_of(sender, marker)
    assert queue_entries(sender) == []


def test_remote_4xx_is_deferred_with_the_reply_shown(sender, remote):
    """A 451 at RCPT: the recipient stays queued for a retry, `queue list` shows the reply and
    the host that gave it; `queue drop` then bounces it."""
    remote.stop()
    fake = FakeSmtp(remote.ports["smtp"], rcpt_reply=b"451 4.3.0 mailbox busy, try later")
    try:
        marker = new_marker()
        submit(sender, marker, [REMOTE_USER])
        queue_id = sender.db.queued(marker)[0].queue_id

        def attempted():
            mine = [m for m in queue_entries(sender) if int(m[1]) == queue_id]
            return mine if mine and int(mine[0][3]) >= 1 else None

        mine = wait_until(attempted, 15)
        assert mine, f"no attempt recorded: {sender.instance.run('queue', 'list').out}\n{sender.log()[-2000:]}"
        assert fake.connections >= 1 and fake.messages == [], "refused at RCPT: no data sent"
    finally:
        fake.stop()
    line = mine[0]
    assert line[4] != "now", f"retried later, not at once: {line[0]}"
    assert "451" in line[5] and "4.3.0" in line[5] and "mailbox busy, try later" in line[5], line[0]
    out = lines(assert_ok(sender.instance.run("queue", "drop", str(queue_id))).out)
    assert out[-1] == f"bounce delivered to {ALICE}", out
    assert sender.db.queued(marker) == []
    # The reply is attributed to the MX host that gave it (as `queue list` documents).
    assert REMOTE_HOST in line[5], f"queue list does not name the host that replied: {line[0]}"


# --- e. a crash in the middle of a delivery ------------------------------------------------------------


def test_kill_during_delivery_loses_nothing(sender, remote):
    """kill -9 while the remote host holds the data without answering: after the restart the
    message is delivered (at least once; RFC 5321 §6.1 prefers a duplicate to a loss)."""
    remote.stop()
    marker = new_marker()
    fake = FakeSmtp(remote.ports["smtp"], hang_after_data=True)
    try:
        submit(sender, marker, [REMOTE_USER])
        assert fake.got_data.wait(15), (
            f"A never sent the data to the fake MX (connections: {fake.connections}, errors: {fake.errors})\n"
            f"{sender.log()[-2000:]}")
        assert marker.encode() in fake.messages[-1]
        sender.server.kill()  # SIGKILL, mid-transaction
        after_kill = [q.status for q in sender.db.queued(marker)]
    finally:
        sender.server.kill()  # (when an assertion above failed: A restarts all the same)
        fake.stop()
        remote.start()
        sender.server = sender.instance.serve()
    assert after_kill == ["queued"], "the recipient is still queued after the kill"
    assert_ok(sender.instance.run("queue", "flush"))
    copies = arrived(remote, sender, marker)
    assert len(copies) >= 1
    wait_queue_empty_of(sender, marker)


# --- f. several messages over one connection -------------------------------------------------------------


def test_waiting_messages_share_a_connection(sender, remote):
    """Five messages due together for one domain go over one connection (A allows one per
    domain here), not five: B's log names the connection of each message it accepts."""
    remote.stop()
    markers = [new_marker() for _ in range(5)]
    for marker in markers:
        submit(sender, marker, [REMOTE_USER])
    ids = {sender.db.queued(marker)[0].queue_id for marker in markers}
    # Each is tried at once (connection refused) and waits for its retry.
    tried = wait_until(lambda: (lambda e: len(e) == len(ids) and all(int(m[3]) >= 1 for m in e))(
        [m for m in queue_entries(sender) if int(m[1]) in ids]), 15)
    assert tried, sender.instance.run("queue", "list").out

    remote.start()  # a fresh log: only these messages arrive while it runs
    assert_ok(sender.instance.run("queue", "flush"))
    for marker in markers:
        assert len(arrived(remote, sender, marker)) == 1, marker
    for marker in markers:
        wait_queue_empty_of(sender, marker)
    accepted = re.findall(r'conn\{id=(\d+) [^}]*service="smtp"[^}]*\}: \S+: message accepted', remote.log())
    assert len(accepted) == len(markers), f"B's 'message accepted' lines: {accepted}\n{remote.log()[-3000:]}"
    connections = set(accepted)
    assert len(connections) < len(markers), (
        f"{len(connections)} connections for {len(markers)} messages: no connection reuse\n{remote.log()[-3000:]}")
