"""What the outbound-delivery tests share: `sealpost queue list` parsed, waiting for a
condition with a deadline, and a fake SMTP server standing in for a remote MX (FakeSmtp)."""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass

from harness import assert_ok, lines

QUEUE_HEADER = re.compile(r"^(\d+) recipients? waiting in (\d+) messages?$")
QUEUE_LINE = re.compile(r"^(\d+) (\S+) attempts=(\d+) next=(now|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) error=(.+)$")


def queue_entries(mail) -> list[re.Match]:
    """`sealpost queue list`, parsed (one QUEUE_LINE match per waiting recipient)."""
    out = lines(assert_ok(mail.instance.run("queue", "list")).out)
    if out == ["queue is empty"]:
        return []
    assert QUEUE_HEADER.match(out[0]), f"no header line: {out}"
    entries = [QUEUE_LINE.match(line) for line in out[1:]]
    assert all(entries), f"unexpected line in `queue list`: {out}"
    return entries


def wait_until(predicate, timeout: float, interval: float = 0.1):
    """The first true value of predicate() within `timeout` seconds, else the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- a fake remote MX ----------------------------------------------------------------------------


@dataclass
class Delivery:
    """One transaction a FakeSmtp received: the envelope and the data (dot-unstuffed, CRLF)."""

    mail_from: str
    rcpts: list[str]
    data: bytes


class FakeSmtp:
    """A minimal SMTP server on 127.0.0.1:`port` (threads): no STARTTLS, no PIPELINING. It
    counts connections and records each transaction that reaches the end of the data, in
    `deliveries` with its envelope (the data alone in `messages`); answers RCPT with
    `rcpt_reply` (recipients are recorded when it is 2xx); with `hang_after_data` it never
    answers the end of the data (a remote host stuck after receiving the message)."""

    def __init__(self, port: int, hang_after_data: bool = False, rcpt_reply: bytes = b"250 ok"):
        self.port = port
        self.hang_after_data = hang_after_data
        self.rcpt_reply = rcpt_reply
        self.connections = 0
        self.deliveries: list[Delivery] = []
        self.got_data = threading.Event()
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 5
        while True:
            try:
                self.sock.bind(("127.0.0.1", port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.clients: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def messages(self) -> list[bytes]:
        """The data of each transaction received, in order."""
        return [delivery.data for delivery in list(self.deliveries)]

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            self.connections += 1
            self.clients.append(conn)
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        buf = b""

        def line() -> bytes | None:
            nonlocal buf
            while b"\r\n" not in buf:
                if self.stopping.is_set():
                    return None
                try:
                    chunk = conn.recv(65536)
                except (socket.timeout, TimeoutError):
                    continue
                except OSError:
                    return None
                if not chunk:
                    return None
                buf += chunk
            first, buf = buf.split(b"\r\n", 1)
            return first

        def address(command: bytes) -> str:
            m = re.search(rb"<([^>]*)>", command)
            return m[1].decode() if m else "?"

        mail_from, rcpts = "", []
        try:
            conn.settimeout(0.2)
            conn.sendall(b"220 fake.mx ESMTP\r\n")
            while True:
                command = line()
                if command is None:
                    return
                verb = command[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250-fake.mx\r\n250 8BITMIME\r\n" if verb == b"EHLO" else b"250 fake.mx\r\n")
                elif verb == b"MAIL":
                    mail_from, rcpts = address(command), []
                    conn.sendall(b"250 ok\r\n")
                elif verb == b"RCPT":
                    if self.rcpt_reply.startswith(b"2"):
                        rcpts.append(address(command))
                    conn.sendall(self.rcpt_reply + b"\r\n")
                elif verb in (b"RSET", b"NOOP"):
                    if verb == b"RSET":
                        mail_from, rcpts = "", []
                    conn.sendall(b"250 ok\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    data = []
                    while True:
                        text = line()
                        if text is None:
                            return
                        if text == b".":
                            break
                        data.append(text[1:] if text.startswith(b".") else text)
                    self.deliveries.append(Delivery(mail_from, rcpts, b"\r\n".join(data) + b"\r\n"))
                    self.got_data.set()
                    if self.hang_after_data:
                        self.stopping.wait()
                        return
                    conn.sendall(b"250 queued\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"502 not implemented\r\n")
        except Exception as error:  # noqa: BLE001 - recorded, never raised in the thread
            self.errors.append(repr(error))
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()
        for conn in self.clients:
            try:
                conn.close()
            except OSError:
                pass
        self.thread.join(2)
        deadline = time.monotonic() + 5
        while accepts(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
