"""What test_sender_auth.py needs beside the shared modules: DKIM keys and signatures made with
dkimpy (RSA via openssl, Ed25519 via pynacl), and the Authentication-Results field of a stored
message taken apart. (The test DNS server is dnsserver.DnsServer, with SERVFAIL on demand; the
sink for outbound mail is outbound_support.FakeSmtp.)
"""

from __future__ import annotations

import base64
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import dkim  # dkimpy: an implementation independent of sealpost's (mail-auth)
import nacl.signing  # dkimpy signs and verifies Ed25519 (RFC 8463) with pynacl
from dnslib import QTYPE, DNSRecord

from dnsserver import DnsServer

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


def publish(dns: DnsServer, domain: str, selector: str, key: DkimKey) -> None:
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
