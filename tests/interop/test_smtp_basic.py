"""SMTP on port 25 (RFC 5321): greeting, EHLO, sequencing, local delivery and trace headers,
parameters, and the SMTP resource limits of SECURITY-TESTS.md §4.10 (RL-01..RL-13)."""

from __future__ import annotations

import re
import socket
import time

import pytest

from harness import HOSTNAME
from maildb import check_trace_headers
from mailserver import ALICE, BOB, ERIN, INFO, SECOND, SMTP_SERVICES, TEAM, start_mail_server, stop_mail_server
from smtpclient import Smtp, SmtpClosed, build_message, new_marker, next_source

HELO = "client.test"
SENDER = "sender@ext.test"
CAPABILITIES_25 = ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "STARTTLS")

# The limits the `limited` server is configured with (where README documents the key).
MAX_RECIPIENTS = 3
MAX_SIZE = 100_000
MAX_CONN_PER_IP = 4


@pytest.fixture(scope="module")
def limited(sealpost_bin, certs, tmp_path_factory):
    server = start_mail_server(
        sealpost_bin, tmp_path_factory.mktemp("limited"), certs,
        smtp={"max_recipients": MAX_RECIPIENTS, "max_message_size": MAX_SIZE},
        limits={"max_connections_per_ip": MAX_CONN_PER_IP},
    )
    yield server
    problem = stop_mail_server(server)
    if problem:
        pytest.fail(problem)


def deliver(mail, recipients, *, sender=SENDER, helo=HELO, marker=None, **build) -> tuple[str, bytes]:
    """Send one message on port 25 to `recipients` (each must get 250); returns (marker, bytes sent)."""
    marker = marker or new_marker()
    message = build_message(marker, sender=sender, to=recipients[0], **build)
    with mail.session("smtp", helo=helo) as conn:
        reply = conn.send_mail(sender, recipients, message)
        assert reply.is_(250), f"end of data -> {reply}\n{conn.log()}"
        conn.quit()
    return marker, message


# --- greeting and EHLO -----------------------------------------------------------------------------


@pytest.mark.parametrize("service", SMTP_SERVICES)
def test_greeting(mail, service):
    with mail.connect(service) as conn:
        g = conn.greeting
        assert g.code == 220 and len(g.texts) == 1, conn.log()
        assert re.fullmatch(rf"{re.escape(HOSTNAME)} ESMTP sealpost\b.*", g.text), f"greeting {g}"


def test_ehlo_capabilities_port_25(mail):
    with mail.connect("smtp") as conn:
        reply = conn.ehlo(HELO)
        assert reply.texts[0].split()[0] == HOSTNAME, f"EHLO reply must start with our name: {reply}"
        missing = [c for c in CAPABILITIES_25 if c not in conn.caps]
        assert not missing, f"EHLO on 25 lacks {missing}:\n{reply}"
        assert "AUTH" not in conn.caps, f"AUTH offered on port 25:\n{reply}"
        size = conn.caps["SIZE"]
        assert len(size) == 1 and size[0].isdigit() and int(size[0]) > 0, f"SIZE needs a fixed limit: {size}"
        conn.starttls()
        reply = conn.ehlo(HELO)
        assert "STARTTLS" not in conn.caps, f"STARTTLS offered again inside TLS:\n{reply}"
        assert "AUTH" not in conn.caps, f"AUTH offered on port 25 (after STARTTLS):\n{reply}"
        missing = [c for c in CAPABILITIES_25 if c != "STARTTLS" and c not in conn.caps]
        assert not missing, f"EHLO inside TLS lacks {missing}:\n{reply}"


def test_size_advertises_configured_limit(limited):
    if "max_message_size" not in limited.settings:
        pytest.skip("README documents no max_message_size key")
    with limited.session("smtp") as conn:
        assert conn.caps.get("SIZE") == [str(MAX_SIZE)], conn.log()


def test_helo_then_mail_uses_smtp_protocol(mail):
    marker = new_marker()
    message = build_message(marker)
    with mail.connect("smtp") as conn:
        reply = conn.cmd(f"HELO {HELO}")
        assert reply.code == 250 and reply.texts[0].split()[0] == HOSTNAME, conn.log()
        assert conn.send_mail(SENDER, [ALICE], message).is_(250), conn.log()
    stored = mail.db.wait_for(marker)
    assert len(stored) == 1
    check_trace_headers(stored[0], message, sender=SENDER, helo=HELO, hostname=HOSTNAME, protocol="SMTP",
                        delivered_to=(ALICE,))


def test_enhanced_status_codes_on_every_reply(mail):
    """RFC 2034 §3 / RFC 3463: every reply but the greeting and the EHLO/HELO reply carries
    class.subject.detail of the same class as the reply (3xx replies have no RFC 3463 class)."""
    marker = new_marker()
    with mail.connect("smtp") as conn:
        conn.ehlo(HELO)
        replies = [conn.cmd(c) for c in ("NOOP", "RSET", "VRFY alice", "HELP", "EXPN team", "FOO",
                                         f"MAIL FROM:<{SENDER}>", "RCPT TO:<nosuchuser@test.example>",
                                         f"RCPT TO:<{ALICE}>", "MAIL FROM:<x@ext.test>")]
        replies.append(conn.data(build_message(marker)))
        replies += [conn.cmd("RCPT TO:<bob@test.example>"), conn.cmd("STARTTLS now")]
        replies.append(conn.cmd("QUIT"))
    bad = [str(r) for r in replies if r.code // 100 != 3 and (r.enhanced is None or r.enhanced[0] != str(r.code)[0])]
    assert not bad, "replies without a matching enhanced status code:\n" + "\n".join(bad)


def test_noop_rset_quit(mail):
    with mail.connect("smtp") as conn:
        conn.expect("NOOP", 250, "2.0.0")  # allowed before EHLO (RFC 5321 §4.1.4)
        conn.ehlo(HELO)
        conn.expect("RSET", 250, "2.0.0")
        conn.expect("NOOP", 250, "2.0.0")
        conn.expect("QUIT", 221, "2.0.0")
        closed, rest = conn.closed_within(3)
        assert closed and rest == b"", f"not closed after 221 (got {rest!r})"


# --- command sequencing (RFC 5321 §4.1.4, §3.3) ------------------------------------------------------


def test_mail_before_ehlo(mail):
    with mail.connect("smtp") as conn:
        conn.expect(f"MAIL FROM:<{SENDER}>", 503, "5.5.1")


def test_rcpt_before_mail(mail):
    with mail.session("smtp") as conn:
        conn.expect(f"RCPT TO:<{ALICE}>", 503, "5.5.1")


def test_data_without_recipient(mail):
    with mail.session("smtp") as conn:
        conn.expect("DATA", 503, "5.5.1")
        conn.expect(f"MAIL FROM:<{SENDER}>", 250)
        reply = conn.cmd("DATA")
        # RFC 5321 §3.3: 503 (out of sequence) or 554 (no valid recipients).
        assert reply.code in (503, 554) and reply.enhanced and reply.enhanced[0] == "5", conn.log()


def test_nested_mail(mail):
    with mail.session("smtp") as conn:
        conn.expect(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
        conn.expect("MAIL FROM:<other@ext.test>", 503, "5.5.1")


@pytest.mark.parametrize("reset", ["RSET", f"EHLO {HELO}"])
def test_rset_and_ehlo_clear_the_transaction(mail, reset):
    """RFC 5321 §4.1.1.5 / §4.1.4: RSET and a new EHLO abort the transaction."""
    with mail.session("smtp") as conn:
        conn.expect(f"MAIL FROM:<{SENDER}>", 250)
        conn.expect(f"RCPT TO:<{ALICE}>", 250)
        assert conn.cmd(reset).code == 250, conn.log()
        conn.expect(f"RCPT TO:<{ALICE}>", 503, "5.5.1")
        conn.expect("DATA", 503, "5.5.1")


# --- local delivery ----------------------------------------------------------------------------------


def test_delivery_to_local_user_with_trace_headers(mail):
    marker, message = deliver(mail, [ALICE])
    stored = mail.db.wait_for(marker)
    assert [(s.address, s.mailbox) for s in stored] == [(ALICE, "INBOX")], stored
    assert stored[0].size == len(stored[0].data), "messages.size is not the stored size"
    check_trace_headers(stored[0], message, sender=SENDER, helo=HELO, hostname=HOSTNAME, protocol="ESMTP",
                        delivered_to=(ALICE,))


def test_plus_tag_delivers_to_user(mail):
    marker, message = deliver(mail, ["alice+news@test.example"])
    stored = mail.db.wait_for(marker)
    assert [(s.address, s.mailbox) for s in stored] == [(ALICE, "INBOX")], stored
    check_trace_headers(stored[0], message, sender=SENDER, helo=HELO, hostname=HOSTNAME, protocol="ESMTP",
                        delivered_to=(ALICE, "alice+news@test.example"))


def test_domain_is_case_insensitive(mail):
    """RS-07 / RFC 5321 §2.4: the domain matches case-insensitively."""
    marker, _ = deliver(mail, ["alice@TEST.Example"])
    assert [s.address for s in mail.db.wait_for(marker)] == [ALICE]


def test_alias_delivers_to_every_target_in_one_blob(mail):
    marker, message = deliver(mail, [TEAM])
    stored = mail.db.wait_for(marker, count=2)
    assert sorted(s.address for s in stored) == [ALICE, BOB], stored
    assert len({s.blob_hash for s in stored}) == 1, "alias targets got different blobs"
    check_trace_headers(stored[0], message, sender=SENDER, helo=HELO, hostname=HOSTNAME, protocol="ESMTP")


def test_second_domain_alias(mail):
    marker, _ = deliver(mail, [INFO])
    assert [s.address for s in mail.db.wait_for(marker)] == [BOB]


def test_catch_all_takes_unknown_addresses_of_its_domain(mail):
    marker, _ = deliver(mail, [f"anybody-{new_marker()}@{SECOND}"])
    assert [s.address for s in mail.db.wait_for(marker)] == [ALICE]


def test_catch_all_leaves_existing_users_alone(mail):
    marker, _ = deliver(mail, [ERIN])
    assert [s.address for s in mail.db.wait_for(marker)] == [ERIN]


def test_several_local_recipients_share_one_blob(mail):
    marker, message = deliver(mail, [ALICE, BOB, ERIN])
    stored = mail.db.wait_for(marker, count=3)
    assert sorted(s.address for s in stored) == sorted([ALICE, BOB, ERIN]), stored
    assert len({s.blob_hash for s in stored}) == 1, "one message to several recipients stored several times"
    check_trace_headers(stored[0], message, sender=SENDER, helo=HELO, hostname=HOSTNAME, protocol="ESMTP")


def test_duplicate_recipients_get_one_copy(mail):
    """The same mailbox named twice (directly, with another case, and through an alias) gets one copy."""
    marker, _ = deliver(mail, [ALICE, ALICE, "alice@TEST.EXAMPLE", TEAM])
    time.sleep(0.5)
    stored = mail.db.wait_for(marker, count=2)
    assert sorted(s.address for s in stored) == [ALICE, BOB], stored


def test_unknown_local_user_refused_at_rcpt(mail):
    """RS-15: 550 5.1.1 at RCPT, no accept-then-bounce."""
    with mail.session("smtp") as conn:
        conn.expect(f"MAIL FROM:<{SENDER}>", 250)
        conn.expect("RCPT TO:<nosuchuser@test.example>", 550, "5.1.1")
        conn.expect("RCPT TO:<nosuchuser+tag@test.example>", 550, "5.1.1")
        conn.expect(f"RCPT TO:<{ALICE}>", 250)


def test_null_sender_accepted(mail):
    """RFC 5321 §4.5.5: notifications come from <> and must be accepted."""
    marker = new_marker()
    message = build_message(marker, sender="mailer-daemon@ext.test")
    with mail.session("smtp") as conn:
        conn.expect("MAIL FROM:<>", 250)
        conn.expect(f"RCPT TO:<{ALICE}>", 250)
        assert conn.data(message).is_(250), conn.log()
    stored = mail.db.wait_for(marker)
    assert len(stored) == 1
    check_trace_headers(stored[0], message, sender="", helo=HELO, hostname=HOSTNAME, protocol="ESMTP")


def test_received_after_starttls_names_tls(mail):
    marker = new_marker()
    message = build_message(marker)
    with mail.session("smtp", starttls=True) as conn:
        tls = (conn.sock.version(), conn.sock.cipher()[0])
        assert conn.send_mail(SENDER, [ALICE], message).is_(250), conn.log()
    stored = mail.db.wait_for(marker)
    assert len(stored) == 1
    check_trace_headers(stored[0], message, sender=SENDER, helo=HELO, hostname=HOSTNAME, protocol="ESMTPS",
                        tls=tls, delivered_to=(ALICE,))


def test_eight_bit_body_stored_byte_exact(mail):
    marker = new_marker()
    body = "Grüße aus Köln — ünïcödé\r\n".encode() + bytes(range(0x80, 0x100)).replace(b"\x85", b"") + b"\r\n"
    message = build_message(marker, body=body, headers=b"Content-Type: text/plain; charset=utf-8\r\n")
    with mail.session("smtp") as conn:
        assert conn.send_mail(SENDER, [ALICE], message, params="BODY=8BITMIME").is_(250), conn.log()
    stored = mail.db.wait_for(marker)
    assert len(stored) == 1 and stored[0].data.endswith(message)


def test_smtputf8_sender(mail):
    """RFC 6531: a UTF-8 reverse-path with SMTPUTF8 is accepted and kept as sent."""
    marker = new_marker()
    sender = "jörg@bücher.example"
    message = build_message(marker, sender=sender, body="Hallo Jörg\r\n".encode())
    with mail.session("smtp") as conn:
        conn.expect(f"MAIL FROM:<{sender}> SMTPUTF8", 250)
        conn.expect(f"RCPT TO:<{ALICE}>", 250)
        assert conn.data(message).is_(250), conn.log()
    stored = mail.db.wait_for(marker)
    assert len(stored) == 1
    assert stored[0].data.startswith(f"Return-Path: <{sender}>\r\n".encode()), stored[0].data[:200]


def test_utf8_address_without_smtputf8_refused(mail):
    """RFC 6531 §3.5: a non-ASCII address needs the SMTPUTF8 parameter."""
    with mail.session("smtp") as conn:
        reply = conn.cmd("MAIL FROM:<jörg@bücher.example>")
        assert reply.code in (501, 550, 553, 555) and reply.enhanced, conn.log()


def test_utf8_unknown_local_recipient(mail):
    with mail.session("smtp") as conn:
        conn.expect("MAIL FROM:<jörg@bücher.example> SMTPUTF8", 250)
        conn.expect("RCPT TO:<jörg@test.example>", 550, "5.1.1")


# --- VRFY, EXPN, unknown commands (RS-19) ----------------------------------------------------------


def test_vrfy_is_no_oracle(mail):
    with mail.session("smtp") as conn:
        known = conn.cmd("VRFY alice")
        unknown = conn.cmd("VRFY nosuchuser")
        full = conn.cmd(f"VRFY {ALICE}")
    for reply in (known, unknown, full):
        assert reply.code == 252 and reply.enhanced and reply.enhanced.startswith("2."), conn.log()
    assert known.text.replace("alice", "X") == unknown.text.replace("nosuchuser", "X"), (
        f"VRFY tells users apart: {known} / {unknown}")


def test_expn_not_implemented(mail):
    with mail.session("smtp") as conn:
        reply = conn.cmd("EXPN team")
        assert reply.code == 502 and reply.enhanced and reply.enhanced.startswith("5."), conn.log()
        assert "bob" not in reply.text and "alice" not in reply.text


def test_unknown_command(mail):
    with mail.session("smtp") as conn:
        reply = conn.cmd("FROBNICATE now")
        assert reply.code == 500 and reply.enhanced and reply.enhanced.startswith("5.5."), conn.log()
        conn.expect("NOOP", 250)


# --- MAIL parameters (RL-03, RFC 1870, RFC 5321 §4.1.1.11) -------------------------------------------


@pytest.mark.parametrize("params, codes", [
    ("SIZE=1000000000000", (552,)),
    ("SIZE=18446744073709551616", (501, 552, 555)),
    ("SIZE=-1", (501, 555)),
    ("SIZE=abc", (501, 555)),
    ("SIZE=1 SIZE=2", (501, 555)),
    ("BODY=8BITMIME BODY=7BIT", (501, 555)),
    ("BODY=BINARYMIME", (501, 504, 555)),
    ("FOO=BAR", (555, 501)),
], ids=["huge", "u64-overflow", "negative", "not-a-number", "duplicate-size", "duplicate-body",
        "binarymime-not-offered", "unknown"])
def test_mail_parameters_checked(mail, params, codes):
    with mail.session("smtp") as conn:
        reply = conn.cmd(f"MAIL FROM:<{SENDER}> {params}")
        assert reply.code in codes, f"MAIL FROM:<{SENDER}> {params} -> {reply}, expected one of {codes}"
        assert reply.enhanced and reply.enhanced.startswith("5."), str(reply)
        if reply.code == 552:
            assert reply.enhanced == "5.3.4", str(reply)
        conn.expect(f"RCPT TO:<{ALICE}>", 503, "5.5.1")  # no transaction was started
    mail.assert_alive()


def test_size_parameter_within_limit(mail):
    with mail.session("smtp") as conn:
        conn.expect(f"MAIL FROM:<{SENDER}> SIZE=1000 BODY=7BIT", 250)


# --- limits: recipients, message size (RL-04, RL-05) -------------------------------------------------


def test_too_many_recipients(limited):
    """RFC 5321 §4.5.3.1.10: 452 4.5.3 past the limit; the accepted ones still get the message."""
    if "max_recipients" not in limited.settings:
        pytest.skip("README documents no max_recipients key")
    marker = new_marker()
    message = build_message(marker)
    with limited.session("smtp") as conn:
        conn.expect(f"MAIL FROM:<{SENDER}>", 250)
        for i in range(MAX_RECIPIENTS):
            conn.expect(f"RCPT TO:<alice+r{i}@test.example>", 250)
        conn.expect(f"RCPT TO:<{BOB}>", 452, "4.5.3")
        conn.expect(f"RCPT TO:<{ERIN}>", 452, "4.5.3")
        assert conn.data(message).is_(250), conn.log()
    stored = limited.db.wait_for(marker)
    assert [s.address for s in stored] == [ALICE], stored


def test_size_parameter_over_limit(limited):
    if "max_message_size" not in limited.settings:
        pytest.skip("README documents no max_message_size key")
    with limited.session("smtp") as conn:
        conn.expect(f"MAIL FROM:<{SENDER}> SIZE={MAX_SIZE + 1}", 552, "5.3.4")
        conn.expect(f"MAIL FROM:<{SENDER}> SIZE={MAX_SIZE}", 250)


def _padded(marker: str, size: int) -> bytes:
    head = build_message(marker, body=b"")
    line = b"x" * 98 + b"\r\n"
    return head + line * ((size - len(head)) // len(line) + 1)


def test_message_over_limit_refused_after_data(limited):
    """RL-04: no SIZE given, the data runs past the limit: 552 5.3.4 after the final dot, nothing stored."""
    if "max_message_size" not in limited.settings:
        pytest.skip("README documents no max_message_size key")
    marker = new_marker()
    message = _padded(marker, MAX_SIZE + 50_000)
    with limited.session("smtp") as conn:
        conn.expect(f"MAIL FROM:<{SENDER}>", 250)
        conn.expect(f"RCPT TO:<{ALICE}>", 250)
        conn.expect("DATA", 354)
        conn.send(message + b".\r\n")
        conn_reply = conn.reply()
        assert conn_reply.is_(552, "5.3.4"), conn.log()
        assert conn.pending(0.5) == b"", "more than one reply to the oversized data"
        conn.expect("NOOP", 250)  # the session goes on
    assert limited.db.absent(marker) == []


def test_message_just_under_limit_accepted(limited):
    if "max_message_size" not in limited.settings:
        pytest.skip("README documents no max_message_size key")
    marker = new_marker()
    message = _padded(marker, MAX_SIZE - 2_000)
    assert len(message) < MAX_SIZE
    with limited.session("smtp") as conn:
        assert conn.send_mail(SENDER, [ALICE], message).is_(250), conn.log()
    assert len(limited.db.wait_for(marker)) == 1


# --- command lines (RL-01, RL-02) --------------------------------------------------------------------


def test_512_octet_command_line_accepted(mail):
    """RFC 5321 §4.5.3.1.4: command lines up to 512 octets including CRLF."""
    with mail.session("smtp") as conn:
        line = b"NOOP " + b"x" * (512 - 7)
        assert len(line) + 2 == 512
        conn.expect(line, 250)


def test_overlong_command_line(mail):
    """RL-01: a 1 MiB EHLO line gets 500 5.5.2 (or a close) without harm; the session may go on."""
    with mail.connect("smtp") as conn:
        try:
            conn.send(b"EHLO " + b"a" * 1048576 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: fine
        try:
            reply = conn.reply()
        except SmtpClosed:
            reply = None
        if reply is not None:
            assert reply.is_(500, "5.5.2") or reply.code == 421, conn.log()
            if reply.code == 500 and not conn.eof:
                conn.expect("NOOP", 250)
    mail.assert_alive()


def vm_kib(pid: int, field: str) -> int:
    status = open(f"/proc/{pid}/status").read()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.M)[1])


def reset_peak(pid: int) -> int:
    """Reset VmHWM to the current RSS (proc(5) clear_refs "5") and return the RSS in KiB."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return vm_kib(pid, "VmRSS")


def test_unterminated_line_is_not_buffered(mail):
    """RL-02: 32 MiB without a line end: the server stops at its cap (MEM(16)) and stays ALIVE."""
    pid = mail.server.pid
    before = reset_peak(pid)
    chunk = b"A" * 65536
    with mail.connect("smtp") as conn:
        conn.sock.settimeout(5)
        sent = 0
        try:
            while sent < 32 * 1024 * 1024:
                conn.sock.sendall(chunk)
                sent += len(chunk)
            conn.sock.sendall(b"\r\n")
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        grown = vm_kib(pid, "VmHWM") - before
        conn.pending(1)
    assert grown < 16 * 1024, f"server memory grew by {grown} KiB for an unterminated line ({sent} bytes sent)"
    mail.assert_alive()


# --- error tarpit and junk commands (RL-11, RL-12, RS-19) --------------------------------------------


def _until_closed(conn: Smtp, lines: list[bytes], limit_reply: int = 421) -> list:
    """Send each line and read its reply until the server says `limit_reply` or closes."""
    replies = []
    for line in lines:
        try:
            reply = conn.cmd(line, timeout=30)
        except (SmtpClosed, BrokenPipeError, ConnectionResetError):
            replies.append("closed")
            break
        replies.append(reply)
        if reply.code == limit_reply:
            break
    return replies


@pytest.mark.timeout(120)
@pytest.mark.parametrize("bad", [b"FOO", b"RCPT TO:<nosuch@test.example>"], ids=["unknown-command", "unknown-rcpt"])
def test_error_limit_closes_session(mail, bad):
    """RL-11 / RS-19: after max_errors (README default 10) client errors: 421 4.7.0 and close."""
    with mail.session("smtp", source=next_source()) as conn:
        if bad.startswith(b"RCPT"):
            conn.expect(f"MAIL FROM:<{SENDER}>", 250)
        replies = _until_closed(conn, [bad] * 25)
        last = replies[-1]
        assert last != "closed", f"closed without a 421 after {len(replies) - 1} errors\n{conn.log()}"
        assert last.is_(421, "4.7.0"), f"no 421 4.7.0 within 25 errors\n{conn.log()}"
        errors = len(replies) - 1
        assert errors <= 20, f"{errors} errors before 421"
        closed, _ = conn.closed_within(3)
        assert closed, "not closed after 421"


@pytest.mark.timeout(120)
def test_junk_command_limit(mail):
    """RL-12 (Postfix smtpd_junk_command_limit=100): NOOP/RSET/VRFY without mail cannot hold a
    session forever."""
    with mail.session("smtp", source=next_source()) as conn:
        replies = _until_closed(conn, [b"NOOP", b"RSET", b"VRFY alice"] * 60)
    assert replies[-1] == "closed" or replies[-1].code == 421, (
        f"180 junk commands, still served (last: {replies[-1]})")


@pytest.mark.timeout(120)
def test_client_that_never_reads(mail):
    """RL-13: NOOPs sent without reading replies: the server's output stays bounded (MEM(32))."""
    pid = mail.server.pid
    before = reset_peak(pid)
    with mail.connect("smtp", source=next_source()) as conn:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.sock.settimeout(5)
        block = b"NOOP\r\n" * 10000
        try:
            for _ in range(350):  # ~20 MB
                conn.sock.sendall(block)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        grown = vm_kib(pid, "VmHWM") - before
    assert grown < 32 * 1024, f"server memory grew by {grown} KiB for a client that never reads"
    mail.assert_alive()


# --- connection limits and idle sessions (RL-06, RFC 5321 §4.5.3.2.7) -------------------------------


def test_connections_per_ip_limited(limited):
    """RL-06: past max_connections_per_ip a client gets 421 4.7.0 (and close); other IPs are served."""
    source = next_source()
    held = []
    try:
        for _ in range(MAX_CONN_PER_IP):
            held.append(limited.connect("smtp", source=source))
            assert held[-1].greeting.code == 220
        extra = Smtp(limited.ports["smtp"], source=source, read_greeting=False, timeout=5)
        held.append(extra)
        closed, data = extra.closed_within(5)
        assert closed, f"connection {MAX_CONN_PER_IP + 1} from one IP still open: {data!r}"
        assert data.startswith(b"421 4.7.0"), f"connection over the per-IP limit closed without 421 4.7.0: {data!r}"
        with limited.connect("smtp", source=next_source()) as other:
            assert other.greeting.code == 220
    finally:
        for conn in held:
            conn.close()


@pytest.mark.parametrize("service", ["smtp", "submissions"])
def test_idle_session_closed(make_mail, service):
    """RFC 5321 §4.5.3.2.7: a silent client is disconnected after idle_timeout_secs."""
    server = make_mail(limits={"idle_timeout_secs": 2})
    with server.session(service) as conn:
        started = time.monotonic()
        closed, data = conn.closed_within(10)
        waited = time.monotonic() - started
    assert closed, f"idle session still open after 10 s (idle_timeout_secs = 2): {data!r}"
    assert waited >= 1.5, f"closed after {waited:.1f} s, before the idle timeout"
    # RFC 5321 §3.8 allows closing on a timeout without a reply; a reply, if any, is a 421.
    assert data == b"" or data.startswith(b"421 4."), f"idle close with an unexpected reply: {data!r}"
