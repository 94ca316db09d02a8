"""POP3 attacks and limits (SECURITY-TESTS.md §4.7 PO-01..PO-04, PO-08; §4.2 ST-05, ST-06,
ST-08, ST-09; §4.5 AU-09, AU-10; §4.1 TLS-01, TLS-04, TLS-07, TLS-08, TLS-10 for POP3;
§4.11 CR-07)."""

from __future__ import annotations

import base64
import signal
import ssl
import time

import pytest

from smtpclient import next_source
from test_pop3_support import (  # noqa: F401  (fixtures)
    PopConn,
    make_pop,
    message,
    pop,
    stuffed_size,
    unstuff,
)
from tlsclient import S_CLIENT_FLAGS, client_context, s_client

BODY = b"Body line one.\r\nBody line two.\r\n"


# --- STLS (ST-05, ST-06, ST-08, ST-09, PO-01, PO-02) -------------------------------------------------


def test_stls_injection_is_not_executed(pop):
    """PO-01: CAPA pipelined with STLS is never answered inside TLS; NOOP gets +OK only."""
    with pop.pop3() as conn:
        conn.send(b"STLS\r\nCAPA\r\n")
        assert conn.line() == "+OK Begin TLS negotiation"
        conn.sock = client_context().wrap_socket(conn.sock, server_hostname="mail.test.example")
        conn.buf = b""
        assert conn.cmd("NOOP") == "+OK"
        assert conn.cmd("USER someone@test.example") == "+OK Send PASS"  # ST-05
        assert conn.cmd("QUIT").startswith("+OK")
        assert b"TOP" not in b"".join(conn.transcript), conn.log()


def test_no_credentials_before_stls(pop):
    """PO-02 / ST-06: no login offered or accepted in cleartext; the password is never checked."""
    user, password = pop.new_user()
    with pop.pop3() as conn:
        assert conn.cmd("CAPA").startswith("+OK")
        caps = conn.multiline().decode().split("\r\n")
        assert "STLS" in caps and "USER" not in caps and not any(c.startswith("SASL") for c in caps)
        assert conn.cmd(f"USER {user}").startswith("-ERR")
        assert conn.cmd(f"PASS {password}").startswith("-ERR")
        blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        assert conn.cmd(f"AUTH PLAIN {blob}").startswith("-ERR")
        assert conn.closed_within(2), "three refused commands before login end the session"
    with pop.pop3() as conn:
        conn.stls()
        assert conn.cmd("CAPA").startswith("+OK")
        caps = conn.multiline().decode().split("\r\n")
        assert "USER" in caps and "SASL PLAIN" in caps and "STLS" not in caps
    time.sleep(0.2)
    assert user not in pop.log(), "the cleartext attempts reached the authenticator"


def test_stls_twice_or_with_arguments(pop):
    """ST-08."""
    with pop.pop3() as conn:
        assert conn.cmd("STLS now") == "-ERR Invalid arguments"
        conn.stls()
        assert conn.cmd("STLS") == "-ERR STLS is not available"
        assert conn.cmd("NOOP") == "+OK"
    with pop.pop3s() as conn:
        assert conn.cmd("STLS") == "-ERR STLS is not available"


def test_plaintext_after_stls_breaks_the_handshake(pop):
    """ST-09: plaintext between +OK and the ClientHello is never executed; no fallback."""
    with pop.pop3() as conn:
        assert conn.cmd("STLS").startswith("+OK")
        conn.send(b"NOOP\r\n")
        time.sleep(0.3)
        with pytest.raises((ssl.SSLError, OSError)):
            client_context().wrap_socket(conn.sock, server_hostname="mail.test.example")
    pop.assert_alive()


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_stls_refuses_legacy_tls(pop, version):
    """TLS-01 after STLS."""
    result = s_client(pop.ports["pop3"], "-starttls", "pop3", S_CLIENT_FLAGS[version],
                      "-cipher", "DEFAULT:@SECLEVEL=0")
    assert not result.negotiated, result.output
    good = s_client(pop.ports["pop3"], "-starttls", "pop3", S_CLIENT_FLAGS["1.2"])
    assert good.negotiated, good.output


def test_stls_alpn_mismatch_is_refused(pop):
    """TLS-04 (ALPACA) after STLS: only "pop3" is accepted."""
    with pop.pop3() as conn:
        assert conn.cmd("STLS").startswith("+OK")
        ctx = client_context(alpn=["http/1.1"])
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(conn.sock, server_hostname="mail.test.example")
    with pop.pop3() as conn:
        conn.stls(client_context(alpn=["pop3"]))
        assert conn.sock.selected_alpn_protocol() == "pop3"


# --- Limits and parsing (PO-03, PO-04) ------------------------------------------------------------


def test_long_lines(pop):
    """PO-03: over-long lines get -ERR with bounded buffering; an endless one ends the session."""
    with pop.pop3s() as conn:
        assert conn.cmd(b"USER " + b"a" * 100_000) == "-ERR Line too long"
        assert conn.cmd(b"NOOP" + b" " * 300) == "-ERR Invalid arguments"
    before = pop.vm_hwm_kib()
    with pop.pop3s() as conn:
        try:
            conn.send(b"A" * ((1 << 20) + 4096))
        except (OSError, ssl.SSLError):
            pass  # the server may close before it has taken every byte
        assert conn.closed_within(5), "a line that never ends closes the session"
        # What arrived before the close (a reset may drop the tail) is only ever these lines.
        expected = b"-ERR Line too long\r\n-ERR Line never ends, closing\r\n"
        assert expected.startswith(conn.buf), conn.buf
    assert pop.vm_hwm_kib() - before < 16 * 1024, "MEM(16)"
    pop.assert_alive()


def test_numeric_arguments(pop):
    """PO-04: every malformed or out-of-range number is refused; nothing panics."""
    user, password = pop.new_user()
    copies = [pop.deliver(user, message(f"po-04 {n}", BODY)) for n in range(3)]
    with pop.login(user, password) as conn:
        for line in ("RETR 0", "RETR 4", "RETR 4294967297", "RETR -1", "RETR 1x",
                     "LIST 18446744073709551616", "TOP 1 -5", "DELE 1 2", "UIDL 00000000000000000001"):
            reply = conn.cmd(line)
            assert reply in ("-ERR No such message", "-ERR Invalid arguments"), f"{line} -> {reply}"
        assert conn.cmd("TOP 1 99999999999999999999") == "+OK Top of message follows"
        assert unstuff(conn.multiline()) == copies[0].data, "TOP with a huge count: the whole message"
        assert conn.cmd("STAT") == f"+OK 3 {sum(stuffed_size(c.data) for c in copies)}"
    pop.assert_alive()


# --- Timeouts (PO-08) -------------------------------------------------------------------------------


def test_idle_and_trickling_clients_are_disconnected(make_pop):
    """PO-08: before login the per-command deadline closes idle and byte-trickling clients;
    after login the autologout timer is at least 10 minutes (RFC 1939 §3)."""
    server = make_pop(limits={"idle_timeout_secs": 2})
    with server.pop3s() as idle:
        started = time.monotonic()
        assert idle.closed_within(6)
        assert 1.5 < time.monotonic() - started < 5
        assert b"-ERR Disconnected for inactivity" in idle.buf
    with server.pop3s() as trickle:
        started = time.monotonic()
        for byte in b"USER x":
            try:
                trickle.send(bytes([byte]))
            except OSError:
                break
            time.sleep(0.6)
        assert trickle.closed_within(3)
        assert time.monotonic() - started < 5, "trickling bytes extended the deadline"
    user, password = server.new_user()
    with server.login(user, password) as conn:
        time.sleep(3)
        assert conn.cmd("NOOP") == "+OK", "logged-in sessions outlive the short idle timeout"


# --- Authentication (AU-09, AU-10) -------------------------------------------------------------------


def test_failed_logins_look_alike_and_close_the_session(pop):
    """AU-09: USER never tells whether the account exists; [AUTH] failures; closed after 3."""
    user, password = pop.new_user()
    with pop.pop3s(source=next_source()) as conn:
        replies = []
        for name in ("nosuchuser@test.example", user, user):
            assert conn.cmd(f"USER {name}") == "+OK Send PASS"
            replies.append(conn.cmd("PASS wrong"))
        assert replies == ["-ERR [AUTH] Authentication failed"] * 3
        assert conn.closed_within(2)


def test_apop_not_offered_and_long_initial_response_refused(pop):
    """AU-09: no APOP; an AUTH initial response beyond 255 octets is refused (RFC 5034 §4)."""
    with pop.pop3s(source=next_source()) as conn:
        assert not conn.greeting.endswith(">"), "no APOP timestamp in the greeting"
        assert conn.cmd("CAPA").startswith("+OK")
        assert "APOP" not in conn.multiline().decode()
        assert conn.cmd("APOP alice 0123456789abcdef0123456789abcdef") == "-ERR APOP is not supported"
        assert conn.cmd("AUTH PLAIN " + "A" * 300) == "-ERR Line too long for an initial response"
        assert conn.cmd("AUTH PLAIN AGFsaWNlAHdyb25n") == "-ERR [AUTH] Authentication failed"


def test_name_variants_share_the_failure_count_without_locking_out(pop):
    """AU-10: case variants count against the same account; the right password from another
    address still gets in."""
    user, password = pop.new_user()
    source = next_source()
    timings = []
    for variant in (user, user.upper(), user.capitalize()):
        with pop.pop3s(source=source) as conn:
            conn.cmd(f"USER {variant}")
            started = time.monotonic()
            assert conn.cmd("PASS wrong") == "-ERR [AUTH] Authentication failed"
            timings.append(time.monotonic() - started)
    assert timings[2] > timings[0] + 0.3, f"no growing delay across name variants: {timings}"
    with pop.pop3s(source=next_source()) as conn:
        conn.cmd(f"USER {user.upper()}")
        assert conn.cmd(f"PASS {password}").startswith("+OK Logged in")


# --- Not POP3 at all (TLS-07, TLS-08, TLS-10) ----------------------------------------------------


@pytest.mark.parametrize("service", ["pop3", "pop3s"])
def test_http_request_is_not_served(pop, service):
    """TLS-07: an HTTP request ends the session at once; nothing of it is reflected."""
    with PopConn(pop.ports[service], tls=service == "pop3s", source=next_source()) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: mail.local.test\r\nCookie: x\r\n\r\n")
        assert conn.closed_within(3)
        assert conn.buf == b"-ERR Not a POP3 command, closing\r\n"


@pytest.mark.parametrize("service", ["pop3", "pop3s"])
def test_no_reflection_and_bad_command_limit(pop, service):
    """TLS-08: errors never echo the command; closed after 3 bad commands before login."""
    with PopConn(pop.ports[service], tls=service == "pop3s", source=next_source()) as conn:
        conn.send(b"<script>alert(1)</script>\r\n" + b"SCRIPT <script>alert(1)</script>\r\n" * 3)
        assert conn.closed_within(3)
        replies = conn.buf.decode(errors="replace")
        assert "<script" not in replies.lower(), replies
        assert replies.count("-ERR") <= 3


def test_tls_client_hello_on_the_plaintext_port(pop):
    """TLS-10: a ClientHello on 110 is answered in plaintext and closed; nothing crashes."""
    result = s_client(pop.ports["pop3"])
    assert not result.negotiated, result.output
    pop.assert_alive()


# --- Shutdown and crashes (CR-07) ---------------------------------------------------------------


def test_sigterm_says_goodbye_and_deletes_nothing(make_pop):
    server = make_pop()
    user, password = server.new_user()
    server.deliver(user, message("sigterm", BODY))
    with server.login(user, password) as conn:
        assert conn.cmd("DELE 1").startswith("+OK")
        server.server.send_signal(signal.SIGTERM)
        assert conn.line() == "-ERR [SYS/TEMP] Server shutting down"
        assert server.server.proc.wait(10) == 0
    server.server = server.instance.serve()
    assert len(server.db.messages(user)) == 1


def test_quit_ok_means_deleted_even_after_sigkill(make_pop):
    """CR-07: after +OK to QUIT the deletion survives a kill -9; before QUIT nothing goes."""
    server = make_pop()
    user, password = server.new_user()
    for n in range(3):
        server.deliver(user, message(f"cr-07 {n}", BODY))
    with server.login(user, password) as conn:
        assert conn.cmd("DELE 1").startswith("+OK")
        assert conn.cmd("QUIT").startswith("+OK")
        server.server.kill()
    server.server = server.instance.serve()
    with server.login(user, password) as conn:
        assert conn.cmd("DELE 1").startswith("+OK")
        server.server.kill()  # before QUIT
    server.server = server.instance.serve()
    assert len(server.db.messages(user)) == 2
