"""The socket side shared by the raw-socket protocol clients of the interop suite
(smtpclient.Smtp, imap_support.ImapConn, test_pop3_support.PopConn).

`connect` opens a TCP_NODELAY loopback connection, so one `sendall` is one segment
(SECURITY-TESTS §0). `SocketClient` closes its socket and is a context manager. `RawConn` is a
byte-exact line client: `send` writes exactly its bytes, what the server sends is buffered in
`buf` and read as lines (the LF kept), and `transcript` records both directions ("C: ", "S: "
prefixed bytes) for assertion messages; a server that closes or resets ends a read quietly
(a short or empty line), so tests can assert on how a session ended.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Self

from harness import HOSTNAME
from tlsclient import client_context

IO_TIMEOUT = 10


def connect(port: int, timeout: float, source: str | None = None) -> socket.socket:
    """A TCP_NODELAY connection to 127.0.0.1:`port`, from the address `source` when given."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0) if source else None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class SocketClient:
    """A client owning `self.sock`: `close` (errors ignored) and the `with` protocol."""

    sock: socket.socket

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RawConn(SocketClient):
    """One session over a plain or implicit-TLS socket, byte-exact, with a transcript; the
    greeting line (CRLF stripped) is read unless `read_greeting` is False."""

    # Octets of each sent chunk and received line the transcript keeps (None: all of them).
    transcript_limit: int | None = None

    def __init__(self, port: int, tls: bool, source: str | None = None,
                 ctx: ssl.SSLContext | None = None, timeout: float = IO_TIMEOUT,
                 read_greeting: bool = True):
        self.timeout = timeout
        self.sock = connect(port, timeout, source)
        self.buf = b""
        self.transcript: list[bytes] = []
        if tls:
            try:
                self.wrap(ctx)
            except BaseException:
                self.close()
                raise
        self.greeting = self.line() if read_greeting else ""

    def wrap(self, ctx: ssl.SSLContext | None = None) -> None:
        """The TLS handshake on the socket as it is (implicit TLS, or after STARTTLS/STLS)."""
        self.sock = (ctx or client_context()).wrap_socket(self.sock, server_hostname=HOSTNAME)

    def _clip(self, data: bytes) -> bytes:
        limit = self.transcript_limit
        return data if limit is None or len(data) <= limit else data[:limit] + b"..."

    # --- writing -----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Exactly these bytes, in one sendall."""
        self.transcript.append(b"C: " + self._clip(data))
        self.sock.sendall(data)

    def send_until_closed(self, data: bytes) -> bool:
        """Sends `data`; False if the server closed (or reset) before taking all of it."""
        try:
            self.send(data)
            return True
        except (OSError, ssl.SSLError):
            return False

    # --- reading -----------------------------------------------------------------------------

    def _fill(self) -> bool:
        """More bytes into `buf`; False once the server has closed (or reset). Raises
        socket.timeout when nothing comes within the socket's timeout."""
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
        self.transcript.append(b"S: " + self._clip(line) + b"\n")
        return line + b"\n"

    def line(self) -> str:
        """The next line, CRLF stripped ("" once the server has closed)."""
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

    def read_for(self, seconds: float) -> bytes:
        """Whatever the server sends within `seconds` (read into the buffer and returned)."""
        self._read_until_closed(seconds, poll=0.1)
        return self.buf

    def closed_within(self, wait: float) -> bool:
        """Whether the server closes the connection within `wait` seconds (data is kept in buf)."""
        return self._read_until_closed(wait, poll=0.2)

    def _read_until_closed(self, wait: float, poll: float) -> bool:
        """Reads into `buf` for up to `wait` seconds (`poll`-second reads); whether the server
        closed (or reset) the connection in that time."""
        deadline = time.monotonic() + wait
        self.sock.settimeout(poll)
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

    def log(self) -> str:
        return b"".join(self.transcript).decode("utf-8", "backslashreplace")[-3000:]
