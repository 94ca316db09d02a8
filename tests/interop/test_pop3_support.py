"""Shared set-up of the POP3 interop tests (no tests here): a server with the smtp, pop3 and
pop3s listeners, a fresh account per test, delivery over port 25, and a raw POP3 client that
sends exactly the bytes it is given and reads responses byte for byte."""

from __future__ import annotations

import itertools
import poplib
import signal
import socket
import ssl
import time
import uuid

import pytest

from harness import HOSTNAME, Instance, assert_ok
from maildb import MailDb, Stored
from mailserver import configure, provision
from smtpclient import Smtp
from tlsclient import client_context

POP_SERVICES = ("smtp", "pop3", "pop3s")
IO_TIMEOUT = 10
_users = itertools.count(1)


class PopConn:
    """One POP3 session over a plain or implicit-TLS socket, byte-exact."""

    def __init__(self, port: int, tls: bool, source: str | None = None,
                 ctx: ssl.SSLContext | None = None, timeout: float = IO_TIMEOUT,
                 read_greeting: bool = True):
        self.timeout = timeout
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                       source_address=(source, 0) if source else None)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock: socket.socket = raw
        self.buf = b""
        self.transcript: list[bytes] = []
        if tls:
            self.sock = (ctx or client_context()).wrap_socket(raw, server_hostname=HOSTNAME)
        self.greeting = self.line() if read_greeting else ""

    def send(self, data: bytes) -> None:
        self.transcript.append(b"C: " + data)
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if data:
            self.buf += data
            return True
        return False

    def raw_line(self) -> bytes:
        """The next line with its CRLF; b"" once the server has closed."""
        while b"\n" not in self.buf:
            if not self._fill():
                line, self.buf = self.buf, b""
                return line
        line, self.buf = self.buf.split(b"\n", 1)
        self.transcript.append(b"S: " + line + b"\n")
        return line + b"\n"

    def line(self) -> str:
        return self.raw_line().decode("utf-8", "replace").rstrip("\r\n")

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
        self.sock = (ctx or client_context()).wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.buf = b""

    def closed_within(self, wait: float) -> bool:
        """Whether the server closes the connection within `wait` seconds (data is read and kept)."""
        deadline = time.monotonic() + wait
        self.sock.settimeout(0.2)
        try:
            while time.monotonic() < deadline:
                try:
                    if not self._fill():
                        return True
                except socket.timeout:
                    continue
                except OSError:
                    return True
            return False
        finally:
            self.sock.settimeout(self.timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> PopConn:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def log(self) -> str:
        return b"".join(self.transcript).decode("utf-8", "backslashreplace")[-3000:]


def unstuff(body: bytes) -> bytes:
    """A multi-line body read back (RFC 1939 §3): one leading "." removed per line."""
    return b"".join(line[1:] if line.startswith(b".") else line for line in body.splitlines(keepends=True))


def stuffed_size(data: bytes) -> int:
    """The octets RETR sends for stored `data` (CRLF lines; each leading "." doubled)."""
    return len(data) + sum(1 for line in data.split(b"\r\n") if line.startswith(b"."))


class PopServer:
    """A running `sealpost serve` with the smtp, pop3 and pop3s listeners."""

    def __init__(self, instance: Instance, server):
        self.instance = instance
        self.server = server
        self.ports = instance.ports
        self.db = MailDb(instance.folder / "data" / "sealpost.db")

    def new_user(self) -> tuple[str, str]:
        """A fresh account (and its password), so tests never share a maildrop."""
        address = f"pop{next(_users)}-{uuid.uuid4().hex[:6]}@test.example"
        password = f"pw-{uuid.uuid4().hex}"
        assert_ok(self.instance.run("user", "add", address, "--password-stdin", input=password + "\n"))
        return address, password

    def deliver(self, rcpt: str, message: bytes) -> Stored:
        """Sends `message` (CRLF lines) over port 25; returns the copy stored in rcpt's INBOX."""
        marker = uuid.uuid4().hex
        message = f"X-Pop-Test: {marker}\r\n".encode() + message
        with Smtp(self.ports["smtp"]) as smtp:
            smtp.ehlo("client.test")
            reply = smtp.send_mail("sender@ext.test", [rcpt], message)
            assert reply.code == 250, f"{reply}\n{smtp.log()}"
            smtp.quit()
        stored = self.db.wait_for(marker)
        assert len(stored) == 1 and stored[0].address == rcpt, stored
        assert stored[0].data.endswith(message)
        return stored[0]

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

    def vm_hwm_kib(self) -> int:
        """The server's peak resident memory so far (VmHWM, KiB)."""
        with open(f"/proc/{self.server.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def assert_alive(self) -> None:
        """ALIVE: the process runs and a fresh pop3s connection gets the greeting and CAPA."""
        assert self.server.alive(), f"server died:\n{self.log()}"
        with self.pop3s(timeout=5) as conn:
            assert conn.greeting.startswith("+OK "), conn.greeting
            assert conn.cmd("CAPA").startswith("+OK"), conn.log()

    def log(self) -> str:
        return self.server.log()


def start_pop_server(binary, folder, certs, limits: dict | None = None) -> PopServer:
    instance = Instance(binary, folder, certs, services=POP_SERVICES)
    configure(instance, None, limits)
    provision(instance)
    return PopServer(instance, instance.serve())


def stop_pop_server(pop: PopServer) -> str | None:
    if not pop.server.alive():
        return f"server was not running at teardown:\n{pop.log()[-4000:]}"
    code = pop.server.stop(signal.SIGTERM)
    return None if code == 0 else f"SIGTERM -> exit {code}:\n{pop.log()[-4000:]}"


@pytest.fixture(scope="module")
def pop(sealpost_bin, certs, tmp_path_factory) -> PopServer:
    """One POP3 server per test module; each test makes its own accounts."""
    server = start_pop_server(sealpost_bin, tmp_path_factory.mktemp("pop"), certs)
    yield server
    problem = stop_pop_server(server)
    if problem:
        pytest.fail(problem)


@pytest.fixture
def make_pop(sealpost_bin, certs, tmp_path):
    """Factory: a fresh POP3 server with extra [limits], e.g. make_pop(limits={"idle_timeout_secs": 2})."""
    started: list[PopServer] = []

    def make(limits: dict | None = None) -> PopServer:
        server = start_pop_server(sealpost_bin, tmp_path / f"pop{len(started)}", certs, limits)
        started.append(server)
        return server

    yield make
    problems = [p for p in map(stop_pop_server, started) if p]
    if problems:
        pytest.fail("\n".join(problems))


def message(subject: str, body: bytes) -> bytes:
    return (f"From: <sender@ext.test>\r\nTo: <someone@test.example>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@client.test>\r\n\r\n").encode() + body
