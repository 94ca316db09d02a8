"""TLS and line-protocol client helpers (python `ssl` and `openssl s_client`)."""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from harness import HOSTNAME

IO_TIMEOUT = 5

VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}
S_CLIENT_FLAGS = {"1.0": "-tls1", "1.1": "-tls1_1", "1.2": "-tls1_2", "1.3": "-tls1_3"}


def client_context(ca: Path | None = None, version: str | None = None, alpn: list[str] | None = None,
                   check_hostname: bool = False, legacy: bool = False) -> ssl.SSLContext:
    """A client context. With `ca`, the chain is verified; `version` pins min = max."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=str(ca))
        ctx.check_hostname = check_hostname
    if legacy:
        # OpenSSL 3 refuses TLS < 1.2 at security level 1 (SHA-1 signatures).
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if version:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = VERSIONS[version]
            ctx.maximum_version = VERSIONS[version]
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


@dataclass
class Handshake:
    version: str
    fingerprint: str
    alpn: str | None
    cipher: str


def connect_tls(port: int, ctx: ssl.SSLContext, server_hostname: str | None = HOSTNAME,
                strict_eof: bool = False) -> ssl.SSLSocket:
    """TLS client socket. `strict_eof`: a TCP close without close_notify raises SSLEOFError."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname, suppress_ragged_eofs=not strict_eof)
    except BaseException:
        raw.close()
        raise


def handshake(port: int, ctx: ssl.SSLContext, server_hostname: str | None = HOSTNAME) -> Handshake:
    """Complete a TLS handshake, describe it, close."""
    with connect_tls(port, ctx, server_hostname) as tls:
        der = tls.getpeercert(binary_form=True)
        return Handshake(
            version=tls.version(),
            fingerprint=hashlib.sha256(der).hexdigest(),
            alpn=tls.selected_alpn_protocol(),
            cipher=tls.cipher()[0],
        )


def served_fingerprint(port: int, server_hostname: str | None = HOSTNAME) -> str:
    return handshake(port, client_context(), server_hostname).fingerprint


def wait_for_fingerprint(port: int, expected: str, timeout: float = 5.0) -> str:
    """Poll new connections until `expected` is served (reload is asynchronous); returns the last seen."""
    deadline = time.monotonic() + timeout
    while True:
        seen = served_fingerprint(port)
        if seen == expected or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def client_can_offer(version: str) -> bool:
    """Whether the local OpenSSL (through python) can produce a ClientHello for `version`."""
    ctx = client_context(version=version, legacy=True)
    obj = ctx.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO())
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        return outgoing.pending > 0
    except ssl.SSLError:
        return False
    return False


class LineConn:
    """Line-oriented client over a plain or TLS socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sock.settimeout(IO_TIMEOUT)
        self.reader = sock.makefile("rb")

    def readline(self) -> bytes:
        return self.reader.readline(4096)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: bytes) -> bytes:
        self.send(line + b"\r\n")
        return self.readline()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def __enter__(self) -> LineConn:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float, bool]:
    """Read until EOF/reset. Returns (bytes, seconds waited, closed?)."""
    sock.settimeout(0.2)
    start = time.monotonic()
    data = b""
    while time.monotonic() - start < timeout:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return data, time.monotonic() - start, True
        if not chunk:
            return data, time.monotonic() - start, True
        data += chunk
    return data, time.monotonic() - start, False


@dataclass
class SClient:
    code: int
    output: str

    @property
    def fingerprint(self) -> str | None:
        m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", self.output, re.S)
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(m.group(0))).hexdigest() if m else None

    @property
    def negotiated(self) -> bool:
        return re.search(r"Cipher is (?!\(NONE\))", self.output) is not None


def s_client(port: int, *args: str, stdin: bytes = b"", timeout: float = 15) -> SClient:
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    return SClient(proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace"))
