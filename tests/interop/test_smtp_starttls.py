"""STARTTLS on ports 25 and 587 (RFC 3207, SECURITY-TESTS.md §4.2 ST-01, ST-02, ST-06..ST-10,
and TLS-01/04/06/09 applied to the STARTTLS ports)."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl

import pytest

from harness import HOSTNAME
from mailserver import ALICE, PASSWORDS
from smtpclient import Smtp, SmtpClosed, next_source
from tlsclient import S_CLIENT_FLAGS, client_can_offer, client_context, s_client

HELO = "client.test"
STARTTLS_PORTS = ["smtp", "submission"]
ports = pytest.mark.parametrize("service", STARTTLS_PORTS)


# --- injection (ST-01, ST-02, ST-09, CVE-2011-0411) ------------------------------------------------------


def starttls_with_injection(mail, service: str, injected: bytes) -> Smtp | None:
    """EHLO, then STARTTLS with `injected` in the same segment, then the handshake.

    Returns the session inside TLS, or None when the server refused the injection outright
    (closed, or failed the handshake because it fed the bytes to TLS): both are safe.
    """
    conn = mail.session(service, helo=HELO)
    conn.send(b"STARTTLS\r\n" + injected)
    try:
        reply = conn.reply()
    except SmtpClosed:
        conn.close()
        return None
    if reply.code != 220:
        assert reply.code // 100 in (4, 5), conn.log()
        conn.close()
        return None
    assert conn.pending(0.5) == b"", f"plaintext after the 220 (the injected command ran?)\n{conn.log()}"
    try:
        conn.upgrade()
    except (ssl.SSLError, OSError):
        conn.close()
        return None
    return conn


@ports
def test_injected_command_discarded(mail, service):
    """ST-01: `STARTTLS\\r\\nRSET\\r\\n` in one segment: inside TLS, NOOP gets exactly one 250."""
    conn = starttls_with_injection(mail, service, b"RSET\r\n")
    if conn is None:
        mail.assert_alive()
        return
    with conn:
        reply = conn.cmd("NOOP")
        assert reply.is_(250, "2.0.0"), f"first reply inside TLS answers the injected RSET? {reply}\n{conn.log()}"
        assert conn.pending(1.0) == b"", f"a second reply inside TLS\n{conn.log()}"


@ports
def test_injected_mail_does_not_survive(mail, service):
    """ST-02: an injected MAIL FROM never becomes the transaction inside TLS."""
    conn = starttls_with_injection(mail, service, b"MAIL FROM:<attacker@ext.test>\r\n")
    if conn is None:
        return
    with conn:
        conn.ehlo(HELO)
        conn.expect(f"RCPT TO:<{ALICE}>", 503, "5.5.1")


@ports
def test_injected_ehlo_and_auth_discarded(mail, service):
    """EAST command-injection probe with EHLO (+ AUTH on 587): nothing answers inside TLS."""
    injected = b"EHLO commandinjectiontester\r\n"
    if service == "submission":
        injected += b"AUTH PLAIN " + base64.b64encode(f"\0{ALICE}\0{PASSWORDS[ALICE]}".encode()) + b"\r\n"
    conn = starttls_with_injection(mail, service, injected)
    if conn is None:
        return
    with conn:
        assert conn.pending(1.0) == b"", f"the injected commands were answered inside TLS\n{conn.log()}"
        conn.expect(f"MAIL FROM:<{ALICE}>", 503, "5.5.1")  # no EHLO in effect inside TLS


@ports
def test_plaintext_after_220_breaks_the_handshake(mail, service):
    """ST-09: plaintext sent after the 220 (before the ClientHello) is never executed."""
    with mail.session(service, helo=HELO) as conn:
        conn.expect("STARTTLS", 220)
        conn.send(b"RSET\r\n")
        closed, data = conn.closed_within(5)
    assert closed, f"connection still open after plaintext where a ClientHello belongs: {data!r}"
    assert b"250" not in data and (not data or data[0] == 0x15), f"plaintext answered: {data!r}"
    mail.assert_alive()


@ports
def test_failed_handshake_does_not_fall_back(mail, service):
    """ST-10: a broken handshake ends the session; plaintext MAIL after it gets no reply."""
    with mail.session(service, helo=HELO) as conn:
        conn.expect("STARTTLS", 220)
        conn.send(b"\x16\x03\x01\x00\x05hello")
        try:
            conn.send(b"MAIL FROM:<a@ext.test>\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        closed, data = conn.closed_within(5)
    assert closed, f"connection still open after a failed handshake: {data!r}"
    assert not data or data[0] == 0x15, f"non-TLS bytes after a failed handshake: {data!r}"
    mail.assert_alive()


# --- state after STARTTLS (ST-06, ST-07, ST-08) -----------------------------------------------------------


@ports
def test_state_reset_after_starttls(mail, service):
    """ST-07 / RFC 3207 §4.2: EHLO needed again; the new EHLO lacks STARTTLS (and offers AUTH on 587)."""
    with mail.session(service, helo=HELO) as conn:
        conn.starttls()
        conn.expect("MAIL FROM:<a@ext.test>", 503, "5.5.1")
        conn.ehlo(HELO)
        assert "STARTTLS" not in conn.caps, conn.log()
        if service == "submission":
            assert "AUTH" in conn.caps, f"no AUTH inside TLS on 587\n{conn.log()}"
        else:
            assert "AUTH" not in conn.caps, f"AUTH on port 25\n{conn.log()}"


@ports
def test_starttls_twice_refused(mail, service):
    with mail.session(service, helo=HELO, starttls=True) as conn:
        reply = conn.cmd("STARTTLS")
        assert reply.code in (502, 503, 554) and reply.enhanced and reply.enhanced.startswith("5."), (
            f"STARTTLS inside TLS -> {reply}")
        conn.expect("NOOP", 250)


@ports
def test_starttls_with_argument_refused(mail, service):
    """ST-08 / RFC 3207 §4: 501 for STARTTLS with a parameter."""
    with mail.session(service, helo=HELO) as conn:
        reply = conn.cmd("STARTTLS now")
        assert reply.code == 501 and reply.enhanced and reply.enhanced.startswith("5.5."), f"STARTTLS now -> {reply}"
        conn.starttls()  # the session is still usable for a proper STARTTLS
        conn.ehlo(HELO)


def test_no_starttls_on_implicit_tls(mail):
    with mail.session("submissions", helo=HELO) as conn:
        assert "STARTTLS" not in conn.caps, conn.log()
        reply = conn.cmd("STARTTLS")
        assert reply.code in (502, 503, 554) and reply.enhanced and reply.enhanced.startswith("5."), str(reply)
        conn.expect("NOOP", 250)


def test_starttls_with_pending_transaction_state_discarded(mail):
    """RFC 3207 §4.2: a transaction begun before STARTTLS does not exist afterwards."""
    with mail.session("smtp", helo=HELO) as conn:
        conn.expect("MAIL FROM:<before@ext.test>", 250)
        reply = conn.cmd("STARTTLS")
        if reply.code != 220:  # refusing STARTTLS inside a transaction is also safe
            assert reply.code // 100 == 5, str(reply)
            return
        conn.upgrade()
        conn.ehlo(HELO)
        conn.expect(f"RCPT TO:<{ALICE}>", 503, "5.5.1")


# --- TLS on the STARTTLS ports (TLS-01, TLS-04, TLS-06, TLS-09, close_notify) ------------------------------


@ports
@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_starttls_versions_and_certificate(mail, certs, service, version):
    ctx = client_context(ca=certs.pki.ca_cert, version=version, check_hostname=True)
    with mail.session(service, helo=HELO) as conn:
        conn.starttls(ctx)
        assert conn.sock.version() == f"TLSv{version}"
        der = conn.sock.getpeercert(binary_form=True)
        assert hashlib.sha256(der).hexdigest() == certs.default.fingerprint
        conn.ehlo(HELO)


@ports
@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_starttls_legacy_versions_refused(mail, service, version):
    if not client_can_offer(version):
        result = s_client(mail.ports[service], "-starttls", "smtp", S_CLIENT_FLAGS[version], "-cipher", "DEFAULT:@SECLEVEL=0")
        if "no protocols available" in result.output:
            pytest.skip(f"the local OpenSSL cannot offer TLS {version}")
        assert not result.negotiated, result.output
        return
    with mail.session(service, helo=HELO) as conn:
        conn.expect("STARTTLS", 220)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            conn.upgrade(client_context(version=version, legacy=True))
    mail.assert_alive()


@ports
def test_starttls_sni_selects_certificate(mail, certs, service):
    with mail.session(service, helo=HELO) as conn:
        conn.expect("STARTTLS", 220)
        conn.upgrade(client_context(ca=certs.pki.ca_cert, check_hostname=True), server_hostname="other.test.example")
        der = conn.sock.getpeercert(binary_form=True)
        assert hashlib.sha256(der).hexdigest() == certs.other.fingerprint


@ports
@pytest.mark.parametrize("offered, ok", [(["http/1.1"], False), (["h2", "imap"], False), (["smtp"], True), (None, True)],
                         ids=["http", "h2-imap", "smtp", "none"])
def test_starttls_alpn(mail, service, offered, ok):
    """TLS-04 (ALPACA): a client offering ALPN without an SMTP protocol is refused (alert 120)."""
    with mail.session(service, helo=HELO) as conn:
        conn.expect("STARTTLS", 220)
        ctx = client_context(alpn=offered)
        if ok:
            conn.upgrade(ctx)
            conn.ehlo(HELO)
        else:
            with pytest.raises(ssl.SSLError, match=r"(?i)no.application.protocol"):
                conn.upgrade(ctx)
    mail.assert_alive()


@ports
def test_close_notify_after_quit(mail, service):
    with mail.session(service, helo=HELO, strict_eof=True) as conn:
        conn.starttls()
        conn.ehlo(HELO)
        conn.expect("QUIT", 221)
        try:
            rest = conn.sock.recv(100)
        except ssl.SSLEOFError as error:
            pytest.fail(f"TCP closed without a TLS close_notify after 221: {error}")
    assert rest == b"", rest


@ports
def test_stalled_starttls_handshake_closed(make_mail, service):
    """TLS-09 on STARTTLS: no ClientHello after the 220: closed after handshake_timeout_secs."""
    server = make_mail(limits={"handshake_timeout_secs": 2})
    with server.session(service, helo=HELO, source=next_source()) as conn:
        conn.expect("STARTTLS", 220)
        conn.sock.sendall(b"\x16\x03\x01\x02\x00")  # a record header, then nothing
        closed, data = conn.closed_within(8)
    assert closed, "stalled STARTTLS handshake still open after 8 s (handshake_timeout_secs = 2)"
    assert not data or data[0] == 0x15, data


def test_implicit_tls_port_ignores_plaintext(mail):
    """TLS-10: plaintext EHLO on 465 gets no plaintext reply."""
    with socket.create_connection(("127.0.0.1", mail.ports["submissions"]), timeout=5) as sock:
        sock.sendall(b"EHLO client.test\r\n")
        sock.settimeout(5)
        try:
            data = sock.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b""
    assert not data or data[0] == 0x15, data
    assert HOSTNAME.encode() not in data
