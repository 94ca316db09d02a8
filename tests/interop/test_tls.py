"""TLS on the implicit-TLS ports (SECURITY-TESTS.md §4.1)."""

from __future__ import annotations

import hashlib
import socket
import ssl
import time

import pytest

from harness import HOSTNAME, IMPLICIT_TLS
from tlsclient import (
    S_CLIENT_FLAGS,
    LineConn,
    client_can_offer,
    client_context,
    connect_tls,
    handshake,
    read_until_closed,
    s_client,
    served_fingerprint,
    wait_for_fingerprint,
)

# What each service sends right after the handshake.
GREETINGS = {"submissions": b"220 " + HOSTNAME.encode() + b" ESMTP", "imaps": b"* OK",
             "pop3s": b"+OK " + HOSTNAME.encode() + b" POP3"}
# A TLS record header announcing a 512-byte handshake message, and nothing more.
PARTIAL_CLIENT_HELLO = b"\x16\x03\x01\x02\x00"
HANDSHAKE_TIMEOUT = 2

services = pytest.mark.parametrize("service", IMPLICIT_TLS)


def assert_alive(server, certs) -> None:
    """The server still runs and completes a fresh handshake with the default certificate."""
    assert server.alive(), f"server died:\n{server.log()}"
    assert served_fingerprint(server.ports["imaps"]) == certs.default.fingerprint


# --- TLS-01, TLS-12: versions and the certificate served ---------------------------------------


@services
@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_modern_tls_serves_configured_certificate(server, certs, service, version):
    ctx = client_context(ca=certs.pki.ca_cert, version=version, check_hostname=True)
    with connect_tls(server.ports[service], ctx) as tls:
        assert tls.version() == f"TLSv{version}"
        assert hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest() == certs.default.fingerprint
        greeting = LineConn(tls).readline()
    assert greeting.startswith(GREETINGS[service]), f"after the handshake: {greeting!r}"


@services
@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_openssl_s_client_verifies_chain_and_name(server, certs, service, version):
    result = s_client(
        server.ports[service], S_CLIENT_FLAGS[version], "-servername", HOSTNAME, "-showcerts",
        "-CAfile", str(certs.pki.ca_cert), "-verify_return_error", "-verify_hostname", HOSTNAME,
    )
    # (The exit code is not checked: closure is test_server_ends_tls_with_close_notify's business.)
    assert result.negotiated, result.output
    assert "Verify return code: 0 (ok)" in result.output, result.output
    assert result.fingerprint == certs.default.fingerprint


@services
@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_server_ends_tls_with_close_notify(server, service, version):
    """RFC 8446 §6.1 / RFC 5246 §7.2.1: close_notify before closing, else clients see a truncation."""
    with LineConn(connect_tls(server.ports[service], client_context(version=version), strict_eof=True)) as conn:
        conn.readline()
        if service == "submissions":
            assert conn.command(b"QUIT").startswith(b"221")
        if service == "pop3s":
            assert conn.command(b"QUIT").startswith(b"+OK")
        if service == "imaps":
            assert conn.command(b"a LOGOUT").startswith(b"* BYE")
            assert conn.readline().startswith(b"a OK")
        try:
            rest = conn.reader.read()
        except ssl.SSLEOFError as error:
            pytest.fail(f"TCP closed without a TLS close_notify: {error}")
    assert rest == b"", f"data after the final reply: {rest!r}"


@services
@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_legacy_tls_refused(server, certs, service, version):
    port = server.ports[service]
    if client_can_offer(version):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            handshake(port, client_context(version=version, legacy=True))
    else:
        result = s_client(port, S_CLIENT_FLAGS[version], "-cipher", "DEFAULT:@SECLEVEL=0")
        if "no protocols available" in result.output:
            pytest.skip(f"the local OpenSSL cannot offer TLS {version}")
        assert result.code != 0 and not result.negotiated, result.output
        assert GREETINGS[service].decode() not in result.output, "application data after a legacy handshake"
    assert_alive(server, certs)


# --- TLS-06: SNI ---------------------------------------------------------------------------------


@services
def test_sni_selects_second_certificate(server, certs, service):
    ctx = client_context(ca=certs.pki.ca_cert, check_hostname=True)
    assert handshake(server.ports[service], ctx, "other.test.example").fingerprint == certs.other.fingerprint


@pytest.mark.parametrize("name", ["unknown.test.example", None, "localhost"], ids=["unknown", "none", "localhost"])
def test_default_certificate_without_matching_sni(server, certs, name):
    for service in IMPLICIT_TLS:
        assert served_fingerprint(server.ports[service], name) == certs.default.fingerprint, (service, name)


@pytest.mark.parametrize(
    "name", ["mail.test.example\\", "a" * 64 + ".test.example", ".".join(["b" * 63] * 4)],
    ids=["trailing-backslash", "label-too-long", "name-too-long"],
)
def test_malformed_sni_does_not_hurt(server, certs, name):
    result = s_client(server.ports["imaps"], "-servername", name)
    if result.negotiated:
        assert result.fingerprint == certs.default.fingerprint, result.output
    assert_alive(server, certs)


# --- TLS-04/05: ALPN (ALPACA) --------------------------------------------------------------------


@pytest.mark.parametrize(
    "service, offered, selected",
    [("imaps", ["imap"], "imap"), ("imaps", ["foo", "imap"], "imap"), ("pop3s", ["pop3"], "pop3"),
     ("imaps", None, None)],
)
def test_alpn_accepted(server, service, offered, selected):
    assert handshake(server.ports[service], client_context(alpn=offered)).alpn == selected


@pytest.mark.parametrize(
    "service, offered",
    [("imaps", ["http/1.1"]), ("imaps", ["h2"]), ("pop3s", ["http/1.1"]), ("pop3s", ["imap"]),
     ("submissions", ["http/1.1"]), ("submissions", ["imap"])],
)
def test_alpn_mismatch_refused(server, certs, service, offered):
    with pytest.raises(ssl.SSLError, match=r"(?i)no.application.protocol"):
        handshake(server.ports[service], client_context(alpn=offered))
    assert_alive(server, certs)


# --- TLS-12: certificate reload on SIGHUP ----------------------------------------------------------


def test_sighup_reloads_certificate_and_keeps_connections(instance, server, certs):
    port = server.ports["submissions"]
    with LineConn(connect_tls(port, client_context())) as old:
        greeting = old.readline()
        assert greeting.startswith(GREETINGS["submissions"]), greeting
        instance.install_cert(certs.renewed)
        server.reload()
        assert old.command(b"NOOP").startswith(b"250"), "connection opened before SIGHUP broke"
        seen = wait_for_fingerprint(port, certs.renewed.fingerprint)
        assert seen == certs.renewed.fingerprint, "new connections still get the old certificate"
        assert old.command(b"QUIT").startswith(b"221")
    for service in IMPLICIT_TLS:
        assert served_fingerprint(server.ports[service]) == certs.renewed.fingerprint, service
    assert server.alive()


@pytest.mark.parametrize("broken", ["truncated-key", "foreign-key"])
def test_sighup_with_bad_key_keeps_old_certificate(instance, server, certs, broken):
    key = certs.renewed.key.read_text()
    key = key[: len(key) // 2] if broken == "truncated-key" else certs.stray_key.read_text()
    instance.install_cert(certs.renewed, key_text=key)
    server.reload()
    time.sleep(1)
    assert server.alive(), f"server died on a bad reload:\n{server.log()}"
    for service in IMPLICIT_TLS:
        assert served_fingerprint(server.ports[service]) == certs.default.fingerprint, service
    # Once the pair is complete, the next SIGHUP takes it.
    instance.install_cert(certs.renewed)
    server.reload()
    assert wait_for_fingerprint(server.ports["imaps"], certs.renewed.fingerprint) == certs.renewed.fingerprint


# --- TLS-10: plaintext on an implicit-TLS port -----------------------------------------------------

PLAINTEXT = {"imaps": b"a LOGIN alice x\r\n", "submissions": b"EHLO client.test\r\n", "pop3s": b"USER alice\r\n"}


@services
def test_plaintext_gets_no_plaintext_reply(server, certs, service):
    with socket.create_connection(("127.0.0.1", server.ports[service]), timeout=5) as sock:
        sock.sendall(PLAINTEXT[service])
        data, _, closed = read_until_closed(sock, 5)
    assert closed, "connection still open 5 s after plaintext on a TLS port"
    assert not data or data[0] == 0x15, f"non-TLS reply: {data[:80]!r}"  # nothing, or a TLS alert record
    assert_alive(server, certs)


# --- TLS-09: handshake slowloris ---------------------------------------------------------------------


@pytest.fixture
def short_handshake_server(instance, start_server):
    instance.config.limits["handshake_timeout_secs"] = HANDSHAKE_TIMEOUT
    instance.write_config()
    return start_server()


@services
@pytest.mark.parametrize("sent", [PARTIAL_CLIENT_HELLO, b""], ids=["partial-hello", "silent"])
def test_stalled_handshake_closed_after_timeout(short_handshake_server, certs, service, sent):
    with socket.create_connection(("127.0.0.1", short_handshake_server.ports[service]), timeout=5) as sock:
        sock.sendall(sent)
        _, waited, closed = read_until_closed(sock, HANDSHAKE_TIMEOUT + 3)
    assert closed, f"stalled handshake still open after {HANDSHAKE_TIMEOUT + 3} s"
    assert waited >= HANDSHAKE_TIMEOUT / 2, f"closed after {waited:.2f} s, before the handshake timeout"
    assert_alive(short_handshake_server, certs)
