"""Shared set-up of the IMAP interop tests (no tests here): a server with the smtp, imap,
imaps and pop3s listeners, a fresh account per test, delivery over port 25, imaplib
sessions, and a raw IMAP client that sends exactly the bytes it is given and reads whole
responses (literals included), with a small parser for FETCH data (RFC 9051 §4, §9)."""

from __future__ import annotations

import imaplib
import itertools
import re
import signal
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field

import pytest

from harness import HOSTNAME, Instance, assert_ok
from maildb import MailDb, Stored
from mailserver import configure, provision
from smtpclient import Smtp
from tlsclient import client_context

IMAP_SERVICES = ("smtp", "imap", "imaps", "pop3s")
IO_TIMEOUT = 10
_users = itertools.count(1)


# --- a raw IMAP client --------------------------------------------------------------------------


class Literal(bytes):
    """A command part sent as a synchronising literal: `{n}` CRLF, wait for `+`, the octets."""


class NonSyncLiteral(bytes):
    """A command part sent as a LITERAL+ non-synchronising literal `{n+}` (RFC 7888)."""


@dataclass
class Response:
    """The answer to one command: the untagged responses before it and the tagged line."""

    tag: str
    tagged: bytes  # the tagged status line, CRLF stripped
    untagged: list[bytes]  # each untagged/continuation response, literals inlined, CRLF stripped
    transcript: str = ""

    @property
    def status(self) -> str:
        parts = self.tagged.split(b" ", 2)
        return parts[1].decode().upper() if len(parts) > 1 else ""

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    @property
    def text(self) -> str:
        return self.tagged.decode("utf-8", "replace")

    def code(self) -> str | None:
        """The response code of the tagged line, e.g. "APPENDUID 12 3" (RFC 9051 §7.1)."""
        m = re.match(rb"\S+ \S+ \[([^\]]*)\]", self.tagged)
        return m[1].decode() if m else None

    def lines(self, keyword: str | None = None) -> list[bytes]:
        """Untagged responses (without "* "), optionally those whose first data word after an
        optional number is `keyword` (e.g. "FETCH", "EXISTS", "LIST")."""
        out = []
        for line in self.untagged:
            if not line.startswith(b"* "):
                continue
            body = line[2:]
            if keyword is None:
                out.append(body)
                continue
            words = body.split(b" ", 2)
            first = words[1] if words[0].isdigit() and len(words) > 1 else words[0]
            if first.upper() == keyword.upper().encode():
                out.append(body)
        return out

    def fetches(self) -> dict[int, dict]:
        """`* n FETCH (...)` data by message number; items merged if a number repeats."""
        out: dict[int, dict] = {}
        for line in self.lines("FETCH"):
            num, items = parse_fetch(line)
            out.setdefault(num, {}).update(items)
        return out

    def __str__(self) -> str:
        return self.transcript


class ImapConn:
    """One IMAP session over a plain or implicit-TLS socket, byte-exact, with a transcript."""

    def __init__(self, port: int, tls: bool = True, timeout: float = IO_TIMEOUT,
                 ctx: ssl.SSLContext | None = None, read_greeting: bool = True,
                 tag_prefix: str = "A"):
        self.timeout = timeout
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock: socket.socket = raw
        self.buf = b""
        self.eof = False
        self.transcript: list[str] = []
        self.tags = (f"{tag_prefix}{n:03d}" for n in itertools.count(1))
        if tls:
            self.sock = (ctx or client_context()).wrap_socket(raw, server_hostname=HOSTNAME)
        self.greeting = self.read_response() if read_greeting else b""

    # --- transport -----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.transcript.append("C: " + _show(data))
        self.sock.sendall(data)

    def _fill(self, timeout: float) -> bool:
        if self.eof:
            return False
        self.sock.settimeout(max(timeout, 0.001))
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.eof = True
            self.transcript.append("-- closed by the server")
            return False
        self.buf += chunk
        return True

    def _read_line(self, deadline: float) -> bytes:
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete line in time; have {self.buf[:300]!r}\n{self.log()}")
            try:
                if not self._fill(left):
                    raise ConnectionError(f"closed by the server; have {self.buf[:300]!r}\n{self.log()}")
            except (socket.timeout, TimeoutError):
                continue
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"literal of {n} octets not complete in time\n{self.log()}")
            try:
                if not self._fill(left):
                    raise ConnectionError(f"closed inside a literal\n{self.log()}")
            except (socket.timeout, TimeoutError):
                continue
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, timeout: float | None = None) -> bytes:
        """One whole response line with its literals inlined, CRLF stripped."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        out = b""
        while True:
            line = self._read_line(deadline)
            out += line
            m = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if not m:
                break
            out += self._read_exact(int(m[1]), deadline)
        self.transcript.append("S: " + _show(out))
        return out[:-2]

    def pending(self, wait: float = 0.5) -> list[bytes]:
        """The responses that arrive within `wait` seconds (none expected to be partial)."""
        out = []
        deadline = time.monotonic() + wait
        while True:
            if b"\r\n" in self.buf:
                out.append(self.read_response())
                continue
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                return out
            try:
                self._fill(left)
            except (socket.timeout, TimeoutError):
                return out

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> ImapConn:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def log(self) -> str:
        return "transcript:\n  " + "\n  ".join(self.transcript[-80:])

    # --- commands ------------------------------------------------------------------------------

    def command(self, *parts: str | bytes, tag: str | None = None, timeout: float | None = None) -> Response:
        """Send a command (tag added) made of `parts`; `Literal` parts go as synchronising
        literals (waiting for the `+`), `NonSyncLiteral` as `{n+}`. Returns the Response
        once the tagged line arrived. A refused literal (tagged answer instead of `+`)
        ends the command early."""
        tag = tag or next(self.tags)
        pending = tag.encode() + b" "
        untagged: list[bytes] = []
        deadline_timeout = timeout if timeout is not None else self.timeout
        for part in parts:
            data = part.encode() if isinstance(part, str) else bytes(part)
            if isinstance(part, Literal):
                self.send(pending + f"{{{len(data)}}}\r\n".encode())
                pending = b""
                while True:
                    resp = self.read_response(deadline_timeout)
                    if resp.startswith(b"+"):
                        break
                    if resp.startswith(tag.encode() + b" "):
                        return Response(tag, resp, untagged, self.log())
                    untagged.append(resp)
                pending = data
            elif isinstance(part, NonSyncLiteral):
                pending += f"{{{len(data)}+}}\r\n".encode() + data
            else:
                pending += data
        self.send(pending + b"\r\n")
        return self.finish(tag, untagged, deadline_timeout)

    def finish(self, tag: str, untagged: list[bytes] | None = None, timeout: float | None = None) -> Response:
        """Read responses until the tagged line of `tag`."""
        untagged = untagged if untagged is not None else []
        while True:
            resp = self.read_response(timeout)
            if resp.startswith(tag.encode() + b" "):
                return Response(tag, resp, untagged, self.log())
            untagged.append(resp)

    def ok(self, *parts: str | bytes, timeout: float | None = None) -> Response:
        """`command`, asserting a tagged OK."""
        resp = self.command(*parts, timeout=timeout)
        assert resp.ok, f"{parts!r} -> {resp.tagged!r}\n{self.log()}"
        return resp

    def starttls(self, ctx: ssl.SSLContext | None = None) -> Response:
        resp = self.ok("STARTTLS")
        assert not self.buf, f"bytes after the OK to STARTTLS: {self.buf!r}"
        self.sock = (ctx or client_context()).wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.transcript.append(f"-- TLS {self.sock.version()}")
        return resp

    def login(self, user: str, password: str) -> Response:
        return self.ok("LOGIN ", quote(user), " ", quote(password))

    def select(self, mailbox: str = "INBOX", *params: str) -> Response:
        extra = f" ({' '.join(params)})" if params else ""
        return self.ok("SELECT ", quote(mailbox), extra)


def quote(text: str) -> str:
    """An IMAP quoted string (RFC 9051 §4.3)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _show(data: bytes) -> str:
    text = repr(data)[2:-1]
    return text if len(text) <= 600 else text[:400] + f"...({len(data)} bytes)..." + text[-120:]


# --- parsing responses -------------------------------------------------------------------------


class Atom(str):
    """An atom (or NIL-less bare token) as opposed to a string."""


def parse_sexp(data: bytes, pos: int = 0) -> tuple[object, int]:
    """One value at `pos`: a list, a string (bytes, from quoted or literal), NIL (None) or an
    Atom; atoms keep bracketed sections with their spaces (`BODY[HEADER.FIELDS (A B)]<0>`)."""
    while pos < len(data) and data[pos:pos + 1] == b" ":
        pos += 1
    c = data[pos:pos + 1]
    if c == b"(":
        items: list = []
        pos += 1
        while True:
            while data[pos:pos + 1] == b" ":
                pos += 1
            if data[pos:pos + 1] == b")":
                return items, pos + 1
            if pos >= len(data):
                raise ValueError(f"unterminated list in {data[:200]!r}")
            value, pos = parse_sexp(data, pos)
            items.append(value)
    if c == b'"':
        out = bytearray()
        pos += 1
        while data[pos:pos + 1] != b'"':
            if data[pos:pos + 1] == b"\\":
                pos += 1
            out += data[pos:pos + 1]
            pos += 1
        return bytes(out), pos + 1
    m = re.compile(rb"~?\{(\d+)\+?\}\r\n").match(data, pos)
    if m:
        start = m.end()
        n = int(m[1])
        return data[start:start + n], start + n
    start = pos
    depth = 0
    while pos < len(data):
        ch = data[pos:pos + 1]
        if ch == b"[":
            depth += 1
        elif ch == b"]":
            depth -= 1
        elif depth == 0 and ch in b" ()":
            break
        pos += 1
    token = data[start:pos].decode("utf-8", "replace")
    if token.upper() == "NIL":
        return None, pos
    return Atom(token), pos


def parse_fetch(line: bytes) -> tuple[int, dict]:
    """`n FETCH (K V K V ...)` (without "* ") -> (n, {K upper: V})."""
    m = re.match(rb"(\d+) FETCH ", line, re.I)
    assert m, line
    items, _ = parse_sexp(line, m.end())
    assert isinstance(items, list) and len(items) % 2 == 0, line
    return int(m[1]), {str(k).upper(): v for k, v in zip(items[::2], items[1::2])}


def sexp_text(value) -> str:
    """Render a parsed value back the way tests write expected structures: strings quoted,
    atoms bare, NIL, lists in parentheses."""
    if value is None:
        return "NIL"
    if isinstance(value, Atom):
        return str(value)
    if isinstance(value, bytes):
        return quote(value.decode("utf-8", "replace"))
    if isinstance(value, list):
        return "(" + " ".join(sexp_text(v) for v in value) + ")"
    return str(value)


def capabilities(line: bytes) -> set[str]:
    """The capability names in a `* CAPABILITY ...` or `* OK [CAPABILITY ...]` response."""
    m = re.search(rb"CAPABILITY ([^\]\r\n]*)", line, re.I)
    return {w.upper() for w in m[1].decode().split()} if m else set()


# --- the server --------------------------------------------------------------------------------


class ImapServer:
    """A running `sealpost serve` with smtp, imap, imaps and pop3s listeners."""

    def __init__(self, instance: Instance, server):
        self.instance = instance
        self.server = server
        self.ports = instance.ports
        self.db = MailDb(instance.folder / "data" / "sealpost.db")

    def new_user(self) -> tuple[str, str]:
        """A fresh account (and its password), so tests never share mailboxes."""
        address = f"imap{next(_users)}-{uuid.uuid4().hex[:6]}@test.example"
        password = f"pw-{uuid.uuid4().hex}"
        assert_ok(self.instance.run("user", "add", address, "--password-stdin", input=password + "\n"))
        return address, password

    def deliver(self, rcpt: str, message: bytes) -> Stored:
        """Sends `message` (CRLF lines) over port 25; returns the copy stored in rcpt's INBOX
        (trace headers prepended)."""
        marker = uuid.uuid4().hex
        message = f"X-Imap-Test: {marker}\r\n".encode() + message
        with Smtp(self.ports["smtp"]) as smtp:
            smtp.ehlo("client.test")
            reply = smtp.send_mail("sender@ext.test", [rcpt], message)
            assert reply.code == 250, f"{reply}\n{smtp.log()}"
            smtp.quit()
        stored = self.db.wait_for(marker)
        assert len(stored) == 1 and stored[0].address == rcpt, stored
        return stored[0]

    def raw(self, tls: bool = True, **kwargs) -> ImapConn:
        """A raw session on imaps (tls) or imap (plain, STARTTLS not yet done)."""
        return ImapConn(self.ports["imaps" if tls else "imap"], tls=tls, **kwargs)

    def login(self, user: str, password: str, select: str | None = None, **kwargs) -> ImapConn:
        """A raw imaps session, logged in (and with `select` selected)."""
        conn = self.raw(**kwargs)
        conn.login(user, password)
        if select is not None:
            conn.select(select)
        return conn

    def imaplib_ssl(self, ca=None) -> imaplib.IMAP4_SSL:
        """IMAP4_SSL on imaps; with `ca` the chain is verified (the name is 127.0.0.1, unchecked)."""
        ctx = client_context(ca=ca)
        return imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=ctx, timeout=IO_TIMEOUT)

    def imaplib_starttls(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=IO_TIMEOUT)
        client.starttls(ssl_context=client_context())
        return client

    def assert_alive(self) -> None:
        assert self.server.alive(), f"server died:\n{self.log()[-4000:]}"

    def log(self) -> str:
        return self.server.log()


def start_imap_server(binary, folder, certs, limits: dict | None = None) -> ImapServer:
    instance = Instance(binary, folder, certs, services=IMAP_SERVICES)
    configure(instance, None, limits)
    provision(instance)
    return ImapServer(instance, instance.serve())


def stop_imap_server(imap: ImapServer) -> str | None:
    if not imap.server.alive():
        return f"server was not running at teardown:\n{imap.log()[-4000:]}"
    code = imap.server.stop(signal.SIGTERM)
    return None if code == 0 else f"SIGTERM -> exit {code}:\n{imap.log()[-4000:]}"


@pytest.fixture(scope="module")
def imap(sealpost_bin, certs, tmp_path_factory) -> ImapServer:
    """One IMAP server per test module; each test makes its own accounts."""
    server = start_imap_server(sealpost_bin, tmp_path_factory.mktemp("imap"), certs)
    yield server
    problem = stop_imap_server(server)
    if problem:
        pytest.fail(problem)


# --- imaplib helpers ---------------------------------------------------------------------------

# Commands imaplib 3.11 does not know; registered so `_simple_command` accepts them.
for _name, _states in (("ID", ("NONAUTH", "AUTH", "SELECTED", "LOGOUT")), ("IDLE", ("AUTH", "SELECTED")),
                       ("UNSELECT", ("SELECTED",))):
    imaplib.Commands.setdefault(_name, _states)


def take(client: imaplib.IMAP4, name: str) -> list[bytes]:
    """The untagged responses (or untagged response codes) of type `name` imaplib collected
    since the last take/clear, removed from its store."""
    return [d for d in client.untagged_responses.pop(name.upper(), []) if d is not None]


def clear(client: imaplib.IMAP4) -> None:
    client.untagged_responses.clear()


def tagged_code(data: list) -> str | None:
    """The response code of a tagged completion as imaplib returns it (`[b'[CODE ...] text']`)."""
    text = data[-1].decode() if data and isinstance(data[-1], bytes) else ""
    m = re.match(r"\[([^\]]*)\]", text)
    return m[1] if m else None


def fetch_data(data: list) -> dict[int, dict]:
    """imaplib's FETCH data (`b'n (...)'` strings and `(head, literal)` tuples) parsed into
    {message number: {ITEM: value}}; items of repeated numbers are merged."""
    responses: list[bytes] = []
    for part in data:
        if isinstance(part, tuple):
            head, literal = part
            if re.match(rb"\d+ \(", head) or not responses:
                responses.append(b"")
            responses[-1] += head + b"\r\n" + literal
        elif part is None:
            continue
        elif re.match(rb"\d+ \(", part) and not (responses and _open_literal(responses[-1])):
            responses.append(part)
        else:
            responses[-1] += part
    out: dict[int, dict] = {}
    for raw in responses:
        num, rest = raw.split(b" ", 1)
        n, items = parse_fetch(num + b" FETCH " + rest)
        out.setdefault(n, {}).update(items)
    return out


def _open_literal(raw: bytes) -> bool:
    """Whether a response rebuilt so far still misses its closing parenthesis."""
    try:
        parse_sexp(raw, raw.index(b"("))
        return False
    except (ValueError, IndexError):
        return True


def ifetch(client: imaplib.IMAP4, msgset: str, items: str, uid: bool = False) -> dict[int, dict]:
    """FETCH (or UID FETCH) through imaplib, parsed by message number."""
    typ, data = client.uid("FETCH", msgset, items) if uid else client.fetch(msgset, items)
    assert typ == "OK", (typ, data)
    return fetch_data(data)


def flags_of(item) -> set[str]:
    """A FLAGS value parsed by parse_sexp as a set of flag names."""
    return {str(f) for f in item}


# --- messages ----------------------------------------------------------------------------------


def simple_message(subject: str, body: bytes = b"Hello over IMAP.\r\n", *, sender: str = "sender@ext.test",
                   to: str = "someone@test.example", date: str = "Mon, 01 Jan 2024 10:00:00 +0000",
                   headers: bytes = b"") -> bytes:
    """A small RFC 5322 message with CRLF line ends."""
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@client.test>\r\n").encode() + headers + b"\r\n" + body


@dataclass
class Appended:
    uid: int
    uidvalidity: int
    data: bytes = field(repr=False)


def append(conn: ImapConn, mailbox: str, data: bytes, flags: str = "", date: str | None = None) -> Appended:
    """APPEND over a raw session; returns the APPENDUID (RFC 4315 §3)."""
    opts = (f" ({flags})" if flags else "") + (f' "{date}"' if date else "")
    resp = conn.ok("APPEND ", quote(mailbox), opts, " ", Literal(data))
    m = re.fullmatch(r"APPENDUID (\d+) (\d+)", resp.code() or "")
    assert m, f"no APPENDUID in {resp.tagged!r}"
    return Appended(int(m[2]), int(m[1]), data)
