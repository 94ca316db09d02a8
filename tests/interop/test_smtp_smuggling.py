"""SMTP framing: smuggling through end-of-data variants, pipelining, bare CR/LF and NUL in
commands, dot-stuffing, BDAT, long lines, HTTP and reflection (SECURITY-TESTS.md §4.3, TLS-07/08)."""

from __future__ import annotations

import pytest

from mailserver import ALICE, BOB
from maildb import parse_headers
from smtpclient import Smtp, SmtpClosed, build_message, new_marker

HELO = "client.test"
SENDER = "s@ext.test"

# SM-01..SM-09: (id, end-of-data variant, contains a bare CR or LF)
EOD_VARIANTS = [
    ("SM-01", b"\n.\n", True),
    ("SM-02", b"\n.\r\n", True),
    ("SM-03", b"\r.\r\n", True),
    ("SM-04", b"\r\n.\n", True),
    ("SM-05", b"\r\n.\r", True),
    ("SM-06a", b"\r.\r", True),
    ("SM-06b", b"\n.\r", True),
    ("SM-06c", b"\r.\n", True),
    ("SM-07", b"\r\n\x00.\r\n", False),
    ("SM-08", b"\r\n.\x00\r\n", False),
    ("SM-09a", b"\r\n.\r\r\n", True),
    ("SM-09b", b"\r\r\n.\r\r\n", True),
]
PORTS = ["smtp", "submission", "submissions"]


def open_transaction(mail, service: str) -> tuple[Smtp, str]:
    """A session ready for DATA to alice: port 25 unauthenticated, submission ports as alice."""
    if service == "smtp":
        conn, sender = mail.session("smtp", helo=HELO), SENDER
    else:
        conn, sender = mail.login(service, ALICE, helo=HELO), ALICE
    conn.expect(f"MAIL FROM:<{sender}>", 250)
    conn.expect(f"RCPT TO:<{ALICE}>", 250)
    return conn, sender


def smuggled(sender: str, marker2: str) -> bytes:
    """A second transaction to bob that must never run (its MAIL would be accepted if it did)."""
    return (f"MAIL FROM:<{sender}>\r\nRCPT TO:<{BOB}>\r\nDATA\r\nFrom: <{sender}>\r\n"
            f"Subject: SMUGGLED {marker2}\r\n\r\nx\r\n.\r\n").encode()


def assert_no_extra_replies(conn: Smtp) -> None:
    extra = conn.pending(1.0)
    assert extra == b"", f"replies to smuggled commands: {extra!r}\n{conn.log()}"


@pytest.mark.parametrize("service", PORTS)
@pytest.mark.parametrize("variant, eod, bare", EOD_VARIANTS, ids=[v[0] for v in EOD_VARIANTS])
def test_end_of_data_smuggling(mail, service, variant, eod, bare):
    marker, marker2 = new_marker(), new_marker()
    conn, sender = open_transaction(mail, service)
    with conn:
        conn.expect("DATA", 354)
        outer = (f"From: <{sender}>\r\nTo: <{ALICE}>\r\nSubject: outer {marker}\r\nX-Test-Id: {marker}\r\n"
                 f"\r\nbody\r\n").encode()
        conn.send(outer + eod + smuggled(sender, marker2))
        reply = conn.reply()
        if bare:
            assert reply.is_(550, "5.5.2"), f"{variant}: expected 550 5.5.2 at the real end of data, got {reply}\n{conn.log()}"
        else:
            assert reply.code == 250 or reply.code // 100 == 5, f"{variant}: {reply}\n{conn.log()}"
        assert_no_extra_replies(conn)
        if not conn.eof:
            conn.expect("NOOP", 250)
    mail.db.absent(marker2)  # give a wrongly started second transaction time to land
    copies = mail.db.find(marker)
    if bare or reply.code != 250:
        assert copies == [], f"{variant}: refused message stored: {copies}"
        assert mail.db.find(marker2) == [], f"{variant}: smuggled message stored"
    else:
        # One message to alice only, the would-be second transaction inside its body.
        assert [c.address for c in copies] == [ALICE], copies
        assert f"SMUGGLED {marker2}".encode() in copies[0].data
        assert [c.address for c in mail.db.find(marker2)] == [ALICE], "the smuggled part became a message"
    mail.assert_alive()


def test_pipelining_after_end_of_data(mail):
    """SM-10: commands pipelined right after <CRLF>.<CRLF> never inherit the first transaction:
    either each is answered and checked on its own, or the server cuts the session."""
    m1, m2 = new_marker(), new_marker()
    first = build_message(m1, sender=SENDER, to=ALICE)
    second = build_message(m2, sender="s2@ext.test", to=BOB)
    with mail.session("smtp", helo=HELO) as conn:
        conn.expect(f"MAIL FROM:<{SENDER}>", 250)
        conn.expect(f"RCPT TO:<{ALICE}>", 250)
        conn.expect("DATA", 354)
        conn.send(first + b".\r\nMAIL FROM:<s2@ext.test>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\n" + second + b".\r\n")
        replies = []
        for _ in range(5):
            try:
                replies.append(conn.reply(timeout=5))
            except (SmtpClosed, TimeoutError):
                break
        codes = [r.code for r in replies]
    assert codes and codes[0] == 250, f"first message: {codes}\n{conn.log()}"
    one = mail.db.wait_for(m1)
    assert [c.address for c in one] == [ALICE] and m2.encode() not in one[0].data, one
    two = mail.db.find(m2)
    if codes == [250, 250, 250, 354, 250]:  # served as RFC 2920 pipelining: a transaction of its own
        assert [c.address for c in two] == [BOB], two
        assert two[0].data.startswith(b"Return-Path: <s2@ext.test>\r\n"), two[0].data[:200]
    else:  # cut off (Postfix >= 3.9 style): the second message must not exist
        assert two == [], f"second message stored although the replies were {codes}: {two}"


# --- bare CR/LF and NUL in command lines (SM-11, SM-12) --------------------------------------------


def test_bare_lf_in_command_line_is_not_a_line_end(mail):
    with mail.session("smtp", helo=HELO) as conn:
        conn.send(f"MAIL FROM:<{SENDER}>\nRCPT TO:<{ALICE}>\r\n".encode())
        try:
            reply = conn.reply()
        except SmtpClosed:
            reply = None
        if reply is not None:
            assert reply.code // 100 == 5 or reply.code == 421, f"bare LF split a command line: {reply}\n{conn.log()}"
            assert_no_extra_replies(conn)
    mail.assert_alive()


def test_bare_cr_in_ehlo_never_becomes_a_header(mail):
    marker = new_marker()
    with mail.connect("smtp") as conn:
        conn.send(b"EHLO t.test\rX-Injected: 1\r\n")
        reply = conn.reply()
        assert_no_extra_replies(conn)
        if reply.code != 250:
            assert reply.code // 100 == 5, conn.log()
            return
        assert conn.send_mail(SENDER, [ALICE], build_message(marker)).is_(250), conn.log()
    stored = mail.db.wait_for(marker)
    assert len(stored) == 1
    data = stored[0].data
    assert b"\rX-Injected" not in data and b"\nX-Injected" not in data, f"EHLO argument unsanitized: {data[:400]!r}"
    assert not any(name.lower() == "x-injected" for name, _ in parse_headers(data))


@pytest.mark.parametrize("line", [
    b"MAIL FROM:<a\x00b@ext.test>",
    b"MAIL FROM:<a@ext.test>\x00 SIZE=10",
    b"RCPT TO:<al\xffice@test.example>",
    b"RCPT TO:<alice@test.example\x00.ext.test>",
], ids=["nul-in-sender", "nul-after-path", "8bit-in-rcpt", "nul-in-domain"])
def test_nul_and_8bit_in_commands_refused(mail, line):
    with mail.session("smtp", helo=HELO) as conn:
        if line.startswith(b"RCPT"):
            conn.expect(f"MAIL FROM:<{SENDER}>", 250)
        reply = conn.cmd(line)
        assert reply.code in (500, 501, 550, 553, 554) and reply.enhanced, f"{line!r} -> {reply}"
        conn.expect("NOOP", 250)
    mail.assert_alive()


def test_invalid_utf8_ehlo(mail):
    with mail.connect("smtp") as conn:
        reply = conn.cmd(b"EHLO \xc3\x28")
        assert reply.code in (500, 501) and reply.enhanced and reply.enhanced.startswith("5."), conn.log()
        conn.expect("NOOP", 250)
    mail.assert_alive()


# --- dot-stuffing (SM-13) ------------------------------------------------------------------------------


def test_dot_unstuffing_round_trip(mail):
    """RFC 5321 §4.5.2: a leading dot is removed from every line that has more than the dot."""
    marker = new_marker()
    head = build_message(marker, body=b"")
    wire = b"..leading-dot\r\n.\x20\r\n..\r\n...\r\n.x\r\nmid.dle\r\n. .\r\n"
    stored_body = b".leading-dot\r\n\x20\r\n.\r\n..\r\nx\r\nmid.dle\r\n .\r\n"
    with mail.session("smtp", helo=HELO) as conn:
        conn.expect(f"MAIL FROM:<{SENDER}>", 250)
        conn.expect(f"RCPT TO:<{ALICE}>", 250)
        conn.expect("DATA", 354)
        conn.send(head + wire + b".\r\n")
        assert conn.reply().is_(250), conn.log()
    stored = mail.db.wait_for(marker)
    assert len(stored) == 1
    assert stored[0].data.endswith(head + stored_body), f"stored body: {stored[0].data[-120:]!r}"


# --- BDAT / CHUNKING (SM-15, RFC 3030) -----------------------------------------------------------------


def bdat_transaction(conn: Smtp, recipient: str = ALICE) -> None:
    conn.expect(f"MAIL FROM:<{SENDER}>", 250)
    conn.expect(f"RCPT TO:<{recipient}>", 250)


def test_bdat_chunks_stored_byte_exact(mail):
    marker = new_marker()
    message = build_message(marker, body=b"..no dot-unstuffing in BDAT\r\n.\r\nlast line\r\n")
    one, two = message[:50], message[50:]
    with mail.session("smtp", helo=HELO) as conn:
        bdat_transaction(conn)
        conn.send(f"BDAT {len(one)}\r\n".encode() + one)
        assert conn.reply().code == 250, conn.log()
        conn.send(f"BDAT {len(two)} LAST\r\n".encode() + two)
        assert conn.reply().is_(250), conn.log()
        assert_no_extra_replies(conn)
    stored = mail.db.wait_for(marker)
    assert len(stored) == 1 and stored[0].data.endswith(message), stored[0].data[-200:] if stored else stored


def test_bdat_pipelined_in_one_segment(mail):
    marker = new_marker()
    message = build_message(marker)
    one, two = message[:30], message[30:]
    with mail.session("smtp", helo=HELO) as conn:
        conn.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{ALICE}>\r\nBDAT {len(one)}\r\n".encode() + one
                  + f"BDAT {len(two)}\r\n".encode() + two + b"BDAT 0 LAST\r\n")
        codes = [conn.reply().code for _ in range(5)]
        assert codes == [250] * 5, conn.log()
    stored = mail.db.wait_for(marker)
    assert len(stored) == 1 and stored[0].data.endswith(message)


def test_bare_lf_inside_bdat_refused(mail):
    marker = new_marker()
    message = build_message(marker, body=b"line one\nMAIL FROM:<x@ext.test>\nline three\r\n")
    with mail.session("smtp", helo=HELO) as conn:
        bdat_transaction(conn)
        conn.send(f"BDAT {len(message)} LAST\r\n".encode() + message)
        reply = conn.reply()
        assert reply.is_(550, "5.5.2"), f"bare LF in BDAT: {reply}\n{conn.log()}"
        assert_no_extra_replies(conn)
    assert mail.db.absent(marker) == []


@pytest.mark.parametrize("command", ["BDAT 18446744073709551615 LAST", "BDAT 18446744073709551616"],
                         ids=["u64-max", "u64-overflow"])
def test_bdat_impossible_size_refused_at_once(mail, command):
    """SM-15: a chunk size no client can send (or that overflows) is refused at once -- 552 5.3.4 /
    501 5.5.4, or 421 and close -- without allocating it and without waiting for the data."""
    with mail.session("smtp", helo=HELO) as conn:
        bdat_transaction(conn)
        conn.send(command.encode() + b"\r\n")
        try:
            reply = conn.reply(timeout=10)
        except SmtpClosed:
            reply = None
        except TimeoutError:
            pytest.fail(f"no reply within 10 s to {command} (waiting for the chunk?)\n{conn.log()}")
        if reply is not None:
            assert reply.is_(552, "5.3.4") or reply.is_(501, "5.5.4") or reply.code == 421, conn.log()
    mail.assert_alive()


def test_bdat_over_size_limit(mail):
    """RFC 3030 §2 / RFC 1870: a chunk over SIZE is read (discarded) and refused with 552 5.3.4."""
    marker = new_marker()
    with mail.session("smtp", helo=HELO) as conn:
        size = int(conn.caps["SIZE"][0]) + 1
        bdat_transaction(conn)
        head = f"Subject: {marker}\r\n\r\n".encode()
        conn.send(f"BDAT {size} LAST\r\n".encode() + head + b"x" * (size - len(head)))
        try:
            reply = conn.reply(timeout=30)
        except SmtpClosed:
            reply = None
        if reply is not None:
            assert reply.is_(552, "5.3.4") or reply.code == 421, conn.log()
            if reply.code == 552:
                conn.expect("NOOP", 250)
    assert mail.db.absent(marker) == []
    mail.assert_alive()


def test_bdat_negative_size(mail):
    """501 5.5.4; as the chunk's end cannot be known, the server may also end the session."""
    with mail.session("smtp", helo=HELO) as conn:
        bdat_transaction(conn)
        reply = conn.cmd("BDAT -1")
        assert reply.code == 501 and reply.enhanced and reply.enhanced.startswith("5.5."), conn.log()
        closed, rest = conn.closed_within(0.5)
        if not closed:
            conn.expect("NOOP", 250)
    mail.assert_alive()


def test_bdat_partial_chunk_then_close_stores_nothing(mail):
    marker = new_marker()
    with mail.session("smtp", helo=HELO) as conn:
        bdat_transaction(conn)
        conn.send(b"BDAT 500 LAST\r\nSubject: " + marker.encode() + b"\r\n")
    assert mail.db.absent(marker) == []
    mail.assert_alive()


def test_bdat_then_data_refused(mail):
    with mail.session("smtp", helo=HELO) as conn:
        bdat_transaction(conn)
        conn.send(b"BDAT 3\r\nabc")
        assert conn.reply().code == 250, conn.log()
        conn.expect("DATA", 503, "5.5.1")


def test_bdat_without_transaction(mail):
    with mail.session("smtp", helo=HELO) as conn:
        conn.expect("BDAT 0 LAST", 503, "5.5.1")
        conn.expect("NOOP", 250)


def test_bdat_without_recipient_consumes_its_chunk(mail):
    """RFC 3030 §2: the chunk is read whatever the reply, so 'abc' never reaches the command parser."""
    with mail.session("smtp", helo=HELO) as conn:
        conn.expect(f"MAIL FROM:<{SENDER}>", 250)
        conn.send(b"BDAT 3 LAST\r\nabc")
        reply = conn.reply()
        assert reply.code in (503, 554) and reply.enhanced and reply.enhanced.startswith("5."), conn.log()
        conn.expect("NOOP", 250)


# --- long lines inside DATA (SM-16) --------------------------------------------------------------------

LONG = [997, 998, 999, 1000, 1022, 1024, 2046, 2047, 2048, 4095, 4096, 8191, 8192, 16384, 65535, 65536]


@pytest.mark.parametrize("n", LONG)
def test_long_line_before_dot_does_not_end_data(mail, n):
    marker, marker2 = new_marker(), new_marker()
    with mail.session("smtp", helo=HELO) as conn:
        conn.expect(f"MAIL FROM:<{SENDER}>", 250)
        conn.expect(f"RCPT TO:<{ALICE}>", 250)
        conn.expect("DATA", 354)
        head = f"Subject: t {marker}\r\nX-Test-Id: {marker}\r\n\r\n".encode()
        conn.send(head + b"A" * n + b".\r\n" + smuggled("ceo@ext.test", marker2))
        reply = conn.reply()
        assert_no_extra_replies(conn)
    if n + 1 + 2 <= 1000:
        assert reply.is_(250), f"a {n + 3}-octet line (within RFC 5321's 1000) refused: {reply}"
    if reply.code == 250:
        copies = mail.db.wait_for(marker)
        assert [c.address for c in copies] == [ALICE], copies
        assert b"MAIL FROM:<ceo@ext.test>" in copies[0].data and f"SMUGGLED {marker2}".encode() in copies[0].data
    else:
        assert reply.code // 100 == 5 and reply.enhanced, str(reply)
        assert mail.db.absent(marker) == []
    assert not [c for c in mail.db.find(marker2) if c.address == BOB], "the text after the long line ran as a transaction"


# --- cross-protocol HTTP and reflection (TLS-07, TLS-08) -------------------------------------------------

HTTP = {
    "get": b"GET / HTTP/1.1\r\nHost: mail.test.example\r\nCookie: x\r\n\r\n",
    "post": b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nHELLO",
}


@pytest.mark.parametrize("service", PORTS)
@pytest.mark.parametrize("request_", HTTP, ids=list(HTTP))
def test_http_request_gets_221_and_close(mail, service, request_):
    with mail.connect(service) as conn:
        conn.send(HTTP[request_])
        reply = conn.reply()
        assert reply.code == 221, f"HTTP {request_} on {service}: {reply}\n{conn.log()}"
        closed, rest = conn.closed_within(3)
        assert closed, f"still open after the 221\n{conn.log()}"
        assert rest == b"", f"the header lines were processed as commands: {rest!r}"
    mail.assert_alive()


@pytest.mark.parametrize("line", [
    b"<script>alert(1)</script>",
    b"EHLO <script>alert(1)</script>",
    b"HELO <script>alert(1)</script>",
    b"VRFY <script>alert(1)</script>",
    b"MAIL FROM:<script>alert(1)</script>",
    b"FOO <script>alert(1)</script>",
], ids=["bare", "ehlo", "helo", "vrfy", "mail", "unknown"])
def test_attacker_bytes_never_reflected(mail, line):
    with mail.connect("smtp") as conn:
        try:
            reply = conn.cmd(line)
            rest = conn.pending(0.5)
        except SmtpClosed:
            reply, rest = None, b""
        seen = (reply.raw if reply else b"") + rest
        assert b"<script" not in seen.lower(), f"{line!r} reflected: {seen!r}"
