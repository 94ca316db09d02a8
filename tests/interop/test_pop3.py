"""POP3 on 995 and 110 with Python poplib and a byte-exact raw client: every command, the
maildrop shared with the store (what SMTP delivered is what RETR returns), DELE applied only
after QUIT and durably, the per-account lock (SECURITY-TESTS PO-05..PO-07, PO-09)."""

from __future__ import annotations

import poplib
import socket
import struct
import time

import pytest

from test_pop3_support import (  # noqa: F401  (fixtures)
    make_pop,
    message,
    pop,
    stuffed_size,
    unstuff,
)
from tlsclient import client_context

BODY = b"First line.\r\n.leading dot\r\n..two dots\r\n.\r\nLast line.\r\n"


def lines_of(data: bytes) -> list[bytes]:
    """What poplib returns for a retrieved message: its lines, without CRLF, unstuffed."""
    assert data.endswith(b"\r\n")
    return data[:-2].split(b"\r\n")


def test_poplib_pop3s_every_command(pop, certs):
    user, password = pop.new_user()
    stored = [pop.deliver(user, message(f"poplib {n}", BODY)) for n in range(3)]
    client = pop.poplib(ca=certs.pki.ca_cert)
    try:
        assert client.getwelcome().startswith(b"+OK ")
        caps = client.capa()
        for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"):
            assert cap in caps, caps
        assert caps["SASL"] == ["PLAIN"]
        assert "STLS" not in caps and "APOP" not in caps and "EXPIRE" not in caps and "LOGIN-DELAY" not in caps
        assert client.user(user).startswith(b"+OK")
        assert client.pass_(password).startswith(b"+OK")
        sizes = [stuffed_size(s.data) for s in stored]
        assert client.stat() == (3, sum(sizes))
        response, listing, _ = client.list()
        assert listing == [f"{n + 1} {size}".encode() for n, size in enumerate(sizes)]
        assert client.list(2) == f"+OK 2 {sizes[1]}".encode()
        _, uidls, _ = client.uidl()
        ids = [line.split()[1] for line in uidls]
        assert len(set(ids)) == 3
        assert client.uidl(3) == b"+OK 3 " + ids[2]
        for n, copy in enumerate(stored):
            response, lines, _ = client.retr(n + 1)
            assert response == f"+OK {sizes[n]} octets".encode()
            assert lines == lines_of(copy.data), "RETR returns the stored bytes exactly"
        _, top, _ = client.top(1, 2)
        head = stored[0].data.split(b"\r\n\r\n", 1)[0]
        assert top == head.split(b"\r\n") + [b"", b"First line.", b".leading dot"]
        assert client.noop() == b"+OK"
        assert client.dele(1).startswith(b"+OK")
        with pytest.raises(poplib.error_proto, match="already deleted"):
            client.retr(1)
        assert client.rset().startswith(b"+OK")
        assert client.stat()[0] == 3
        assert client.dele(2).startswith(b"+OK")
        assert client.quit().startswith(b"+OK")
    finally:
        client.close()
    # DELE took effect in the UPDATE state, durably before +OK: the store no longer has it.
    remaining = pop.db.messages(user)
    assert [s.uid for s in remaining] == [stored[0].uid, stored[2].uid]


def test_poplib_stls_on_110(pop, certs):
    user, password = pop.new_user()
    copy = pop.deliver(user, message("stls", BODY))
    client = poplib.POP3("127.0.0.1", pop.ports["pop3"], timeout=10)
    try:
        caps = client.capa()
        assert "STLS" in caps and "USER" not in caps and "SASL" not in caps, caps
        client.stls(client_context(ca=certs.pki.ca_cert, check_hostname=True))
        caps = client.capa()
        assert "STLS" not in caps and "USER" in caps and caps["SASL"] == ["PLAIN"], caps
        client.user(user)
        client.pass_(password)
        assert client.retr(1)[1] == lines_of(copy.data)
        client.quit()
    finally:
        client.close()


def test_auth_plain(pop):
    import base64

    user, password = pop.new_user()
    pop.deliver(user, message("auth plain", BODY))
    blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    with pop.pop3s() as conn:
        assert conn.cmd(f"AUTH PLAIN {blob}").startswith("+OK"), conn.log()
        assert conn.cmd("STAT").startswith("+OK 1 ")
    with pop.pop3s() as conn:
        assert conn.cmd("AUTH PLAIN") == "+ "
        assert conn.cmd(blob).startswith("+OK"), conn.log()
        assert conn.cmd("QUIT").startswith("+OK")


def test_dele_is_not_committed_without_quit(pop):
    """SECURITY-TESTS PO-05: DELE, DELE, then a TCP reset: everything is still there."""
    user, password = pop.new_user()
    for n in range(3):
        pop.deliver(user, message(f"po-05 {n}", BODY))
    conn = pop.login(user, password)
    assert conn.cmd("DELE 1").startswith("+OK")
    assert conn.cmd("DELE 2").startswith("+OK")
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # RST
    deadline = time.monotonic() + 5
    while True:  # the lock goes with the old session, a moment after the reset
        with pop.pop3s() as again:
            again.cmd(f"USER {user}")
            reply = again.cmd(f"PASS {password}")
            if reply.startswith("+OK"):
                assert again.cmd("STAT").startswith("+OK 3 ")
                break
            assert "[IN-USE]" in reply and time.monotonic() < deadline, reply
        time.sleep(0.1)
    assert len(pop.db.messages(user)) == 3


def test_second_session_gets_in_use(pop):
    """SECURITY-TESTS PO-06: an exclusive lock per maildrop (RFC 1939 §8, RFC 3206)."""
    user, password = pop.new_user()
    copies = [pop.deliver(user, message(f"po-06 {n}", BODY)) for n in range(2)]
    first = pop.login(user, password)
    with pop.pop3s() as second:
        assert second.cmd(f"USER {user}").startswith("+OK")
        assert second.cmd(f"PASS {password}") == "-ERR [IN-USE] Maildrop is in use by another session"
        assert first.cmd("DELE 1").startswith("+OK")
        assert first.cmd("QUIT").startswith("+OK")
        first.close()
        # The same connection may log in again now; message 1 is gone, numbers start at 1.
        assert second.cmd(f"USER {user}").startswith("+OK")
        assert second.cmd(f"PASS {password}").startswith("+OK Logged in, maildrop has 1 messages")
        assert second.cmd("RETR 1") == f"+OK {stuffed_size(copies[1].data)} octets"
        assert unstuff(second.multiline()) == copies[1].data


def test_byte_stuffing_and_line_ends(pop):
    """SECURITY-TESTS PO-07: stored lines ".", "..x" cannot end or desynchronise a RETR."""
    user, password = pop.new_user()
    body = b".\r\n..x\r\n.\r\n\r\n.\r\nQUIT\r\n"
    copy = pop.deliver(user, message("po-07", body))
    with pop.login(user, password) as conn:
        assert conn.cmd("RETR 1") == f"+OK {stuffed_size(copy.data)} octets"
        raw = conn.multiline()
        assert len(raw) == stuffed_size(copy.data), "the size announced is the size sent"
        assert b"\r\n..\r\n...x\r\n..\r\n\r\n..\r\nQUIT\r\n" in raw
        assert raw.endswith(b"\r\n")
        assert all(line.endswith(b"\r\n") for line in raw.splitlines(keepends=True))
        assert unstuff(raw) == copy.data
        assert conn.cmd("NOOP") == "+OK", "still in step after the message"


def test_unique_ids_persist_and_are_never_reused(pop):
    """SECURITY-TESTS PO-09 (the IMAP half waits for the IMAP service)."""
    user, password = pop.new_user()
    for n in range(3):
        pop.deliver(user, message(f"po-09 {n}", BODY))

    def uidl() -> list[bytes]:
        with pop.login(user, password) as conn:
            assert conn.cmd("UIDL") == "+OK"
            listing = conn.multiline().splitlines()
            assert conn.cmd("QUIT").startswith("+OK")
        return [line.split()[1] for line in listing]

    first = uidl()
    assert uidl() == first
    assert all(1 <= len(i) <= 70 and all(0x21 <= b <= 0x7E for b in i) for i in first)
    with pop.login(user, password) as conn:
        assert conn.cmd("DELE 1").startswith("+OK")
        assert conn.cmd("QUIT").startswith("+OK")
    pop.deliver(user, message("po-09 new", BODY))
    after = uidl()
    assert after[:2] == first[1:]
    assert after[2] not in first, "a new message never takes an old unique-id"


def test_list_sizes_match_retr_for_every_message(pop):
    user, password = pop.new_user()
    bodies = [b"", b"x", b"no final line end", b".", b"..\r\n.\r\n", b"a\r\n" * 1000]
    for n, body in enumerate(bodies):
        pop.deliver(user, message(f"sizes {n}", body + b"\r\n"))
    with pop.login(user, password) as conn:
        assert conn.cmd("LIST").startswith("+OK")
        sizes = [int(line.split()[1]) for line in conn.multiline().splitlines()]
        for n, size in enumerate(sizes):
            assert conn.cmd(f"RETR {n + 1}") == f"+OK {size} octets"
            assert len(conn.multiline()) == size


def test_ten_megabyte_retr_streams(make_pop):
    """A 10 MB message is sent without being held whole: the server's peak memory grows by
    far less than the message (measured in a fresh process, after the delivery and the
    login, whose size count reads the message once too)."""
    server = make_pop()
    user, password = server.new_user()
    line = b"0123456789" * 9 + b"\r\n"
    body = line * (10 * 1024 * 1024 // len(line))
    copy = server.deliver(user, message("ten megabytes", body))
    server.server.stop()
    server.server = server.instance.serve()
    with server.login(user, password) as conn:
        # After the login: argon2id alone takes 19 MiB for a moment (m=19456 KiB).
        before = server.vm_hwm_kib()
        assert conn.cmd("RETR 1") == f"+OK {len(copy.data)} octets"
        received = 0
        while True:
            got = conn.raw_line()
            assert got, "closed during RETR"
            if got == b".\r\n":
                break
            received += len(got)
        assert received == len(copy.data)
        assert conn.cmd("QUIT").startswith("+OK")
    grown = server.vm_hwm_kib() - before
    assert grown < 8 * 1024, f"peak memory grew by {grown} KiB for a 10 MB RETR"
