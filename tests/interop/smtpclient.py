"""A raw-socket SMTP client for the interop suite: exact bytes out, parsed replies in.

`Smtp` sends exactly the bytes it is given (one `sendall` = one segment on a TCP_NODELAY
loopback socket), reads replies with multi-line parsing (RFC 5321 §4.2.1), upgrades to TLS
in place (STARTTLS) and keeps a transcript of everything for assertion messages.
"""

from __future__ import annotations

import base64
import itertools
import re
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field

from harness import HOSTNAME
from rawconn import IO_TIMEOUT, SocketClient, connect
from tlsclient import client_context

# RFC 3463: class.subject.detail, sent after the basic code (RFC 2034 §4).
ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")
REPLY_LINE = re.compile(rb"(\d{3})([ -]?)(.*?)\r?\n", re.S)

_sources = itertools.count(0)


def next_source() -> str:
    """A loopback source address not used before in this test session (127.1.x.y).

    Per-IP counters (auth failure delays, connection limits) then never leak between tests.
    """
    n = next(_sources)
    return f"127.1.{n // 200 % 250}.{n % 200 + 2}"


class SmtpClosed(AssertionError):
    """The server closed the connection while a reply was expected."""


@dataclass
class Reply:
    code: int
    texts: list[str]  # the text of each line, after "ddd-" / "ddd "
    raw: bytes

    @property
    def text(self) -> str:
        return " ".join(self.texts)

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 code at the start of the first line, e.g. "5.7.1"."""
        m = ENHANCED.match(self.texts[0] if self.texts else "")
        return ".".join(m.groups()) if m else None

    def is_(self, code: int, enhanced: str | None = None) -> bool:
        return self.code == code and (enhanced is None or self.enhanced == enhanced)

    def __str__(self) -> str:
        return self.raw.decode("utf-8", "backslashreplace").rstrip("\r\n")

    def __repr__(self) -> str:
        return f"Reply({self.raw!r})"


def ehlo_keywords(reply: Reply) -> dict[str, list[str]]:
    """EHLO reply lines after the first, as {KEYWORD: [params]} (RFC 5321 §4.1.1.1)."""
    caps = {}
    for text in reply.texts[1:]:
        words = text.split()
        if words:
            caps[words[0].upper()] = words[1:]
    return caps


@dataclass
class Smtp(SocketClient):
    """One SMTP session over a plain or implicit-TLS socket."""

    port: int
    tls: bool = False
    source: str | None = None
    timeout: float = IO_TIMEOUT
    ctx: ssl.SSLContext | None = None
    server_hostname: str | None = HOSTNAME
    read_greeting: bool = True
    strict_eof: bool = False  # a TCP close without TLS close_notify raises SSLEOFError
    transcript: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.buf = b""
        self.eof = False
        self.caps: dict[str, list[str]] = {}
        self.greeting: Reply | None = None
        self.sock = connect(self.port, self.timeout, self.source)
        if self.tls:
            try:
                self._wrap(self.ctx or client_context())
            except BaseException:
                self.close()
                raise
        if self.read_greeting:
            self.greeting = self.reply()

    # --- transport -----------------------------------------------------------------------------

    def _wrap(self, ctx: ssl.SSLContext) -> None:
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.server_hostname,
                                    suppress_ragged_eofs=not self.strict_eof)
        self.transcript.append(f"-- TLS {self.sock.version()} {self.sock.cipher()[0]}")

    def send(self, data: bytes) -> None:
        """Send exactly these bytes in one sendall."""
        self.transcript.append("C: " + _show(data))
        self.sock.sendall(data)

    def _fill(self, timeout: float | None) -> bool:
        """Read more bytes into the buffer. False on EOF (or reset); raises socket.timeout."""
        if self.eof:
            return False
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        try:
            chunk = self.sock.recv(65536)
        except ssl.SSLEOFError:
            if self.strict_eof:
                raise
            chunk = b""
        except (ConnectionResetError, BrokenPipeError, ssl.SSLZeroReturnError):
            chunk = b""
        if not chunk:
            self.eof = True
            self.transcript.append("-- closed by the server")
            return False
        self.buf += chunk
        return True

    def read_line(self, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout(f"no complete reply line within the timeout; have {self.buf!r}\n{self.log()}")
            if not self._fill(left):
                raise SmtpClosed(f"connection closed while waiting for a reply (have {self.buf!r})\n{self.log()}")
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def reply(self, timeout: float | None = None) -> Reply:
        """One (possibly multi-line) reply."""
        raw, texts, code = b"", [], None
        while True:
            line = self.read_line(timeout)
            raw += line
            m = REPLY_LINE.fullmatch(line)
            if not m:
                self.transcript.append("S: " + _show(raw))
                raise AssertionError(f"malformed reply line {line!r}\n{self.log()}")
            if code is not None and int(m[1]) != code:
                self.transcript.append("S: " + _show(raw))
                raise AssertionError(f"reply code changed inside a multi-line reply: {raw!r}\n{self.log()}")
            code = int(m[1])
            texts.append(m[3].decode("utf-8", "backslashreplace"))
            if m[2] != b"-":
                break
        self.transcript.append("S: " + _show(raw))
        return Reply(code, texts, raw)

    def pending(self, wait: float = 1.0) -> bytes:
        """Whatever arrives within `wait` seconds (the buffer included); sets eof on close."""
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                if not self._fill(left):
                    break
            except (socket.timeout, TimeoutError):
                break
            except ssl.SSLError as error:
                self.transcript.append(f"-- TLS error {error}")
                self.eof = True
                break
        data, self.buf = self.buf, b""
        if data:
            self.transcript.append("S (unexpected): " + _show(data))
        return data

    def closed_within(self, wait: float) -> tuple[bool, bytes]:
        """(closed?, bytes received) after waiting up to `wait` seconds for the server to close."""
        data = b""
        deadline = time.monotonic() + wait
        while not self.eof and time.monotonic() < deadline:
            data += self.pending(min(0.2, max(0.01, deadline - time.monotonic())))
        return self.eof, data

    def log(self) -> str:
        return "transcript:\n  " + "\n  ".join(self.transcript[-60:])

    # --- commands ------------------------------------------------------------------------------

    def cmd(self, line: bytes | str, timeout: float | None = None) -> Reply:
        """Send one command line (CRLF appended) and read its reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def expect(self, line: bytes | str, code: int, enhanced: str | None = None,
               timeout: float | None = None) -> Reply:
        reply = self.cmd(line, timeout)
        assert reply.is_(code, enhanced), (
            f"{_show(line if isinstance(line, bytes) else line.encode())} -> {reply}, "
            f"expected {code} {enhanced or ''}\n{self.log()}")
        return reply

    def ehlo(self, name: str = "client.test") -> Reply:
        reply = self.expect(f"EHLO {name}", 250)
        self.caps = ehlo_keywords(reply)
        return reply

    def starttls(self, ctx: ssl.SSLContext | None = None) -> Reply:
        """STARTTLS, expect 220, then the handshake on the same socket (no bytes may be pending)."""
        reply = self.expect("STARTTLS", 220)
        assert not self.buf, f"bytes after the 220 to STARTTLS, before the handshake: {self.buf!r}\n{self.log()}"
        self._wrap(ctx or client_context())
        self.caps = {}
        return reply

    def upgrade(self, ctx: ssl.SSLContext | None = None, server_hostname: str | None = HOSTNAME) -> None:
        """TLS handshake now (after a 220 to STARTTLS read by the caller)."""
        self.server_hostname = server_hostname
        self._wrap(ctx or client_context())

    def auth_plain(self, user: str, password: str, authzid: str = "", timeout: float | None = 30) -> Reply:
        blob = base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()
        return self.cmd(f"AUTH PLAIN {blob}", timeout)

    def auth_login(self, user: str, password: str, timeout: float | None = 30) -> Reply:
        first = self.cmd("AUTH LOGIN")
        if first.code != 334:
            return first
        second = self.cmd(base64.b64encode(user.encode()))
        if second.code != 334:
            return second
        return self.cmd(base64.b64encode(password.encode()), timeout)

    def mail(self, sender: str, params: str = "") -> Reply:
        return self.cmd(f"MAIL FROM:<{sender}>{' ' + params if params else ''}")

    def rcpt(self, recipient: str, params: str = "") -> Reply:
        return self.cmd(f"RCPT TO:<{recipient}>{' ' + params if params else ''}")

    def data(self, message: bytes, timeout: float | None = None) -> Reply:
        """DATA (expect 354), then the dot-stuffed message and <CRLF>.<CRLF>; the final reply."""
        self.expect("DATA", 354)
        self.send(dot_stuff(message) + b".\r\n")
        return self.reply(timeout)

    def send_mail(self, sender: str, recipients: list[str], message: bytes, params: str = "") -> Reply:
        """A whole transaction; MAIL and every RCPT must get 250. Returns the reply after the data."""
        reply = self.mail(sender, params)
        assert reply.code == 250, f"MAIL FROM:<{sender}> -> {reply}\n{self.log()}"
        for rcpt in recipients:
            reply = self.rcpt(rcpt)
            assert reply.code == 250, f"RCPT TO:<{rcpt}> -> {reply}\n{self.log()}"
        return self.data(message)

    def quit(self) -> None:
        try:
            self.expect("QUIT", 221)
        finally:
            self.close()


def _show(data: bytes) -> str:
    text = repr(data)[2:-1]
    return text if len(text) <= 400 else text[:300] + f"...({len(data)} bytes)..." + text[-80:]


def dot_stuff(message: bytes) -> bytes:
    """RFC 5321 §4.5.2: double a leading dot on every line. `message` must end with CRLF."""
    assert message.endswith(b"\r\n"), "a message to send must end with CRLF"
    lines = message.split(b"\r\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)


def new_marker() -> str:
    return uuid.uuid4().hex[:20]


def build_message(marker: str, *, sender: str = "sender@ext.test", to: str = "alice@test.example",
                  subject: str | None = None, body: bytes = b"Hello from the interop suite.\r\n",
                  headers: bytes = b"", date: bool = True, message_id: bool = True,
                  from_header: bytes | None = None) -> bytes:
    """A small RFC 5322 message (CRLF line ends) carrying `marker` in X-Test-Id and Subject."""
    lines = [from_header if from_header is not None else f"From: <{sender}>".encode(),
             f"To: <{to}>".encode(), f"Subject: {subject or 'test ' + marker}".encode()]
    if date:
        lines.append(b"Date: Mon, 01 Jan 2024 00:00:00 +0000")
    if message_id:
        lines.append(f"Message-ID: <{marker}@client.test>".encode())
    lines.append(f"X-Test-Id: {marker}".encode())
    head = b"\r\n".join(line for line in lines if line) + b"\r\n" + headers
    return head + b"\r\n" + body
