"""A small authoritative DNS server for the interop suite (dnslib): UDP and TCP on 127.0.0.1,
an ephemeral port, background threads, a zone the tests change while it runs.

    with DnsServer({"remote.example": {"MX": [(10, "mx.remote.example")]},
                    "mx.remote.example": {"A": ["127.0.0.1"]}}) as dns:
        dns.nameserver            # "127.0.0.1:PORT", for `[dns] nameservers`
        dns.set("other.example", "MX", [(0, ".")])
        dns.set_txt("long.example", "v=spf1 ...")   # a TXT record of any length
        dns.servfail.add("broken.example")          # SERVFAIL for every question about it
        dns.asked("long.example", "TXT")            # the questions logged about it

The zone maps an owner name (case-insensitive, no trailing dot needed) to {TYPE: [values]}:
MX (preference, exchange), A / AAAA (address text), TXT (a string, or a list of strings for a
record of several character-strings), CNAME (target). Answers carry the AA flag and the TTL
`ttl` (60 s by default; less for a test that changes a record a resolver has cached). A name under
one of the served zones (see `zones`, by default every name's last two labels) that has no
records is NXDOMAIN; a name that exists without the asked type gets NOERROR with no answer
(and the SOA in the authority section, RFC 2308). CNAMEs are followed inside the zone. Names
outside the served zones get REFUSED; `zones=[""]` serves the root, so that every name is
answered (NXDOMAIN unless set), as a resolver on a machine without Internet would.

`set_txt(name, *records)` sets the TXT records of a name from plain strings, each split into
character-strings of at most 255 octets (RFC 7208 §3.3, RFC 6376 §3.6.2.2: a long record is
several strings, concatenated). Every question is logged in `queries` as (transport, name,
type); `asked(name, rtype=None)` picks those about one name. A name in the set `servfail`
(normalized: lower case, no trailing dot) gets SERVFAIL for any question, inside the served
zones or not (a temporary DNS error, e.g. RFC 7208 §2.6.6 temperror); `unroutable=True` answers
SERVFAIL instead of NXDOMAIN to MX, A and AAAA questions about names without records.

Nothing a client sends can stop the threads: every request is handled inside try/except (a
broken query gets FORMERR or no answer).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterable

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, SOA, TXT, A, DNSHeader, DNSRecord

TTL = 60
SUPPORTED = ("MX", "A", "AAAA", "TXT", "CNAME")


def _norm(name: str) -> str:
    return str(name).rstrip(".").lower()


class DnsServer:
    def __init__(self, records: dict[str, dict[str, list]] | None = None,
                 zones: Iterable[str] | None = None, host: str = "127.0.0.1", ttl: int = TTL,
                 unroutable: bool = False):
        self.host = host
        # SERVFAIL for MX/A/AAAA questions about names without records: mail to them waits in
        # the queue (a temporary failure) instead of bouncing at once.
        self.unroutable = unroutable
        self.ttl = ttl  # of every answer (and the SOA's negative-caching TTL)
        self.lock = threading.Lock()
        self.records: dict[str, dict[str, list]] = {}
        self.explicit_zones = {_norm(z) for z in zones} if zones is not None else None
        self.queries: list[tuple[str, str, str]] = []  # (transport, name, type) as asked
        self.servfail: set[str] = set()  # names (normalized) answered SERVFAIL, any type
        for name, types in (records or {}).items():
            for rtype, values in types.items():
                self.set(name, rtype, values)
        self.port = 0
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # --- the zone ------------------------------------------------------------------------------

    def set(self, name: str, rtype: str, values: list) -> None:
        """Replace the `rtype` records of `name` (an empty list removes them)."""
        rtype = rtype.upper()
        if rtype not in SUPPORTED:
            raise ValueError(f"unsupported record type {rtype}")
        with self.lock:
            types = self.records.setdefault(_norm(name), {})
            if values:
                types[rtype] = list(values)
            else:
                types.pop(rtype, None)

    def set_txt(self, name: str, *records: str) -> None:
        """Replace the TXT records of `name` by `records`, each split into character-strings of
        at most 255 octets (no records: removes them)."""
        self.set(name, "TXT", [[r[i:i + 255] for i in range(0, len(r), 255)] or [""] for r in records])

    def add(self, name: str, rtype: str, value) -> None:
        with self.lock:
            self.records.setdefault(_norm(name), {}).setdefault(rtype.upper(), []).append(value)

    def remove(self, name: str) -> None:
        """The name is gone: NXDOMAIN from now on."""
        with self.lock:
            self.records.pop(_norm(name), None)

    def get(self, name: str, rtype: str) -> list:
        with self.lock:
            return list(self.records.get(_norm(name), {}).get(rtype.upper(), []))

    def zone_of(self, name: str) -> str | None:
        """The served zone `name` is in (the longest match), or None."""
        name = _norm(name)
        with self.lock:
            zones = self.explicit_zones if self.explicit_zones is not None else {
                ".".join(n.split(".")[-2:]) for n in self.records}
        best = None
        for zone in zones:
            # The root zone ("") holds every name: a server for it answers everything itself.
            inside = zone == "" or name == zone or name.endswith("." + zone)
            if inside and (best is None or len(zone) > len(best)):
                best = zone
        return best

    def asked(self, name: str, rtype: str | None = None) -> list[tuple[str, str, str]]:
        """The logged questions about `name` (of type `rtype` if given)."""
        name = _norm(name)
        return [q for q in list(self.queries) if q[1] == name and (rtype is None or q[2] == rtype)]

    @property
    def nameserver(self) -> str:
        return f"{self.host}:{self.port}"

    # --- answering ---------------------------------------------------------------------------

    def _rdata(self, rtype: str, value):
        if rtype == "MX":
            preference, exchange = value
            return MX(exchange if exchange.endswith(".") else exchange + ".", preference)
        if rtype == "A":
            return A(value)
        if rtype == "AAAA":
            return AAAA(value)
        if rtype == "CNAME":
            return CNAME(value if value.endswith(".") else value + ".")
        if rtype == "TXT":
            strings = [value] if isinstance(value, (str, bytes)) else list(value)
            return TXT([s.encode() if isinstance(s, str) else s for s in strings])
        raise ValueError(rtype)

    def answer(self, request: DNSRecord, transport: str = "udp") -> DNSRecord:
        reply = DNSRecord(DNSHeader(id=request.header.id, qr=1, aa=1, ra=0, rd=request.header.rd),
                          q=request.q)
        if request.header.opcode != 0 or len(request.questions) != 1:
            reply.header.rcode = RCODE.NOTIMP if request.header.opcode != 0 else RCODE.FORMERR
            reply.header.aa = 0
            return reply
        qname = _norm(request.q.qname)
        qtype = QTYPE.get(request.q.qtype, str(request.q.qtype))
        self.queries.append((transport, qname, qtype))
        if qname in self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            reply.header.aa = 0
            return reply
        zone = self.zone_of(qname)
        if zone is None:
            reply.header.rcode = RCODE.REFUSED
            reply.header.aa = 0
            return reply
        name = qname
        with self.lock:
            records = {n: {t: list(v) for t, v in types.items()} for n, types in self.records.items()}
        for _ in range(8):  # CNAME chain inside the zone
            types = records.get(name)
            if not types and self.unroutable and qtype in ("MX", "A", "AAAA"):
                reply.header.rcode = RCODE.SERVFAIL
                reply.header.aa = 0
                return reply
            if not types:
                if name == qname:
                    reply.header.rcode = RCODE.NXDOMAIN
                    self._soa(reply, zone)
                return reply
            if qtype == "ANY":
                wanted = [t for t in SUPPORTED if t in types]
            else:
                wanted = [qtype] if qtype in types else []
            if wanted:
                for rtype in wanted:
                    for value in types[rtype]:
                        reply.add_answer(RR(name + ".", getattr(QTYPE, rtype), ttl=self.ttl,
                                            rdata=self._rdata(rtype, value)))
                return reply
            if "CNAME" in types and qtype != "CNAME":
                target = types["CNAME"][0]
                reply.add_answer(RR(name + ".", QTYPE.CNAME, ttl=self.ttl, rdata=self._rdata("CNAME", target)))
                name = _norm(target)
                if self.zone_of(name) is None:
                    return reply
                continue
            self._soa(reply, zone)  # NOERROR, no data
            return reply
        return reply

    def _soa(self, reply: DNSRecord, zone: str) -> None:
        origin = f"{zone}." if zone else ""
        reply.add_auth(RR(origin or ".", QTYPE.SOA, ttl=self.ttl,
                          rdata=SOA(f"ns.{origin or 'root.'}", f"hostmaster.{origin or 'root.'}",
                                    (1, 3600, 600, 86400, self.ttl))))

    def _handle(self, data: bytes, max_size: int | None) -> bytes | None:
        """The reply to one message; over UDP (`max_size` set) truncated (TC) when too big."""
        try:
            request = DNSRecord.parse(data)
        except Exception:
            if len(data) >= 2:  # FORMERR with the id when there is one
                try:
                    header = DNSHeader(id=struct.unpack("!H", data[:2])[0], qr=1, rcode=RCODE.FORMERR)
                    return DNSRecord(header).pack()
                except Exception:
                    return None
            return None
        try:
            reply = self.answer(request, "udp" if max_size is not None else "tcp")
        except Exception:
            reply = DNSRecord(DNSHeader(id=request.header.id, qr=1, rcode=RCODE.SERVFAIL), q=request.q)
        packed = reply.pack()
        if max_size is not None and len(packed) > max_size:
            reply = DNSRecord(DNSHeader(id=request.header.id, qr=1, aa=1, tc=1), q=request.q)
            packed = reply.pack()
        return packed

    # --- transport ---------------------------------------------------------------------------

    def start(self) -> DnsServer:
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind((self.host, 0))
        self.port = self._udp.getsockname()[1]
        self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._tcp.bind((self.host, self.port))
        except OSError:  # the TCP port of that number is taken: start over with both
            self._udp.close()
            self._tcp.close()
            return self.start()
        self._tcp.listen(16)
        self._udp.settimeout(0.2)
        self._tcp.settimeout(0.2)
        for target in (self._serve_udp, self._serve_tcp):
            thread = threading.Thread(target=target, name=f"dns-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(2)
        for sock in (self._udp, self._tcp):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve_udp(self) -> None:
        while not self._stopping.is_set():
            try:
                data, peer = self._udp.recvfrom(65535)
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                time.sleep(0.01)
                continue
            try:
                size = 512
                try:  # EDNS0 (RFC 6891): the client's advertised UDP size
                    request = DNSRecord.parse(data)
                    for rr in request.ar:
                        if rr.rtype == QTYPE.OPT:
                            size = max(512, rr.rclass)
                except Exception:
                    pass
                packed = self._handle(data, size)
                if packed is not None:
                    self._udp.sendto(packed, peer)
            except Exception:
                pass

    def _serve_tcp(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._tcp.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                time.sleep(0.01)
                continue
            try:
                threading.Thread(target=self._tcp_client, args=(conn,), daemon=True).start()
            except Exception:  # no thread to spare: drop this client, keep serving
                conn.close()

    def _tcp_client(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            with conn:
                while not self._stopping.is_set():
                    head = _recv_exact(conn, 2)
                    if head is None:
                        return
                    data = _recv_exact(conn, struct.unpack("!H", head)[0])
                    if data is None:
                        return
                    packed = self._handle(data, None)
                    if packed is None:
                        return
                    conn.sendall(struct.pack("!H", len(packed)) + packed)
        except Exception:
            pass


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data
