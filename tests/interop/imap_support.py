"""Shared set-up of the IMAP interop tests (no tests here): a server with the smtp, imap,
imaps and pop3s listeners, a fresh account per test, delivery over port 25, imaplib
sessions, and a raw IMAP client with a small parser for FETCH data (RFC 9051 §4, §9).

`ImapConn.send` writes its bytes with one `sendall` on a TCP_NODELAY socket (one segment on
loopback, SECURITY-TESTS §0); `response(tag)` reads untagged lines, continuation requests and
the tagged completion, reading the octets of every `{n}` literal the server sends; nothing is
parsed beyond that, so tests assert on the bytes the server wrote.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
import time
import uuid
from dataclasses import dataclass, field

import pytest

from mailserver import Running, serving, start_server
from rawconn import IO_TIMEOUT, RawConn
from tlsclient import client_context

IMAP_SERVICES = ("smtp", "imap", "imaps", "pop3s")
LITERAL_AT_END = re.compile(rb"\{(\d+)\}\r?\n$")


# --- a raw IMAP client --------------------------------------------------------------------------


class ImapClosed(AssertionError):
    """The server closed the connection while a response was expected."""


class Literal(bytes):
    """A command part sent as a synchronising literal: `{n}` CRLF, wait for `+`, the octets."""


@dataclass
class Response:
    """The lines of one command's response: untagged data and `+` lines, then the tagged line."""

    lines: list[bytes]  # every line before the tagged one, CRLF stripped, literals inlined
    tagged: str  # the tagged completion, CRLF stripped ("" if the server closed first)

    @property
    def status(self) -> str:
        parts = self.tagged.split(" ", 2)
        return parts[1] if len(parts) > 1 else ""

    def untagged(self, word: str | None = None) -> list[bytes]:
        """`* ...` lines, optionally only those whose first word after `* ` (or after the
        number of `* n WORD`) is `word`."""
        found = [line for line in self.lines if line.startswith(b"* ")]
        if word is None:
            return found
        word_b = word.encode().upper()
        out = []
        for line in found:
            parts = line.split(b" ", 3)
            if parts[1].upper() == word_b or (len(parts) > 2 and parts[1].isdigit() and parts[2].upper() == word_b):
                out.append(line)
        return out

    @property
    def continuations(self) -> list[bytes]:
        return [line for line in self.lines if line.startswith(b"+")]

    def code(self) -> str | None:
        """The response code of the tagged line, e.g. "APPENDUID 12 3" (RFC 9051 §7.1)."""
        m = re.match(r"\S+ \S+ \[([^\]]*)\]", self.tagged)
        return m[1] if m else None

    def fetches(self) -> dict[int, dict]:
        """`* n FETCH (...)` data by message number; items merged if a number repeats."""
        out: dict[int, dict] = {}
        for line in self.untagged("FETCH"):
            num, items = parse_fetch(line[2:])
            out.setdefault(num, {}).update(items)
        return out


class ImapConn(RawConn):
    """One IMAP session over a plain or implicit-TLS socket, byte-exact (rawconn.RawConn),
    reading responses with their literals."""

    transcript_limit = 300

    def take(self, count: int) -> bytes:
        """Exactly `count` octets (fewer only if the server closes)."""
        while len(self.buf) < count:
            if not self._fill():
                break
        data, self.buf = self.buf[:count], self.buf[count:]
        self.transcript.append(b"S: {" + str(len(data)).encode() + b" octets}\n")
        return data

    def full_line(self) -> bytes:
        """The next response line without CRLF, with every literal it announces inlined as
        `{n}\\r\\n` + octets (so the line reads like the bytes on the wire); b"" once the
        server has closed."""
        out = b""
        while True:
            line = self.raw_line()
            if not line:
                if not out:
                    return b""
                raise ImapClosed(f"closed inside a literal after {out[-200:]!r}\n{self.log()}")
            m = LITERAL_AT_END.search(line)
            if not m:
                return out + line.rstrip(b"\r\n")
            out += line + self.take(int(m.group(1)))

    # --- commands --------------------------------------------------------------------------------

    def response(self, tag: str, stop_at_continuation: bool = False) -> Response:
        """Lines until the one tagged `tag` (or a `+` when `stop_at_continuation`)."""
        lines: list[bytes] = []
        prefix = tag.encode() + b" "
        while True:
            line = self.full_line()
            if not line:
                return Response(lines, "")
            if line.startswith(prefix):
                return Response(lines, line.decode("utf-8", "replace"))
            lines.append(line)
            if stop_at_continuation and line.startswith(b"+"):
                return Response(lines, "")

    def cmd(self, tag: str, *parts: str | bytes) -> Response:
        """Sends `tag` and `parts` (joined, CRLF appended; one sendall unless a part is a
        `Literal`) and reads the response. A `Literal` part is announced as `{n}` and its octets
        follow the server's `+`; a refusal instead of the `+` ends the command there."""
        pending = tag.encode() + b" "
        lines: list[bytes] = []
        for part in parts:
            data = part.encode() if isinstance(part, str) else bytes(part)
            if not isinstance(part, Literal):
                pending += data
                continue
            self.send(pending + b"{%d}\r\n" % len(data))
            reply = self.response(tag, stop_at_continuation=True)
            lines += reply.lines
            if reply.tagged or not reply.lines or not reply.lines[-1].startswith(b"+"):
                return Response(lines, reply.tagged)
            pending = data
        self.send(pending + b"\r\n")
        reply = self.response(tag)
        return Response(lines + reply.lines, reply.tagged)

    def ok(self, tag: str, *parts: str | bytes) -> Response:
        """`cmd`, asserting a tagged OK."""
        reply = self.cmd(tag, *parts)
        assert reply.status == "OK", f"{tag} {parts!r} -> {reply.tagged!r}\n{self.log()}"
        return reply

    def login(self, user: str, password: str) -> Response:
        return self.ok("L", "LOGIN ", quote(user), " ", quote(password))

    def starttls(self, ctx: ssl.SSLContext | None = None) -> Response:
        """STARTTLS, its OK with no bytes after it, then the handshake."""
        reply = self.ok("T", "STARTTLS")
        assert not self.buf, f"bytes after the OK to STARTTLS: {self.buf!r}\n{self.log()}"
        self.wrap(ctx)
        return reply


def quote(text: str) -> str:
    """An IMAP quoted string (RFC 9051 §4.3)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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


class ImapServer(Running):
    """A running `sealpost serve` with the smtp, imap (143), imaps (993) and pop3s listeners."""

    user_prefix = "imap"
    marker_header = "X-Imap-Test"

    def imaps(self, **kwargs) -> ImapConn:
        return ImapConn(self.ports["imaps"], tls=True, **kwargs)

    def imap(self, **kwargs) -> ImapConn:
        """Port 143, plaintext (STARTTLS not yet done)."""
        return ImapConn(self.ports["imap"], tls=False, **kwargs)

    def login(self, user: str, password: str, select: str | None = "INBOX", **kwargs) -> ImapConn:
        """A raw imaps session, logged in (and with `select` selected)."""
        conn = self.imaps(**kwargs)
        try:
            conn.login(user, password)
            if select is not None:
                conn.ok("S", "SELECT ", quote(select))
        except BaseException:
            conn.close()
            raise
        return conn

    def imaplib_ssl(self, ca=None) -> imaplib.IMAP4_SSL:
        """IMAP4_SSL on imaps; with `ca` the chain is verified (the name is 127.0.0.1, unchecked)."""
        ctx = client_context(ca=ca)
        return imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=ctx, timeout=IO_TIMEOUT)

    def imaplib_starttls(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=IO_TIMEOUT)
        client.starttls(ssl_context=client_context())
        return client

    def mailbox_names(self, user: str) -> list[str]:
        rows = self.db._query(
            "SELECT mb.name FROM mailboxes mb JOIN accounts a ON a.id = mb.account_id "
            "WHERE a.address = ? ORDER BY mb.name", (user,))
        return [row[0] for row in rows]

    @contextlib.contextmanager
    def mem_bound(self, mib: int):
        """MEM(mib) (SECURITY-TESTS §0): the server's peak resident memory during the block
        exceeds its resident memory before it by less than `mib` MiB. The peak is reset first
        (`echo 5 > /proc/PID/clear_refs`) so earlier peaks cannot hide growth."""
        try:
            with open(f"/proc/{self.server.pid}/clear_refs", "w") as refs:
                refs.write("5")
            before = self.status_kib("VmRSS")
        except OSError:
            before = self.status_kib("VmHWM")
        yield
        grown = self.status_kib("VmHWM") - before
        assert grown < mib * 1024, f"MEM({mib}): peak resident memory grew by {grown / 1024:.1f} MiB"

    def assert_alive(self) -> None:
        """ALIVE (SECURITY-TESTS §0): the process runs and a fresh connection from 127.0.0.9
        gets the greeting and a NOOP answer within 2 s."""
        assert self.server.alive(), f"server died:\n{self.log()[-4000:]}"
        started = time.monotonic()
        with self.imaps(source="127.0.0.9", timeout=2) as conn:
            assert conn.greeting.startswith("* OK "), conn.greeting
            assert conn.cmd("alive", "NOOP").tagged.startswith("alive OK"), conn.log()
        assert time.monotonic() - started < 2, "ALIVE took 2 s or more"


def start_imap_server(binary, folder, certs, limits: dict | None = None,
                      log_level: str | None = None) -> ImapServer:
    return start_server(ImapServer, binary, folder, certs, IMAP_SERVICES, limits, log_level)


@pytest.fixture(scope="module")
def imap(sealpost_bin, certs, tmp_path_factory) -> ImapServer:
    """One IMAP server per test module; each test makes its own accounts."""
    yield from serving(start_imap_server(sealpost_bin, tmp_path_factory.mktemp("imap"), certs))


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
    resp = conn.ok("ap", "APPEND ", quote(mailbox), opts, " ", Literal(data))
    m = re.fullmatch(r"APPENDUID (\d+) (\d+)", resp.code() or "")
    assert m, f"no APPENDUID in {resp.tagged!r}"
    return Appended(int(m[2]), int(m[1]), data)
