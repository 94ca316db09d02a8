"""Relaying and spoofing (SECURITY-TESTS.md §4.4): no open relay on port 25 (loopback is not
trusted), submission needs AUTH and may only use the user's own addresses, remote recipients of
authenticated users are queued, and submitted messages get Message-ID and Date."""

from __future__ import annotations

import email.utils
import re
import time

import pytest

from harness import HOSTNAME
from maildb import parse_headers
from mailserver import ALICE, BOB, ERIN, INFO, SECOND, TEAM
from smtpclient import build_message, new_marker

HELO = "client.test"
RELAY_TARGET = "relaytest@ext.test"
IDN_HOMOGRAPH = "t\u0435st.example".encode("idna").decode()  # Cyrillic "е" in test.example


@pytest.fixture(autouse=True)
def never_queues_relay_tests(mail):
    """After every test here: no relay-test address ever reached the outbound queue."""
    yield
    queued = mail.db.queued_addresses("%relaytest%")
    assert queued == [], f"relay attempt queued: {queued}"


# --- port 25: no relaying (RS-01..RS-07, RS-13) ------------------------------------------------------


@pytest.mark.parametrize("sender", ["antispam@ext.test", "", f"antispam@{HOSTNAME}", "antispam@[127.0.0.1]", ALICE],
                         ids=["foreign", "null", "own-hostname", "own-ip-literal", "local-user"])
def test_relay_denied(mail, sender):
    """RS-01: a remote recipient on port 25 is refused whatever the sender claims to be."""
    with mail.session("smtp", helo=HELO) as conn:
        reply = conn.cmd(f"MAIL FROM:<{sender}>")
        if reply.code != 250:  # refusing a sender that claims to be us is a policy of its own: fine
            assert reply.code // 100 == 5 and reply.enhanced and reply.enhanced.startswith("5.7."), str(reply)
            return
        conn.expect(f"RCPT TO:<{RELAY_TARGET}>", 554, "5.7.1")


@pytest.mark.parametrize("helo", [HOSTNAME, "[127.0.0.1]", "localhost", "test.example"])
def test_helo_impersonation_grants_nothing(mail, helo):
    """RS-13: our own name, IP literal or domain in EHLO does not make the client trusted."""
    with mail.session("smtp", helo=helo) as conn:
        conn.expect("MAIL FROM:<antispam@ext.test>", 250)
        conn.expect(f"RCPT TO:<{RELAY_TARGET}>", 554, "5.7.1")


def test_tls_grants_no_relaying(mail):
    with mail.session("smtp", helo=HELO, starttls=True) as conn:
        conn.expect("MAIL FROM:<antispam@ext.test>", 250)
        conn.expect(f"RCPT TO:<{RELAY_TARGET}>", 554, "5.7.1")


# RS-02..RS-06 (nmap smtp-open-relay forms adapted to test.example): refused, never 250. The
# reply may be "relay denied" (554 5.7.1), "user unknown" (550 5.1.1, when the address is read
# as a local part of ours) or a syntax error (501/553) -- any of these is safe.
TRICKS = {
    "percent-ip": "relaytest%ext.test@[127.0.0.1]",
    "percent-local": "relaytest%ext.test@test.example",
    "source-route-ip": "@[127.0.0.1]:relaytest@ext.test",
    "source-route-host": f"@{HOSTNAME}:relaytest@ext.test",
    "bang": "ext.test!relaytest",
    "bang-ip": "ext.test!relaytest@[127.0.0.1]",
    "bang-local": "ext.test!relaytest@test.example",
    "quoted": '"relaytest@ext.test"',
    "quoted-percent": '"relaytest%ext.test"',
    "double-at-ip": "relaytest@ext.test@[127.0.0.1]",
    "quoted-at-ip": '"relaytest@ext.test"@[127.0.0.1]',
    "double-at-local": "relaytest@ext.test@test.example",
    "foreign-ip-literal": "relaytest@[127.0.0.2]",
    "ipv6-literal": "relaytest@[IPv6:::1]",
    "trailing-dot": "relaytest@ext.test.",
    "local-prefix": "relaytest@TEST.EXAMPLE.ext.test",
}
# Those that are syntactically valid (RFC 5321 §4.1.2) and plainly name a foreign domain: relay
# denied, exactly. (`@[127.0.0.1]:x@y` and `x@ext.test.` are syntax errors: an A-d-l names a
# Domain, never an address literal, and a Domain has no trailing dot.)
FOREIGN = {"source-route-host", "local-prefix", "foreign-ip-literal"}


@pytest.mark.parametrize("trick", TRICKS)
def test_relay_tricks_refused(mail, trick):
    with mail.session("smtp", helo=HELO) as conn:
        conn.expect("MAIL FROM:<antispam@ext.test>", 250)
        reply = conn.cmd(f"RCPT TO:<{TRICKS[trick]}>")
        assert reply.code in (501, 550, 553, 554) and reply.enhanced, f"RCPT TO:<{TRICKS[trick]}> -> {reply}"
        if trick in FOREIGN:
            assert reply.is_(554, "5.7.1"), f"RCPT TO:<{TRICKS[trick]}> -> {reply}, expected 554 5.7.1"


def test_relay_nul_in_domain(mail):
    with mail.session("smtp", helo=HELO) as conn:
        conn.expect("MAIL FROM:<antispam@ext.test>", 250)
        reply = conn.cmd(b"RCPT TO:<relaytest@test.example\x00.ext.test>")
        assert reply.code in (500, 501, 550, 553, 554) and reply.enhanced, str(reply)


@pytest.mark.parametrize("recipient", [f"alice@{IDN_HOMOGRAPH}", "alice@test.example.ext.test",
                                       "alice@sub.test.example", "alice@example"],
                         ids=["idn-homograph", "suffix", "subdomain", "parent"])
def test_local_domain_match_is_exact(mail, recipient):
    """RS-07: look-alike, suffix and sub-/parent domains are foreign."""
    with mail.session("smtp", helo=HELO) as conn:
        conn.expect("MAIL FROM:<antispam@ext.test>", 250)
        conn.expect(f"RCPT TO:<{recipient}>", 554, "5.7.1")


def test_local_domain_with_trailing_dot(mail):
    """RS-07: `alice@test.example.` is either alice (delivered) or refused -- never relayed."""
    marker = new_marker()
    with mail.session("smtp", helo=HELO) as conn:
        conn.expect("MAIL FROM:<antispam@ext.test>", 250)
        reply = conn.cmd(f"RCPT TO:<{ALICE}.>")
        if reply.code != 250:
            assert reply.code // 100 == 5 and reply.enhanced, str(reply)
            return
        assert conn.data(build_message(marker, sender="antispam@ext.test")).is_(250), conn.log()
    assert [s.address for s in mail.db.wait_for(marker)] == [ALICE]
    assert mail.db.queued(marker) == []


# --- envelope never reaches a shell (RS-14) ----------------------------------------------------------


@pytest.mark.parametrize("line", [
    b"MAIL FROM:<;sleep 66;>",
    b"MAIL FROM:<`id`@ext.test>",
], ids=["opensmtpd-cve-2020-7247", "backticks"])
def test_shell_metacharacters_in_sender(mail, line):
    with mail.session("smtp", helo=HELO) as conn:
        started = time.monotonic()
        reply = conn.cmd(line)
        assert time.monotonic() - started < 5, "slow reply to a shell-injection sender"
        # `id`@ext.test is a valid (if odd) address: accepting it is fine; ;sleep 66; is not an address.
        if line.startswith(b"MAIL FROM:<;"):
            assert reply.code in (501, 553) and reply.enhanced, str(reply)
        else:
            assert reply.code == 250 or reply.code // 100 == 5, str(reply)


@pytest.mark.parametrize("recipient", [
    b"${run{\\x2fbin\\x2fsh\t-c\t\\x22id\\x22}}@test.example",
    b"alice+$(id)@test.example",
    b'"|/bin/sh -c id"@test.example',
    b"alice+`id`@test.example",
], ids=["exim-cve-2019-10149", "dollar-paren", "quoted-pipe", "backticks-tag"])
def test_shell_metacharacters_in_recipient(mail, recipient):
    """RS-14: syntax error or no such user; never a delay, never delivered anywhere odd."""
    with mail.session("smtp", helo=HELO) as conn:
        conn.expect("MAIL FROM:<antispam@ext.test>", 250)
        started = time.monotonic()
        reply = conn.cmd(b"RCPT TO:<" + recipient + b">")
        assert time.monotonic() - started < 5
        if recipient == b"alice+`id`@test.example":
            # A valid sub-address of alice: delivering it to alice is correct.
            assert reply.code == 250 or reply.code // 100 == 5, str(reply)
        else:
            # (500 5.5.2 for the control characters of the Exim payload is a syntax error too.)
            assert reply.code in (500, 501, 550, 553) and reply.enhanced, f"RCPT TO:<{recipient!r}> -> {reply}"


# --- DSN and hop count on port 25 (RS-16, RS-18) -----------------------------------------------------


def test_dsn_parameters_not_accepted_unless_offered(mail):
    """RS-16: port 25 either does not offer DSN, or (not checked here) ignores NOTIFY=SUCCESS."""
    with mail.session("smtp", helo=HELO) as conn:
        if "DSN" in conn.caps:
            pytest.skip("DSN offered on port 25")
        reply = conn.cmd("MAIL FROM:<victim@ext.test> RET=FULL ENVID=x")
        assert reply.code in (501, 555) and reply.enhanced == "5.5.4", str(reply)
        conn.expect("MAIL FROM:<victim@ext.test>", 250)
        reply = conn.cmd(f"RCPT TO:<{ALICE}> NOTIFY=SUCCESS,DELAY,FAILURE")
        assert reply.code in (501, 555) and reply.enhanced == "5.5.4", str(reply)


def _with_received(marker: str, hops: int) -> bytes:
    trace = b"".join(f"Received: from x{i}.ext.test by y.ext.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n".encode()
                     for i in range(hops))
    return trace + build_message(marker)


def test_mail_loop_refused(mail):
    """RS-18 / RFC 5321 §6.3: 101 Received headers: 554 5.4.6, nothing stored."""
    marker = new_marker()
    with mail.session("smtp", helo=HELO) as conn:
        conn.expect("MAIL FROM:<loop@ext.test>", 250)
        conn.expect(f"RCPT TO:<{ALICE}>", 250)
        reply = conn.data(_with_received(marker, 101))
        assert reply.code in (550, 554) and reply.enhanced == "5.4.6", f"101 hops -> {reply}"
    assert mail.db.absent(marker) == []


def test_normal_hop_count_accepted(mail):
    marker = new_marker()
    with mail.session("smtp", helo=HELO) as conn:
        assert conn.send_mail("hops@ext.test", [ALICE], _with_received(marker, 20)).is_(250), conn.log()
    assert len(mail.db.wait_for(marker)) == 1


# --- PROXY / XCLIENT / XFORWARD (RS-12) --------------------------------------------------------------


def test_proxy_header_not_trusted(mail):
    marker = new_marker()
    with mail.connect("smtp") as conn:
        conn.send(b"PROXY TCP4 192.0.2.1 127.0.0.1 4444 25\r\n")
        reply = conn.reply()
        assert reply.code // 100 == 5 or reply.code == 421, str(reply)
        if reply.code == 421:
            return
        conn.ehlo(HELO)
        assert conn.send_mail("p@ext.test", [ALICE], build_message(marker)).is_(250), conn.log()
    stored = mail.db.wait_for(marker)
    assert len(stored) == 1
    received = [v for k, v in parse_headers(stored[0].data) if k.lower() == "received"][0]
    assert "192.0.2.1" not in received and "127.0.0.1" in received, received


@pytest.mark.parametrize("line", ["XCLIENT ADDR=127.0.0.1 LOGIN=alice@test.example", "XFORWARD ADDR=127.0.0.1"])
def test_xclient_xforward_refused(mail, line):
    with mail.session("smtp", helo=HELO) as conn:
        assert "XCLIENT" not in conn.caps and "XFORWARD" not in conn.caps, conn.log()
        reply = conn.cmd(line)
        assert reply.code in (500, 502, 550) and reply.enhanced and reply.enhanced.startswith("5."), str(reply)
        conn.expect("MAIL FROM:<x@ext.test>", 250)
        conn.expect(f"RCPT TO:<{RELAY_TARGET}>", 554, "5.7.1")


# --- submission without AUTH (RS-08, ST-06) ----------------------------------------------------------


@pytest.mark.parametrize("service, starttls", [("submission", False), ("submission", True), ("submissions", False)],
                         ids=["587-plaintext", "587-tls", "465"])
def test_submission_requires_auth(mail, service, starttls):
    marker = new_marker()
    with mail.session(service, helo=HELO, starttls=starttls) as conn:
        conn.expect(f"MAIL FROM:<{ALICE}>", 530, "5.7.0")
        reply = conn.cmd(f"RCPT TO:<{BOB}>")
        assert reply.code in (503, 530) and reply.enhanced, str(reply)
        reply = conn.cmd("DATA")
        assert reply.code in (503, 530, 554), str(reply)
        if reply.code == 354:  # never: but do not leave the session hanging
            conn.send(build_message(marker) + b".\r\n")
    assert mail.db.absent(marker) == []


# --- submission: sender ownership (RS-09, AU-11) -----------------------------------------------------

FOREIGN_SENDERS = [BOB, "BOB@test.example", '"bob"@test.example', "bob+x@test.example", "postmaster@test.example",
                   "ceo@ext.test", INFO, ERIN, f"anybody@{SECOND}", "alice@ext.test", "alice@sub.test.example"]
OWN_SENDERS = [ALICE, "alice+tag@test.example", TEAM, "team+x@test.example", "alice@TEST.EXAMPLE"]


@pytest.mark.parametrize("service", ["submissions", "submission"])
@pytest.mark.parametrize("sender", FOREIGN_SENDERS)
def test_sender_must_be_own_address(mail, service, sender):
    with mail.login(service, ALICE, helo=HELO) as conn:
        reply = conn.cmd(f"MAIL FROM:<{sender}>")
        assert reply.code in (550, 553) and reply.enhanced == "5.7.1", (
            f"alice: MAIL FROM:<{sender}> -> {reply}, expected 553 5.7.1 (or 550 5.7.1)")
        conn.expect(f"RCPT TO:<{BOB}>", 503, "5.5.1")


@pytest.mark.parametrize("service", ["submissions", "submission"])
def test_sender_own_addresses_allowed(mail, service):
    with mail.login(service, ALICE, helo=HELO) as conn:
        for sender in OWN_SENDERS:
            conn.expect(f"MAIL FROM:<{sender}>", 250, "2.1.0")
            conn.expect("RSET", 250)


def test_sender_check_survives_rset(mail):
    """AU-11: the authenticated identity stays for the session and RSET does not loosen the check."""
    with mail.login("submissions", ALICE, helo=HELO) as conn:
        conn.expect(f"MAIL FROM:<{ALICE}>", 250)
        conn.expect("RSET", 250)
        reply = conn.cmd(f"MAIL FROM:<{BOB}>")
        assert reply.code in (550, 553) and reply.enhanced == "5.7.1", str(reply)


# --- submission: From header (RS-10, Composition Kills) -----------------------------------------------

ALLOWED_FROM = {ALICE, TEAM}

# Variants that name another user as author: refused at the end of the data with 550 5.7.1
# (550 5.6.x accepted for MALFORMED ones: not exactly one From field, RFC 5322 §3.6).
MALFORMED = {"two-from", "space-before-colon"}
SPOOFED_FROM = {
    "other-user": b"From: bob@test.example\r\n",
    "two-from": b"From: alice@test.example\r\nFrom: bob@test.example\r\n",
    "space-before-colon": b"From :bob@test.example\r\n",
    "two-mailboxes": b"From: alice@test.example, bob@test.example\r\n",
    "display-name": b"From: Bob <bob@test.example>\r\n",
    "own-address-as-display-name": b'From: "alice@test.example" <bob@test.example>\r\n',
    "domain-case": b"From: <bob@TEST.EXAMPLE>\r\n",
    "remote": b"From: ceo@ext.test\r\n",
    "second-domain-alias": b"From: info@second.example\r\n",
}
# Variants whose real author address is alice's (or missing): accepted with alice as author, or refused.
UNCLEAR_FROM = {
    "other-address-in-display-name": b'From: "bob@test.example" <alice@test.example>\r\n',
    "encoded-word-display-name": b"From: =?utf-8?B?Ym9iQHRlc3QuZXhhbXBsZQ==?= <alice@test.example>\r\n",
    "folded-leading-space": b"Subject: x\r\n From: bob@test.example\r\n",
    "no-from": b"",
}
OWN_FROM = {
    "plain": b"From: alice@test.example\r\n",
    "display-name": b"From: Alice Example <alice@test.example>\r\n",
    "sub-address": b"From: <alice+news@test.example>\r\n",
    "alias": b"From: Team <team@test.example>\r\n",
}


def submit_with_from(mail, from_header: bytes, marker: str, remote: str):
    message = build_message(marker, from_header=from_header, to=BOB, subject=f"from-test {marker}")
    with mail.login("submissions", ALICE, helo=HELO) as conn:
        conn.expect(f"MAIL FROM:<{ALICE}>", 250)
        conn.expect(f"RCPT TO:<{BOB}>", 250)
        conn.expect(f"RCPT TO:<{remote}>", 250)
        return conn.data(message), message


@pytest.mark.parametrize("variant", SPOOFED_FROM)
def test_from_header_of_another_user_refused(mail, variant):
    marker = new_marker()
    reply, _ = submit_with_from(mail, SPOOFED_FROM[variant], marker, f"friend-{marker}@ext.test")
    malformed_ok = variant in MALFORMED and reply.code == 550 and (reply.enhanced or "").startswith("5.6.")
    assert reply.is_(550, "5.7.1") or malformed_ok, f"{SPOOFED_FROM[variant]!r} -> {reply}, expected 550 5.7.1"
    assert mail.db.absent(marker) == [], "refused message stored"
    assert mail.db.queued(marker) == [], "refused message queued"


def from_addresses(data: bytes) -> list[str]:
    values = [v for k, v in parse_headers(data) if k.strip().lower() == "from"]
    return [addr.lower() for _, addr in email.utils.getaddresses(values)]


@pytest.mark.parametrize("variant", UNCLEAR_FROM)
def test_from_header_ambiguous_forms(mail, variant):
    marker = new_marker()
    reply, _ = submit_with_from(mail, UNCLEAR_FROM[variant], marker, f"friend-{marker}@ext.test")
    if reply.code != 250:
        assert reply.is_(550, "5.7.1") or reply.code // 100 == 5, str(reply)
        assert mail.db.absent(marker) == []
        return
    stored = mail.db.wait_for(marker)
    assert [s.address for s in stored] == [BOB]
    authors = from_addresses(stored[0].data)
    assert authors and set(authors) <= ALLOWED_FROM, f"accepted with From {authors}: {stored[0].data[:600]!r}"


@pytest.mark.parametrize("variant", OWN_FROM)
def test_from_header_own_addresses_accepted(mail, variant):
    marker = new_marker()
    reply, message = submit_with_from(mail, OWN_FROM[variant], marker, f"friend-{marker}@ext.test")
    assert reply.is_(250), f"{OWN_FROM[variant]!r} -> {reply}"
    stored = mail.db.wait_for(marker)
    assert [s.address for s in stored] == [BOB]
    assert stored[0].data.endswith(message), "a complete submitted message was changed"


# --- submission: remote recipients are queued; Message-ID and Date are added --------------------------


@pytest.mark.parametrize("service", ["submissions", "submission"])
def test_remote_recipient_queued(mail, service):
    marker = new_marker()
    remote = f"friend-{marker}@ext.test"
    message = build_message(marker, sender=ALICE, to=remote)
    with mail.login(service, ALICE, helo=HELO) as conn:
        reply = conn.send_mail(ALICE, [remote], message)
        assert reply.is_(250), conn.log()
    queued = mail.db.queued(marker)
    assert [(q.address, q.sender, q.status) for q in queued] == [(remote, ALICE, "queued")], queued
    assert queued[0].data.endswith(message)
    assert mail.db.find(marker) == [], "a remote-only message landed in a local mailbox"


def test_local_and_remote_recipients_share_one_blob(mail):
    marker = new_marker()
    remotes = [f"one-{marker}@ext.test", f"two-{marker}@ext.test"]
    message = build_message(marker, sender=ALICE, to=BOB)
    with mail.login("submissions", ALICE, helo=HELO) as conn:
        assert conn.send_mail(ALICE, [BOB, *remotes, TEAM], message).is_(250), conn.log()
    local = mail.db.wait_for(marker, count=2)
    assert sorted(s.address for s in local) == [ALICE, BOB], local
    queued = mail.db.queued(marker)
    assert [q.address for q in queued] == remotes, queued
    assert len({s.blob_hash for s in local} | {q.blob_hash for q in queued}) == 1, "the message was stored more than once"


def test_message_id_and_date_added(mail):
    marker = new_marker()
    remote = f"friend-{marker}@ext.test"
    message = build_message(marker, sender=ALICE, to=BOB, date=False, message_id=False,
                            from_header=f"From: <{ALICE}>".encode())
    with mail.login("submissions", ALICE, helo=HELO) as conn:
        assert conn.send_mail(ALICE, [BOB], message).is_(250), conn.log()
        assert conn.send_mail(ALICE, [remote], message).is_(250), conn.log()
    stored = mail.db.wait_for(marker)
    queued = mail.db.queued(marker)
    assert len(stored) == 1 and len(queued) == 1, (stored, queued)
    for where, data in (("stored", stored[0].data), ("queued", queued[0].data)):
        fields = parse_headers(data)
        ids = [v for k, v in fields if k.lower() == "message-id"]
        dates = [v for k, v in fields if k.lower() == "date"]
        assert len(ids) == 1 and re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", ids[0]), f"{where}: Message-ID {ids}"
        assert len(dates) == 1 and email.utils.parsedate_to_datetime(dates[0]), f"{where}: Date {dates}"
        assert b"X-Test-Id: " + marker.encode() in data, f"{where}: original headers lost"
