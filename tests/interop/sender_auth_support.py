"""What test_sender_auth.py needs beside the shared modules: a DNS server that can answer
SERVFAIL for chosen names, DKIM keys and signatures made with dkimpy (RSA via openssl,
Ed25519 via pynacl), the Authentication-Results field of a stored message taken apart, and a
minimal SMTP sink that records what the outbound queue delivers to it (envelope included).
"""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dkim  # dkimpy: an implementation independent of sealpost's (mail-auth)
import nacl.signing  # dkimpy signs and verifies Ed25519 (RFC 8463) with pynacl
from dnslib import QTYPE, RCODE, DNSHeader, DNSRecord

from dnsserver import DnsServer

# --- DNS -----------------------------------------------------------------------------------------


class AuthDns(DnsServer):
    """DnsServer plus SERVFAIL on demand: every question about a name in `servfail` (any type)
    gets SERVFAIL (and is logged in `queries` like any other). dnsserver.DnsServer has no such
    switch yet; this is the piece the sender-authentication tests need (RFC 7208 §2.6.6
    temperror, SECURITY-TESTS DA-08)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.servfail: set[str] = set()

    def answer(self, request: DNSRecord, transport: str = "udp") -> DNSRecord:
        if request.header.opcode == 0 and len(request.questions) == 1:
            qname = str(request.q.qname).rstrip(".").lower()
            if qname in self.servfail:
                self.queries.append((transport, qname, QTYPE.get(request.q.qtype, str(request.q.qtype))))
                reply = DNSRecord(DNSHeader(id=request.header.id, qr=1, aa=0, ra=0, rd=request.header.rd),
                                  q=request.q)
                reply.header.rcode = RCODE.SERVFAIL
                return reply
        return super().answer(request, transport)

    def set_txt(self, name: str, *records: str) -> None:
        """The TXT records of `name`, each split into character-strings of at most 255 octets
        (RFC 7208 §3.3, RFC 6376 §3.6.2.2: a long record is several strings, concatenated)."""
        self.set(name, "TXT", [[r[i:i + 255] for i in range(0, len(r), 255)] or [""] for r in records])

    def asked(self, name: str, rtype: str | None = None) -> list[tuple[str, str, str]]:
        """The logged questions about `name` (of type `rtype` if given)."""
        name = name.rstrip(".").lower()
        return [q for q in list(self.queries) if q[1] == name and (rtype is None or q[2] == rtype)]


# --- DKIM keys and signatures (dkimpy) -----------------------------------------------------------


@dataclass
class DkimKey:
    """A private key as dkimpy takes it and the `_domainkey` TXT record that publishes it."""

    algorithm: bytes  # dkimpy's signature_algorithm: b"rsa-sha256", b"rsa-sha1", b"ed25519-sha256"
    private: bytes
    record: str

    def with_algorithm(self, algorithm: bytes) -> DkimKey:
        return DkimKey(algorithm, self.private, self.record)


def rsa_key(folder: Path, bits: int = 2048) -> DkimKey:
    """An RSA key made by `openssl genrsa` (PKCS#1 PEM, which dkimpy reads) and its DKIM record
    (p= the SubjectPublicKeyInfo, RFC 6376 §3.6.1)."""
    pem = folder / f"rsa{bits}-{time.monotonic_ns()}.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(pem), str(bits)],
                   check=True, capture_output=True, timeout=60)
    der = subprocess.run(["openssl", "rsa", "-in", str(pem), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=60).stdout
    return DkimKey(b"rsa-sha256", pem.read_bytes(),
                   f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}")


def ed25519_key() -> DkimKey:
    """An Ed25519 key (pynacl) as RFC 8463 §4 publishes it: p= the raw 32-octet public key."""
    key = nacl.signing.SigningKey.generate()
    public = base64.b64encode(bytes(key.verify_key)).decode()
    return DkimKey(b"ed25519-sha256", base64.b64encode(bytes(key)), f"v=DKIM1; k=ed25519; p={public}")


def publish(dns: AuthDns, domain: str, selector: str, key: DkimKey) -> None:
    dns.set_txt(f"{selector}._domainkey.{domain}", key.record)


def sign(message: bytes, domain: str, selector: str, key: DkimKey, length: bool = False) -> bytes:
    """`message` with a DKIM-Signature of dkimpy prepended (relaxed/simple, dkimpy's default
    header list)."""
    signature = dkim.sign(message, selector.encode(), domain.encode(), key.private,
                          signature_algorithm=key.algorithm, length=length, linesep=b"\r\n")
    assert signature.startswith(b"DKIM-Signature:"), signature
    return signature + message


def dnsfunc(dns: DnsServer):
    """A dkimpy `dnsfunc` asking the test DNS server, to check our signatures with dkimpy."""

    def lookup(name, timeout=5):
        qname = name.decode() if isinstance(name, bytes) else name
        reply = DNSRecord.parse(DNSRecord.question(qname, "TXT").send("127.0.0.1", dns.port, timeout=timeout))
        for rr in reply.rr:
            if rr.rtype == QTYPE.TXT:
                return b"".join(rr.rdata.data)
        return None

    return lookup


def dkimpy_verifies(message: bytes, dns: DnsServer, idx: int = 0, minkey: int = 1024) -> bool:
    """dkimpy's verdict on signature `idx` of `message` (the independent oracle)."""
    try:
        return bool(dkim.DKIM(message, minkey=minkey).verify(idx=idx, dnsfunc=dnsfunc(dns)))
    except dkim.DKIMException:
        return False


def tag(value: str, name: str) -> str | None:
    """The value of tag `name` in a tag-list (DKIM-Signature, ARC-Seal), whitespace removed."""
    for item in re.sub(r"\s+", "", value).split(";"):
        key, _, val = item.partition("=")
        if key == name:
            return val
    return None


# --- the stored message's header -----------------------------------------------------------------


def raw_fields(data: bytes) -> list[tuple[str, str]]:
    """Header fields in order as (name, raw value with its folding, CRLF kept inside)."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "backslashreplace")
    fields: list[list[str]] = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1] += "\r\n" + line
        else:
            name, _, value = line.partition(":")
            fields.append([name, value])
    return [(name, value) for name, value in fields]


@dataclass
class Result:
    """One resinfo of an Authentication-Results field (RFC 8601 §2.2)."""

    method: str
    result: str
    comment: str
    props: dict[str, str] = field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        return self.text


@dataclass
class AuthResults:
    """Our Authentication-Results field: its raw value and the results in order."""

    raw: str
    authserv_id: str
    results: list[Result]

    def of(self, method: str) -> list[Result]:
        return [r for r in self.results if r.method == method]

    def one(self, method: str) -> Result:
        found = self.of(method)
        assert len(found) == 1, f"expected one {method} result in:\n{self.raw}"
        return found[0]

    @property
    def methods(self) -> list[str]:
        return [r.method for r in self.results]

    def __str__(self) -> str:
        return "Authentication-Results:" + self.raw


def _strip_comment(text: str) -> tuple[str, str]:
    """(text without its first top-level comment, the comment's inside)."""
    start = text.find("(")
    if start < 0:
        return text, ""
    depth, i, escaped = 0, start, False
    while i < len(text):
        c = text[i]
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return text[:start] + text[i + 1:], text[start + 1:i]
        i += 1
    return text, text[start + 1:]


RESINFO = re.compile(r"^([A-Za-z][\w-]*)=([A-Za-z]+)$")
PROP = re.compile(r'([A-Za-z][\w-]*\.[A-Za-z][\w.-]*)=("(?:[^"\\]|\\.)*"|[^\s;]+)')


def parse_results(raw: str) -> AuthResults:
    """Takes apart a value written as sealpost writes it (brief: `<id>;` then one result per
    `;\\r\\n\\t`-separated line)."""
    parts = raw.split(";\r\n\t")
    authserv_id = parts[0].strip()
    results = []
    for text in parts[1:]:
        body, comment = _strip_comment(text.strip())
        words = body.split()
        assert words, f"empty result in {raw!r}"
        m = RESINFO.match(words[0])
        assert m, f"not method=result: {words[0]!r} in {raw!r}"
        props = {k: v.strip('"') for k, v in PROP.findall(" ".join(words[1:]))}
        results.append(Result(m[1].lower(), m[2].lower(), comment, props, text.strip()))
    return AuthResults(raw, authserv_id, results)


def authserv_id_of(raw: str) -> str:
    """The first token of an A-R value, after comments (RFC 8601 §2.2)."""
    body = raw
    while True:
        stripped = body.lstrip()
        if stripped.startswith("("):
            body, _ = _strip_comment(stripped)
            continue
        break
    return re.split(r"[\s;]", body.strip(), maxsplit=1)[0]


# --- an SMTP sink ------------------------------------------------------------------------------


@dataclass
class Delivery:
    mail_from: str
    rcpts: list[str]
    data: bytes


class Sink:
    """A minimal SMTP server on 127.0.0.1:`port` (threads, no STARTTLS): accepts everything and
    records each transaction with its envelope. Stands in for the MX of the report addresses."""

    def __init__(self, port: int):
        self.port = port
        self.deliveries: list[Delivery] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
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

        mail_from, rcpts = "", []
        try:
            conn.settimeout(0.2)
            conn.sendall(b"220 sink.test ESMTP\r\n")
            while True:
                command = line()
                if command is None:
                    return
                verb = command[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250-sink.test\r\n250 8BITMIME\r\n" if verb == b"EHLO" else b"250 sink.test\r\n")
                elif verb == b"MAIL":
                    m = re.search(rb"<([^>]*)>", command)
                    mail_from, rcpts = (m[1].decode() if m else "?"), []
                    conn.sendall(b"250 ok\r\n")
                elif verb == b"RCPT":
                    m = re.search(rb"<([^>]*)>", command)
                    rcpts.append(m[1].decode() if m else "?")
                    conn.sendall(b"250 ok\r\n")
                elif verb in (b"RSET", b"NOOP"):
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
        self.thread.join(2)
