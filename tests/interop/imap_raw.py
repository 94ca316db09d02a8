"""A raw-socket IMAP client for the security tests: exact bytes out, lines (with their literals)
in, and a server with the smtp, imap and imaps listeners plus accounts and delivery.

`ImapConn.send` writes its bytes with one `sendall` on a TCP_NODELAY socket (one segment on
loopback, SECURITY-TESTS §0); `response(tag)` reads untagged lines, continuation requests and
the tagged completion, reading the octets of every `{n}` literal the server sends; nothing is
parsed beyond that, so tests assert on the bytes the server wrote.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import signal
import socket
import ssl
import time
import uuid
from dataclasses import dataclass

from harness import HOSTNAME, Instance, assert_ok
from maildb import MailDb
from mailserver import configure, provision
from smtpclient import Smtp
from tlsclient import client_context

IMAP_SERVICES = ("smtp", "imap", "imaps")
IO_TIMEOUT = 10
LITERAL_AT_END = re.compile(rb"\{(\d+)\}\r?\n$")
_users = itertools.count(1)


class ImapClosed(AssertionError):
    """The server closed the connection while a response was expected."""


@dataclass
class Tagged:
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


class ImapConn:
    """One IMAP session over a plain or implicit-TLS socket, byte-exact."""

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

    # --- bytes -----------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.transcript.append(b"C: " + data[:300] + (b"..." if len(data) > 300 else b""))
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            data = b""
        if data:
            self.buf += data
            return True
        return False

    def raw_line(self) -> bytes:
        """The next line with its CRLF; what is left (maybe b"") once the server has closed."""
        while b"\n" not in self.buf:
            if not self._fill():
                line, self.buf = self.buf, b""
                if line:
                    self.transcript.append(b"S: " + line)
                return line
        line, self.buf = self.buf.split(b"\n", 1)
        self.transcript.append(b"S: " + line[:300] + b"\n")
        return line + b"\n"

    def take(self, count: int) -> bytes:
        """Exactly `count` octets (fewer only if the server closes)."""
        while len(self.buf) < count:
            if not self._fill():
                break
        data, self.buf = self.buf[:count], self.buf[count:]
        self.transcript.append(b"S: {" + str(len(data)).encode() + b" octets}\n")
        return data

    def line(self) -> str:
        return self.raw_line().decode("utf-8", "replace").rstrip("\r\n")

    def line_within(self, wait: float) -> str | None:
        """The next line (CRLF stripped) if it arrives within `wait` seconds; None if nothing
        complete came in that time ("" when the server closed)."""
        self.sock.settimeout(wait)
        try:
            return self.line()
        except (socket.timeout, TimeoutError):
            return None
        finally:
            self.sock.settimeout(self.timeout)

    def send_until_closed(self, data: bytes) -> bool:
        """Sends `data`; False if the server closed (or reset) before taking all of it."""
        try:
            self.send(data)
            return True
        except (OSError, ssl.SSLError):
            return False

    def full_line(self) -> bytes:
        """The next response line without CRLF, with every literal it announces inlined as
        `{n}\\r\\n` + octets (so the line reads like the bytes on the wire)."""
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

    def response(self, tag: str, stop_at_continuation: bool = False) -> Tagged:
        """Lines until the one tagged `tag` (or a `+` when `stop_at_continuation`)."""
        lines: list[bytes] = []
        prefix = tag.encode() + b" "
        while True:
            line = self.full_line()
            if not line:
                return Tagged(lines, "")
            if line.startswith(prefix):
                return Tagged(lines, line.decode("utf-8", "replace"))
            lines.append(line)
            if stop_at_continuation and line.startswith(b"+"):
                return Tagged(lines, "")

    def cmd(self, tag: str, text: str | bytes) -> Tagged:
        """Sends `tag text\\r\\n` and reads its response."""
        text_b = text.encode() if isinstance(text, str) else text
        self.send(tag.encode() + b" " + text_b + b"\r\n")
        return self.response(tag)

    def ok(self, tag: str, text: str | bytes) -> Tagged:
        reply = self.cmd(tag, text)
        assert reply.status == "OK", f"{tag} {text!r} -> {reply.tagged!r}\n{self.log()}"
        return reply

    def login(self, user: str, password: str) -> None:
        self.ok("L", f'LOGIN "{user}" "{password}"')

    def starttls(self, ctx: ssl.SSLContext | None = None) -> None:
        reply = self.cmd("T", "STARTTLS")
        assert reply.status == "OK", f"{reply.tagged}\n{self.log()}"
        self.sock = (ctx or client_context()).wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.buf = b""

    def read_for(self, seconds: float) -> bytes:
        """Whatever the server sends within `seconds` (read into the buffer and returned)."""
        deadline = time.monotonic() + seconds
        self.sock.settimeout(0.1)
        try:
            while time.monotonic() < deadline:
                try:
                    if not self._fill():
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
        finally:
            self.sock.settimeout(self.timeout)
        return self.buf

    def closed_within(self, wait: float) -> bool:
        """Whether the server closes the connection within `wait` seconds (data is kept in buf)."""
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

    def __enter__(self) -> ImapConn:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def log(self) -> str:
        return b"".join(self.transcript).decode("utf-8", "backslashreplace")[-3000:]


# --- a server ---------------------------------------------------------------------------------------


class ImapServer:
    """A running `sealpost serve` with the smtp, imap (143) and imaps (993) listeners."""

    def __init__(self, instance: Instance, server):
        self.instance = instance
        self.server = server
        self.ports = instance.ports
        self.db = MailDb(instance.folder / "data" / "sealpost.db")

    def new_user(self) -> tuple[str, str]:
        """A fresh account and its password, so tests never share mailboxes."""
        address = f"imapsec{next(_users)}-{uuid.uuid4().hex[:6]}@test.example"
        password = f"pw-{uuid.uuid4().hex}"
        assert_ok(self.instance.run("user", "add", address, "--password-stdin", input=password + "\n"))
        return address, password

    def deliver(self, rcpt: str, subject: str, body: bytes = b"Hello.\r\n") -> str:
        """Sends a message over port 25 to `rcpt`; returns its Message-ID (without <>)."""
        message_id = f"{uuid.uuid4().hex}@client.test"
        message = (f"From: <sender@ext.test>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n"
                   f"Message-ID: <{message_id}>\r\n\r\n").encode() + body
        with Smtp(self.ports["smtp"]) as smtp:
            smtp.ehlo("client.test")
            reply = smtp.send_mail("sender@ext.test", [rcpt], message)
            assert reply.code == 250, f"{reply}\n{smtp.log()}"
            smtp.quit()
        return message_id

    def imaps(self, **kwargs) -> ImapConn:
        return ImapConn(self.ports["imaps"], tls=True, **kwargs)

    def imap(self, **kwargs) -> ImapConn:
        """Port 143, plaintext (STARTTLS not yet done)."""
        return ImapConn(self.ports["imap"], tls=False, **kwargs)

    def login(self, user: str, password: str, select: str | None = "INBOX", **kwargs) -> ImapConn:
        conn = self.imaps(**kwargs)
        try:
            conn.login(user, password)
            if select:
                conn.ok("S", f'SELECT "{select}"')
        except BaseException:
            conn.close()
            raise
        return conn

    def mailbox_names(self, user: str) -> list[str]:
        rows = self.db._query(
            "SELECT mb.name FROM mailboxes mb JOIN accounts a ON a.id = mb.account_id "
            "WHERE a.address = ? ORDER BY mb.name", (user,))
        return [row[0] for row in rows]

    def status_kib(self, field: str) -> int:
        """A field of /proc/<pid>/status in KiB (VmHWM: peak resident memory; VmRSS: now)."""
        with open(f"/proc/{self.server.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.server.pid}/status")

    def vm_hwm_kib(self) -> int:
        return self.status_kib("VmHWM")

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

    def log(self) -> str:
        return self.server.log()


def start_imap_server(binary, folder, certs, limits: dict | None = None,
                      log_level: str | None = None) -> ImapServer:
    instance = Instance(binary, folder, certs, services=IMAP_SERVICES)
    if log_level:
        instance.config.log = {"level": log_level}
    configure(instance, None, limits)
    provision(instance)
    return ImapServer(instance, instance.serve())


def stop_imap_server(imap: ImapServer) -> str | None:
    if not imap.server.alive():
        return f"server was not running at teardown (exit {imap.server.proc.returncode}):\n{imap.log()[-4000:]}"
    code = imap.server.stop(signal.SIGTERM)
    return None if code == 0 else f"SIGTERM -> exit {code}:\n{imap.log()[-4000:]}"
