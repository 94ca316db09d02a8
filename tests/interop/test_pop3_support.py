"""Shared set-up of the POP3 interop tests (no tests here): a server with the smtp, pop3 and
pop3s listeners, a fresh account per test, delivery over port 25, and a raw POP3 client that
sends exactly the bytes it is given and reads responses byte for byte."""

from __future__ import annotations

import poplib
import ssl
import uuid

import pytest

from mailserver import Running, serving, start_server, stop_server
from rawconn import IO_TIMEOUT, RawConn
from tlsclient import client_context

POP_SERVICES = ("smtp", "pop3", "pop3s")


class PopConn(RawConn):
    """One POP3 session over a plain or implicit-TLS socket, byte-exact (rawconn.RawConn)."""

    def cmd(self, line: str | bytes) -> str:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.line()

    def multiline(self) -> bytes:
        """The body of a multi-line response as sent (stuffed, CRLF), without ".\\r\\n"."""
        body = b""
        while True:
            line = self.raw_line()
            assert line, f"closed inside a multi-line response after {body[-200:]!r}"
            if line == b".\r\n":
                return body
            body += line

    def stls(self, ctx: ssl.SSLContext | None = None) -> None:
        reply = self.cmd("STLS")
        assert reply.startswith("+OK"), reply
        self.wrap(ctx)
        self.buf = b""


def unstuff(body: bytes) -> bytes:
    """A multi-line body read back (RFC 1939 §3): one leading "." removed per line."""
    return b"".join(line[1:] if line.startswith(b".") else line for line in body.splitlines(keepends=True))


def stuffed_size(data: bytes) -> int:
    """The octets RETR sends for stored `data` (CRLF lines; each leading "." doubled)."""
    return len(data) + sum(1 for line in data.split(b"\r\n") if line.startswith(b"."))


class PopServer(Running):
    """A running `sealpost serve` with the smtp, pop3 and pop3s listeners."""

    user_prefix = "pop"
    marker_header = "X-Pop-Test"

    def pop3s(self, **kwargs) -> PopConn:
        return PopConn(self.ports["pop3s"], tls=True, **kwargs)

    def pop3(self, **kwargs) -> PopConn:
        return PopConn(self.ports["pop3"], tls=False, **kwargs)

    def login(self, user: str, password: str, **kwargs) -> PopConn:
        conn = self.pop3s(**kwargs)
        assert conn.cmd(f"USER {user}").startswith("+OK"), conn.log()
        reply = conn.cmd(f"PASS {password}")
        assert reply.startswith("+OK"), f"{reply}\n{conn.log()}"
        return conn

    def poplib(self, ca=None) -> poplib.POP3_SSL:
        ctx = client_context(ca=ca, check_hostname=ca is not None)
        return poplib.POP3_SSL("127.0.0.1", self.ports["pop3s"], context=ctx, timeout=IO_TIMEOUT)

    def assert_alive(self) -> None:
        """ALIVE: the process runs and a fresh pop3s connection gets the greeting and CAPA."""
        assert self.server.alive(), f"server died:\n{self.log()}"
        with self.pop3s(timeout=5) as conn:
            assert conn.greeting.startswith("+OK "), conn.greeting
            assert conn.cmd("CAPA").startswith("+OK"), conn.log()


def start_pop_server(binary, folder, certs, limits: dict | None = None) -> PopServer:
    return start_server(PopServer, binary, folder, certs, POP_SERVICES, limits)


@pytest.fixture(scope="module")
def pop(sealpost_bin, certs, tmp_path_factory) -> PopServer:
    """One POP3 server per test module; each test makes its own accounts."""
    yield from serving(start_pop_server(sealpost_bin, tmp_path_factory.mktemp("pop"), certs))


@pytest.fixture
def make_pop(sealpost_bin, certs, tmp_path):
    """Factory: a fresh POP3 server with extra [limits], e.g. make_pop(limits={"idle_timeout_secs": 2})."""
    started: list[PopServer] = []

    def make(limits: dict | None = None) -> PopServer:
        server = start_pop_server(sealpost_bin, tmp_path / f"pop{len(started)}", certs, limits)
        started.append(server)
        return server

    yield make
    problems = [p for p in map(stop_server, started) if p]
    if problems:
        pytest.fail("\n".join(problems))


def message(subject: str, body: bytes) -> bytes:
    return (f"From: <sender@ext.test>\r\nTo: <someone@test.example>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@client.test>\r\n\r\n").encode() + body
