"""Reading what the server stored, straight from its SQLite file (read-only, never locking it).

Tables (crates/store/src/sqlite/schema.rs): accounts(id, address), mailboxes(id, account_id,
name), messages(mailbox_id, uid, blob_hash, size, flags), blobs(hash, data), and the queue:
queue_messages(id, blob_hash, sender, ...), queue_recipients(queue_id, address, status, ...).
"""

from __future__ import annotations

import email.utils
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

# How long a message may take to show up after the 250 (it should be there at once: the 250
# comes after the commit; the wait only absorbs a slow disk).
APPEAR_TIMEOUT = 5.0
# How long to wait before concluding that something was NOT stored.
ABSENT_WAIT = 0.5


@dataclass
class Stored:
    address: str  # the account
    mailbox: str
    uid: int
    blob_hash: bytes
    size: int
    flags: str
    data: bytes

    def headers(self) -> list[tuple[str, str]]:
        return parse_headers(self.data)

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers() if k.lower() == name.lower()]


@dataclass
class Queued:
    queue_id: int
    address: str
    sender: str | None
    status: str
    blob_hash: bytes
    data: bytes


class MailDb:
    def __init__(self, path: Path):
        self.path = path

    def _query(self, sql: str, params=()) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def has_table(self, name: str) -> bool:
        return bool(self._query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    def messages(self, address: str | None = None, mailbox: str | None = "INBOX",
                 marker: bytes | str | None = None) -> list[Stored]:
        """Messages stored for `address` (all accounts if None) in `mailbox` (all if None),
        optionally only those whose bytes contain `marker`; in (account, mailbox, uid) order."""
        sql = ("SELECT a.address, mb.name, m.uid, m.blob_hash, m.size, m.flags, b.data "
               "FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id "
               "JOIN accounts a ON a.id = mb.account_id JOIN blobs b ON b.hash = m.blob_hash WHERE 1")
        params: list = []
        if address is not None:
            sql += " AND a.address = ?"
            params.append(address)
        if mailbox is not None:
            sql += " AND mb.name = ?"
            params.append(mailbox)
        if marker is not None:
            sql += " AND instr(b.data, ?) > 0"
            params.append(marker.encode() if isinstance(marker, str) else marker)
        sql += " ORDER BY a.address, mb.name, m.uid"
        return [Stored(*row) for row in self._query(sql, params)]

    def find(self, marker: bytes | str, mailbox: str | None = None) -> list[Stored]:
        """Every delivered copy, in any account, whose bytes contain `marker` (in `mailbox` only,
        if given). Without `mailbox`, Sent is left out: the server files a copy of each message a
        user submits there (`[smtp] save_sent`), which is the sender's record, not a delivery;
        pass mailbox="Sent" to look at those."""
        if mailbox is not None:
            return self.messages(None, mailbox, marker)
        return [copy for copy in self.messages(None, None, marker) if copy.mailbox != "Sent"]

    def wait_for(self, marker: bytes | str, count: int = 1, timeout: float = APPEAR_TIMEOUT) -> list[Stored]:
        """Copies containing `marker` once there are at least `count` (returns what is there at the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(marker)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def absent(self, marker: bytes | str) -> list[Stored]:
        """Copies containing `marker` after a short wait (expected: none)."""
        time.sleep(ABSENT_WAIT)
        return self.find(marker)

    def queued(self, marker: bytes | str | None = None) -> list[Queued]:
        """Outbound queue recipients (with their message bytes), optionally only for messages containing `marker`."""
        if not self.has_table("queue_recipients"):
            return []
        sql = ("SELECT r.queue_id, r.address, q.sender, r.status, q.blob_hash, b.data FROM queue_recipients r "
               "JOIN queue_messages q ON q.id = r.queue_id JOIN blobs b ON b.hash = q.blob_hash")
        params: list = []
        if marker is not None:
            sql += " WHERE instr(b.data, ?) > 0"
            params.append(marker.encode() if isinstance(marker, str) else marker)
        return [Queued(*row) for row in self._query(sql + " ORDER BY r.queue_id, r.rowid", params)]

    def queued_addresses(self, like: str) -> list[str]:
        """Queued recipient addresses matching the SQL LIKE pattern."""
        if not self.has_table("queue_recipients"):
            return []
        return [row[0] for row in self._query("SELECT address FROM queue_recipients WHERE address LIKE ?", (like,))]

    def count_messages(self) -> int:
        return self._query("SELECT count(*) FROM messages")[0][0]


# --- header helpers --------------------------------------------------------------------------------


def split_message(data: bytes) -> tuple[bytes, bytes]:
    """(header block incl. its last CRLF, body) at the first empty line."""
    i = data.find(b"\r\n\r\n")
    return (data, b"") if i < 0 else (data[: i + 2], data[i + 4:])


def parse_headers(data: bytes) -> list[tuple[str, str]]:
    """Header fields in order, unfolded (RFC 5322 §2.2.3), as (name, value) with the value stripped."""
    head, _ = split_message(data)
    fields: list[list[str]] = []
    for line in head.decode("utf-8", "backslashreplace").split("\r\n"):
        if not line:
            continue
        if line[0] in " \t" and fields:
            fields[-1][1] += " " + line.strip()
        elif ":" in line:
            name, value = line.split(":", 1)
            fields.append([name, value.strip()])
        else:
            fields.append([line, ""])  # not a header field; kept so tests can see it
    return [(name, value) for name, value in fields]


TLS_VERSION = re.compile(r"TLS\s*v?1[._]?([23])", re.I)


def check_trace_headers(stored: Stored, original: bytes, *, sender: str, helo: str, hostname: str,
                        protocol: str, tls: tuple[str, str] | None = None,
                        delivered_to: tuple[str, ...] | None = None) -> None:
    """The stored copy is trace headers + `original` byte for byte (RFC 5321 §4.4).

    Trace headers: `Return-Path: <sender>` first, then a `Received:` naming `helo`, the client
    IP, `hostname`, `with <protocol>`, an id and a date; for TLS (version, cipher as python
    reports them) the Received names both (RFC 3848 / CONTRACT). `delivered_to`: the accepted
    values of a `Delivered-To:` header that must be present.
    """
    data = stored.data
    assert data.endswith(original), (
        f"stored message does not end with the bytes sent:\nsent:   {original[:300]!r}\nstored: {data[:800]!r}")
    added = data[: len(data) - len(original)]
    assert added.endswith(b"\r\n"), f"trace headers do not end with CRLF: {added!r}"
    fields = parse_headers(added + b"\r\n")
    assert fields, f"no trace headers before the message: {data[:300]!r}"
    assert fields[0][0] == "Return-Path", f"first header is not Return-Path: {added!r}"
    assert fields[0][1] == f"<{sender}>", f"Return-Path {fields[0][1]!r}, expected <{sender}>"
    received = [v for k, v in fields if k.lower() == "received"]
    assert len(received) == 1, f"expected one Received header added, got {received!r}"
    check_received(received[0], helo=helo, hostname=hostname, protocol=protocol, tls=tls)
    if delivered_to is not None:
        values = [v for k, v in fields if k.lower() == "delivered-to"]
        assert len(values) == 1 and values[0].lower() in {d.lower() for d in delivered_to}, (
            f"Delivered-To {values!r}, expected one of {delivered_to}")


def check_received(value: str, *, helo: str, hostname: str, protocol: str,
                   tls: tuple[str, str] | None = None) -> None:
    where = f"Received: {value}"
    assert value.startswith(f"from {helo} "), f"does not start with 'from {helo} ': {where}"
    assert "[127.0.0.1]" in value or re.search(r"\[127\.\d+\.\d+\.\d+\]", value), f"no client IP literal: {where}"
    assert re.search(rf"\bby {re.escape(hostname)}\b", value), f"no 'by {hostname}': {where}"
    assert re.search(rf"\bwith {protocol}(?=[\s;(]|$)", value), f"not 'with {protocol}': {where}"
    assert re.search(r"\bid\s+\S+", value), f"no 'id': {where}"
    assert ";" in value, f"no '; date': {where}"
    date = value.rsplit(";", 1)[1].strip()
    assert email.utils.parsedate_to_datetime(date) is not None, f"unparsable date {date!r}: {where}"
    if tls:
        version, cipher = tls
        m = TLS_VERSION.search(value)
        assert m and f"1.{m[1]}" == version.replace("TLSv", ""), f"TLS version {version} not named: {where}"
        if version == "TLSv1.3":  # python and rustls share the IANA name minus its prefix
            core = cipher.removeprefix("TLS_")
            assert core in value, f"cipher {cipher} not named: {where}"
        else:  # python reports OpenSSL's name for TLS 1.2 suites: look for any AEAD suite name
            assert re.search(r"AES.?(128|256).?GCM|CHACHA20", value, re.I), f"no cipher named: {where}"
    else:
        assert not TLS_VERSION.search(value), f"names TLS on a plaintext session: {where}"
