"""Inbound sender authentication on port 25, black box (SECURITY-TESTS §4.9 DA-01…DA-16, RS-11):
SPF (RFC 7208) at MAIL FROM, then DKIM (RFC 6376, RFC 8463, RFC 8301), ARC (RFC 8617), iprev
and DMARC (RFC 7489) at the end of DATA, reported in one Authentication-Results field
(RFC 8601) and enforced per the sender's DMARC policy and the receiving domain's
`[sender_auth]` rules; DMARC aggregate reports (RFC 7489 §7.2, Appendix C).

One server for the module; its resolver is a test DNS server (dnsserver.DnsServer,
authoritative for every name) whose records each test sets under names of its own, so that no
answer cached by the server from another test matters. Signatures come from dkimpy (an
implementation independent of the server's); messages go in over a raw SMTP client or swaks
from 127.0.0.1; what was stored is read from the SQLite store (maildb). The outbound queue
delivers to a sink (outbound_support.FakeSmtp) on `[outbound] remote_port`, which the test
DNS makes the MX of the report addresses.
"""

from __future__ import annotations

import datetime
import email
import email.policy
import gzip
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import dkim
import pytest

from dnsserver import DnsServer
from harness import HOSTNAME, Instance, assert_ok, free_port, lines
from maildb import Stored, parse_headers
from mailserver import (ALICE, BOB, ERIN, PASSWORDS, SMTP_SERVICES, MailServer, configure,
                        provision, stop_mail_server)
from outbound_support import FakeSmtp, wait_until
from sender_auth_support import (AuthResults, authserv_id_of, dkimpy_verifies, ed25519_key, parse_results,
                                 publish, raw_fields, rsa_key, sign, tag)
from smtpclient import Reply, build_message, new_marker

HELO = "client.sa.test"
TRUSTED_SEALER = "forwarder.example"  # [sender_auth] trusted_arc_sealers
JUNK_DOMAIN = "second.example"  # [sender_auth.domain."second.example"] dmarc_reject = "junk"
SPF_ELSEWHERE = "v=spf1 ip4:192.0.2.10 -all"  # 127.0.0.1 (the client) fails
SPF_HERE = "v=spf1 ip4:127.0.0.1 -all"
REPORT_ARRIVE_TIMEOUT = 25.0  # the scheduler polls the store every 5 s for CLI-queued mail


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dns():
    """Authoritative for every name (NXDOMAIN unless set), short TTLs, SERVFAIL on demand."""
    server = DnsServer({}, zones=[""], ttl=1)
    with server:
        yield server


@pytest.fixture(scope="module")
def mx(sealpost_bin, certs, tmp_path_factory, dns) -> MailServer:
    """The provisioned server (test.example, second.example), resolving through `dns`, outbound
    mail to the sink's port; `forwarder.example` a trusted ARC sealer; second.example files
    p=reject failures as junk."""
    instance = Instance(sealpost_bin, tmp_path_factory.mktemp("sender-auth"), certs, services=SMTP_SERVICES)
    settings = configure(instance, dns=dns)
    sink_port = free_port()
    instance.config.extra["outbound"] = f"remote_port = {sink_port}"
    instance.config.extra["sender_auth"] = f'trusted_arc_sealers = ["{TRUSTED_SEALER}"]'
    instance.config.extra[f'sender_auth.domain."{JUNK_DOMAIN}"'] = 'dmarc_reject = "junk"'
    instance.write_config()
    provision(instance)
    server = MailServer(instance, instance.serve(), settings)
    server.sink_port = sink_port
    yield server
    problem = stop_mail_server(server)
    if problem:
        pytest.fail(problem)


@pytest.fixture(scope="module")
def sink(mx):
    server = FakeSmtp(mx.sink_port)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """dkimpy keys: RSA-2048 (DKIM, and the forwarders' ARC key) and RSA-512 made by openssl,
    Ed25519 by pynacl."""
    folder = tmp_path_factory.mktemp("dkim-keys")
    return {"rsa": rsa_key(folder, 2048), "rsa512": rsa_key(folder, 512), "ed25519": ed25519_key(),
            "arc": rsa_key(folder, 2048)}


# --- helpers -----------------------------------------------------------------------------------


def send(mx: MailServer, mail_from: str, message: bytes, rcpts: tuple[str, ...] = (ALICE,),
         helo: str = HELO) -> Reply:
    """One transaction on port 25 from 127.0.0.1; the reply to the end of DATA."""
    with mx.connect("smtp") as conn:
        conn.ehlo(helo)
        reply = conn.mail(mail_from)
        assert reply.code == 250, f"MAIL FROM:<{mail_from}> -> {reply}\n{conn.log()}"
        for rcpt in rcpts:
            reply = conn.rcpt(rcpt)
            assert reply.code == 250, f"RCPT TO:<{rcpt}> -> {reply}\n{conn.log()}"
        reply = conn.data(message, timeout=40)
        conn.cmd("QUIT")
    return reply


def accepted(mx: MailServer, mail_from: str, message: bytes, rcpts: tuple[str, ...] = (ALICE,),
             helo: str = HELO) -> None:
    reply = send(mx, mail_from, message, rcpts, helo)
    assert reply.is_(250), f"end of DATA -> {reply}, expected 250\n{mx.log()[-2000:]}"


def stored(mx: MailServer, marker: str, address: str = ALICE, mailbox: str = "INBOX") -> Stored:
    """The one copy of `marker` delivered to `address`, which must be in `mailbox` (and nowhere
    else in that account, Sent aside)."""
    copies = [c for c in mx.db.wait_for(marker) if c.address == address]
    assert len(copies) == 1, f"expected one copy for {address}, got {[(c.address, c.mailbox) for c in copies]}"
    assert copies[0].mailbox == mailbox, f"filed in {copies[0].mailbox!r}, expected {mailbox!r}"
    return copies[0]


def refused(mx: MailServer, mail_from: str, message: bytes, marker: str, code: int, enhanced: str,
            rcpts: tuple[str, ...] = (ALICE,)) -> Reply:
    """The end of DATA gets `code enhanced` and nothing is stored."""
    reply = send(mx, mail_from, message, rcpts)
    assert reply.is_(code, enhanced), f"end of DATA -> {reply}, expected {code} {enhanced}"
    assert mx.db.absent(marker) == [], "a refused message must not be stored"
    return reply


def our_results(copy: Stored) -> AuthResults:
    """The one Authentication-Results field naming our hostname, parsed."""
    ours = [v for k, v in raw_fields(copy.data)
            if k.lower() == "authentication-results" and authserv_id_of(v).rstrip(".").lower() == HOSTNAME]
    assert len(ours) == 1, f"expected one Authentication-Results of {HOSTNAME}:\n{copy.data[:2500]!r}"
    results = parse_results(ours[0])
    assert results.authserv_id == HOSTNAME, results.raw
    return results


def result(copy: Stored, method: str) -> str:
    return our_results(copy).one(method).result


def msg(marker: str, author: str, **kwargs) -> bytes:
    return build_message(marker, sender=author, to=ALICE, **kwargs)


def dmarc_comment_has(res, *words: str) -> bool:
    return all(re.search(rf"(^|\s){re.escape(w)}(\s|$)", res.comment) for w in words)


# --- A-R layout; DKIM (RFC 6376, RFC 8463, RFC 8301) ---------------------------------------------


def test_dkim_rsa_and_ed25519_pass_and_result_layout(mx, dns, keys, tmp_path):
    """RFC 6376 + RFC 8463: a message signed by dkimpy with RSA-2048 and Ed25519 (sent with
    swaks) gets `dkim=pass` with header.d/header.s/header.a/header.b for each signature. The
    field (RFC 8601 §2.2) comes right after our Received, names our hostname, and lists iprev,
    spf, the dkim results, dmarc, arc in that order, one per `;CRLF TAB` line."""
    if shutil.which("swaks") is None:
        pytest.skip("swaks is not installed")
    domain = "dkim.example"
    publish(dns, domain, "r2048", keys["rsa"])
    publish(dns, domain, "ed1", keys["ed25519"])
    marker = new_marker()
    original = msg(marker, f"author@{domain}")
    signed = sign(sign(original, domain, "r2048", keys["rsa"]), domain, "ed1", keys["ed25519"])
    assert dkimpy_verifies(signed, dns, 0) and dkimpy_verifies(signed, dns, 1), "dkimpy's own check"
    data_file = tmp_path / "signed.eml"
    data_file.write_bytes(signed)
    proc = subprocess.run(["swaks", "--server", f"127.0.0.1:{mx.ports['smtp']}", "--helo", HELO,
                           "--from", f"author@{domain}", "--to", ALICE, "--timeout", "30",
                           "--data", f"@{data_file}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    copy = stored(mx, marker)

    ar = our_results(copy)
    assert ar.methods == ["iprev", "spf", "dkim", "dkim", "dmarc", "arc"], ar.raw
    signatures = {tag(v, "s"): tag(v, "b") for k, v in parse_headers(signed) if k.lower() == "dkim-signature"}
    for res in ar.of("dkim"):
        assert res.result == "pass", f"{res}\n{ar}"
        assert res.props.get("header.d") == domain, str(res)
        selector = res.props.get("header.s")
        assert selector in signatures, str(res)
        assert res.props.get("header.a") == {"r2048": "rsa-sha256", "ed1": "ed25519-sha256"}[selector], str(res)
        prefix = res.props.get("header.b", "")
        assert len(prefix) >= 8 and signatures[selector].startswith(prefix), f"RFC 6008 header.b: {res}"
    assert sorted(r.props["header.s"] for r in ar.of("dkim")) == ["ed1", "r2048"]
    assert ar.one("iprev").props.get("policy.iprev") == "127.0.0.1", str(ar)
    spf = ar.one("spf")
    assert spf.result == "none" and spf.props.get("smtp.mailfrom") == f"author@{domain}", str(spf)
    assert ar.one("dmarc").result == "none" and ar.one("dmarc").props.get("header.from") == domain, str(ar)
    assert ar.one("arc").result == "none", str(ar)
    assert ar.raw.startswith(f" {HOSTNAME};\r\n\t"), repr(ar.raw)

    names = [k.lower() for k, _ in raw_fields(copy.data)]
    assert names.count("authentication-results") == 1, names
    first_received = names.index("received")
    assert names.index("authentication-results") == first_received + 1, f"A-R right after our Received: {names}"
    # (swaks ends the data with one more CRLF, which simple body canonicalization ignores.)
    assert copy.data.split(b"\r\n\r\n", 1)[1].startswith(signed.split(b"\r\n\r\n", 1)[1]), "body unchanged"


def test_dkim_tampered_body_fails(mx, dns, keys):
    """RFC 6376 §6.1.3: a body changed after signing fails the body hash: dkim=fail."""
    domain = "dkim-tamper.example"
    publish(dns, domain, "sel", keys["rsa"])
    marker = new_marker()
    signed = sign(msg(marker, f"author@{domain}"), domain, "sel", keys["rsa"])
    tampered = signed.replace(b"Hello from the interop suite.", b"Hello from the attacker!!!!!")
    assert tampered != signed and not dkimpy_verifies(tampered, dns)
    accepted(mx, f"author@{domain}", tampered)
    res = our_results(stored(mx, marker)).one("dkim")
    assert res.result == "fail" and res.props.get("header.d") == domain and res.props.get("header.s") == "sel", str(res)


def test_dkim_rsa_512_bit_key_fails(mx, dns, keys):
    """DA-10, RFC 8301 §3.2: RSA keys below 1024 bits are not accepted: a valid signature made
    with a 512-bit key is not a pass (fail). dkimpy confirms the signature itself is good."""
    domain = "dkim-weak.example"
    publish(dns, domain, "k512", keys["rsa512"])
    marker = new_marker()
    signed = sign(msg(marker, f"author@{domain}"), domain, "k512", keys["rsa512"])
    assert dkimpy_verifies(signed, dns, minkey=512), "the 512-bit signature is mathematically valid"
    accepted(mx, f"author@{domain}", signed)
    res = our_results(stored(mx, marker)).one("dkim")
    assert res.result == "fail", f"a 512-bit RSA key must not pass: {res}"
    assert res.props.get("header.s") == "k512", str(res)


def test_dkim_rsa_sha1_fails(mx, dns, keys):
    """DA-10, RFC 8301 §3.1: verifiers MUST NOT consider rsa-sha1 signatures valid."""
    domain = "dkim-sha1.example"
    publish(dns, domain, "sha1", keys["rsa"])
    marker = new_marker()
    signed = sign(msg(marker, f"author@{domain}"), domain, "sha1", keys["rsa"].with_algorithm(b"rsa-sha1"))
    assert dkimpy_verifies(signed, dns), "dkimpy accepts the rsa-sha1 signature as such"
    accepted(mx, f"author@{domain}", signed)
    res = our_results(stored(mx, marker)).one("dkim")
    assert res.result == "fail", str(res)
    assert res.props.get("header.a") == "rsa-sha1", str(res)


def test_dkim_length_tag_with_appended_content_is_policy(mx, dns, keys):
    """DA-11, RFC 6376 §8.2: signed with l= (dkimpy length=True) and content appended after
    signing: the signature verifies for the first l octets only, so the result is `policy`, not
    pass; and it does not satisfy DMARC: under p=reject with SPF failing, the message is
    refused. The same message without the appended part passes (control)."""
    domain = "dkim-length.example"
    publish(dns, domain, "len", keys["rsa"])
    dns.set_txt(domain, SPF_ELSEWHERE)
    dns.set_txt(f"_dmarc.{domain}", "v=DMARC1; p=reject")
    appended = b'\r\n<a href="http://evil.test">click</a>\r\n'

    control = new_marker()
    signed = sign(msg(control, f"author@{domain}"), domain, "len", keys["rsa"], length=True)
    assert tag(signed.split(b"\r\n\r\n")[0].decode(), "l"), "dkimpy wrote an l= tag"
    accepted(mx, f"author@{domain}", signed)
    ar = our_results(stored(mx, control))
    assert ar.one("dkim").result == "pass" and ar.one("dmarc").result == "pass", str(ar)

    marker = new_marker()
    signed = sign(msg(marker, f"author@{domain}"), domain, "len", keys["rsa"], length=True)
    assert dkimpy_verifies(signed + appended, dns), "dkimpy: the l= signature still verifies"
    refused(mx, f"author@{domain}", signed + appended, marker, 550, "5.7.1")

    # Without a DMARC policy to enforce, the message is delivered and shows dkim=policy.
    other = "dkim-length-nodmarc.example"
    publish(dns, other, "len", keys["rsa"])
    marker = new_marker()
    signed = sign(msg(marker, f"author@{other}"), other, "len", keys["rsa"], length=True)
    accepted(mx, f"author@{other}", signed + appended)
    res = our_results(stored(mx, marker)).one("dkim")
    assert res.result == "policy", f"content past l= is not authenticated: {res}"
    assert res.props.get("header.d") == other, str(res)


def test_dkim_garbage_key_is_permerror(mx, dns, keys):
    """DA-10: a key record whose p= is not a key (`p=AAAA`): permerror, the message is still
    delivered and the server lives on."""
    domain = "dkim-badkey.example"
    dns.set_txt(f"bad._domainkey.{domain}", "v=DKIM1; k=rsa; p=AAAA")
    marker = new_marker()
    accepted(mx, f"author@{domain}", sign(msg(marker, f"author@{domain}"), domain, "bad", keys["rsa"]))
    res = our_results(stored(mx, marker)).one("dkim")
    assert res.result == "permerror", str(res)
    mx.assert_alive()


def test_dkim_many_signatures_bounded(mx, dns):
    """DA-09, RFC 6376 §6.1: a message with 100 DKIM-Signature fields (selectors sel0…sel99):
    only a few are verified, the others are not looked up: at most 10 `_domainkey` queries."""
    domain = "dkim-many.example"
    before = len(dns.queries)
    marker = new_marker()
    fields = b"".join(
        f"DKIM-Signature: v=1; a=rsa-sha256; d={domain}; s=sel{i}; c=relaxed/relaxed; h=from;"
        f" bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n".encode() for i in range(100))
    accepted(mx, f"author@{domain}", fields + msg(marker, f"author@{domain}"))
    ar = our_results(stored(mx, marker))
    assert all(r.result != "pass" for r in ar.of("dkim")), str(ar)
    asked = {q[1] for q in dns.queries[before:] if q[1].endswith(f"._domainkey.{domain}")}
    assert len(asked) <= 10, f"{len(asked)} selectors looked up: {sorted(asked)}"


# --- SPF (RFC 7208) ------------------------------------------------------------------------------


SPF_CASES = {
    "pass": ([SPF_HERE], "pass"),
    "fail": ([SPF_ELSEWHERE], "fail"),
    "softfail": (["v=spf1 ip4:192.0.2.10 ~all"], "softfail"),
    "neutral": (["v=spf1 ?all"], "neutral"),
    "none": ([], "none"),
    "permerror-two-records": (["v=spf1 ip4:127.0.0.1 -all", "v=spf1 +all"], "permerror"),  # RFC 7208 §4.5, DA-05
    "permerror-syntax": (["v=spf1 ip4:999.1.1.1 -all"], "permerror"),  # DA-05
}


@pytest.mark.parametrize("case", list(SPF_CASES))
def test_spf_result_of_mail_from(mx, dns, case):
    """RFC 7208 §2.6 results for the MAIL FROM identity, as `spf=RESULT … smtp.mailfrom=ADDR`
    (RFC 8601 §2.7.2). The message is delivered in every case (no DMARC record)."""
    records, expected = SPF_CASES[case]
    domain = f"spf-{case}.example"
    if records:
        dns.set_txt(domain, *records)
    marker = new_marker()
    accepted(mx, f"sender@{domain}", msg(marker, f"sender@{domain}"))
    spf = our_results(stored(mx, marker)).one("spf")
    assert spf.result == expected, str(spf)
    assert spf.props.get("smtp.mailfrom") == f"sender@{domain}", str(spf)


def test_spf_temperror_on_servfail(mx, dns):
    """RFC 7208 §2.6.6 / DA-08: a DNS failure (SERVFAIL) fetching the record is temperror,
    never pass or none; without a DMARC policy the message is delivered."""
    domain = "spf-servfail.example"
    dns.servfail.add(domain)
    marker = new_marker()
    accepted(mx, f"sender@{domain}", msg(marker, f"sender@{domain}"))
    spf = our_results(stored(mx, marker)).one("spf")
    assert spf.result == "temperror", str(spf)
    assert dns.asked(domain, "TXT"), "the SPF record was asked for"


@pytest.mark.parametrize("includes, expected", [(10, "pass"), (11, "permerror")], ids=["lim10", "lim11"])
def test_spf_ten_dns_terms_limit(mx, dns, includes, expected):
    """DA-01, RFC 7208 §4.6.4: at most 10 DNS-querying terms. With 10 includes (none matching)
    the evaluation goes on to ip4: and passes; with 11 the 11th is a permerror, found before its
    lookup: the DNS server is never asked for i11. (The long record is several strings.)"""
    domain = f"spf-lim{includes}.example"
    terms = " ".join(f"include:i{n}.{domain}" for n in range(1, includes + 1))
    dns.set_txt(domain, f"v=spf1 {terms} ip4:127.0.0.1 -all")
    for n in range(1, includes + 1):
        dns.set_txt(f"i{n}.{domain}", "v=spf1 -all")
    marker = new_marker()
    accepted(mx, f"sender@{domain}", msg(marker, f"sender@{domain}"))
    spf = our_results(stored(mx, marker)).one("spf")
    assert spf.result == expected, str(spf)
    assert dns.asked(f"i10.{domain}"), "the 10th include was looked up"
    if includes == 11:
        assert dns.asked(f"i11.{domain}") == [], "the limit must be checked before the 11th lookup"


@pytest.mark.parametrize("voids, expected", [(2, "pass"), (3, "permerror")])
def test_spf_void_lookup_limit(mx, dns, voids, expected):
    """DA-02, RFC 7208 §4.6.4: more than two void lookups (NXDOMAIN) is a permerror, even when a
    later term would match; two are allowed."""
    domain = f"spf-void{voids}.example"
    terms = " ".join(f"a:nx{n}.{domain}" for n in range(1, voids + 1))
    dns.set_txt(domain, f"v=spf1 {terms} ip4:127.0.0.1 -all")
    marker = new_marker()
    accepted(mx, f"sender@{domain}", msg(marker, f"sender@{domain}"))
    spf = our_results(stored(mx, marker)).one("spf")
    assert spf.result == expected, str(spf)


def test_spf_helo_identity_for_null_reverse_path(mx, dns):
    """RFC 7208 §2.4: with `MAIL FROM:<>` the HELO name is checked, reported as smtp.helo
    (RFC 8601 §2.7.2)."""
    helo = "helo-spf.example"
    dns.set_txt(helo, SPF_HERE)
    marker = new_marker()
    accepted(mx, "", msg(marker, f"postmaster@{helo}"), helo=helo)
    spf = our_results(stored(mx, marker)).one("spf")
    assert spf.result == "pass", str(spf)
    assert spf.props.get("smtp.helo") == helo and "smtp.mailfrom" not in spf.props, str(spf)


def test_spf_include_and_redirect_loops_are_bounded(mx, dns):
    """DA-03, RFC 7208 §4.6.4: an include loop (loop1 -> loop2 -> loop1) and a redirect to
    itself end in permerror after at most 10 DNS-querying terms: at most 11 queries."""
    a, b, r = "spf-loop1.example", "spf-loop2.example", "spf-redirect-loop.example"
    dns.set_txt(a, f"v=spf1 include:{b} -all")
    dns.set_txt(b, f"v=spf1 include:{a} -all")
    dns.set_txt(r, f"v=spf1 redirect={r}")
    for domain in (a, r):
        before = len(dns.queries)
        marker = new_marker()
        accepted(mx, f"sender@{domain}", msg(marker, f"sender@{domain}"))
        spf = our_results(stored(mx, marker)).one("spf")
        assert spf.result == "permerror", str(spf)
        looped = [q for q in dns.queries[before:] if q[1] in (a, b, r) and q[2] == "TXT"]
        assert len(looped) <= 11, f"{len(looped)} queries for a loop"


def test_spf_mx_with_more_than_ten_names(mx, dns):
    """DA-04, RFC 7208 §4.6.4: an `mx` term whose domain has 11 MX names is a permerror; no
    more than 10 of them are looked up for addresses."""
    domain = "spf-mx11.example"
    dns.set_txt(domain, "v=spf1 mx -all")
    dns.set(domain, "MX", [(n, f"mx{n}.{domain}") for n in range(1, 12)])
    for n in range(1, 12):
        dns.set(f"mx{n}.{domain}", "A", ["192.0.2.1"])
    marker = new_marker()
    accepted(mx, f"sender@{domain}", msg(marker, f"sender@{domain}"))
    spf = our_results(stored(mx, marker)).one("spf")
    assert spf.result == "permerror", str(spf)
    hosts = {q[1] for q in dns.queries if q[1].startswith("mx") and q[1].endswith(f".{domain}")
             and q[2] in ("A", "AAAA")}
    assert len(hosts) <= 10, sorted(hosts)


def test_spf_macro_expansion_is_bounded(mx, dns):
    """DA-06, RFC 7208 §7.3: `exists:%{l}.%{l}.%{l}.%{l}.%{l}.%{d}` with a 64-octet local part
    expands past 253 octets (and to 64-octet labels): truncated or refused, never a query with a
    name over 253 octets, never a pass, and the server lives on."""
    domain = "spf-macro.example"
    dns.set_txt(domain, "v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.%{d} exists:%{l200r}.%{ir}.%{v}._spf.%{d2} -all")
    local = "a" * 64
    marker = new_marker()
    accepted(mx, f"{local}@{domain}", msg(marker, f"{local}@{domain}"))
    spf = our_results(stored(mx, marker)).one("spf")
    assert spf.result in ("fail", "permerror"), str(spf)
    names = [q[1] for q in dns.queries if q[1].endswith(domain)]
    assert all(len(n) <= 253 and all(len(label) <= 63 for label in n.split(".")) for n in names), names
    mx.assert_alive()


def test_spf_big_record_over_tcp(mx, dns):
    """DA-05, RFC 7208 §3.4 / RFC 7766: a 4500-octet SPF record does not fit a UDP answer; it is
    fetched over TCP and evaluated (the matching ip4: is near its end): pass."""
    domain = "spf-big.example"
    terms = " ".join(f"ip4:198.51.{n // 250}.{n % 250 + 1}" for n in range(300))
    record = f"v=spf1 {terms} ip4:127.0.0.1 -all"
    assert len(record) > 4200  # over any EDNS UDP size a resolver offers
    dns.set_txt(domain, record)
    marker = new_marker()
    accepted(mx, f"sender@{domain}", msg(marker, f"sender@{domain}"))
    spf = our_results(stored(mx, marker)).one("spf")
    assert spf.result == "pass", str(spf)
    assert ("tcp", domain, "TXT") in dns.queries, "the truncated answer was asked again over TCP"


# --- DMARC (RFC 7489) ----------------------------------------------------------------------------


def test_rs11_spoof_of_local_domain_rejected(mx, dns):
    """RS-11, RFC 7489 §6.6 / §6.7: `MAIL FROM:<ceo@test.example>` and `From: ceo@test.example`
    from a host test.example's SPF excludes, under `p=reject`, with no DKIM: 550 5.7.1 at the
    end of DATA, nothing stored."""
    dns.set_txt("test.example", SPF_ELSEWHERE)
    dns.set_txt("_dmarc.test.example", "v=DMARC1; p=reject")
    marker = new_marker()
    refused(mx, "ceo@test.example", msg(marker, "ceo@test.example"), marker, 550, "5.7.1")


def test_dmarc_quarantine_goes_to_junk(mx, dns):
    """RFC 7489 §6.3 p=quarantine: a failing message lands in the recipient's Junk mailbox
    (`dmarc_quarantine = "junk"`, the default), not INBOX."""
    domain = "dmarc-quarantine.example"
    dns.set_txt(domain, SPF_ELSEWHERE)
    dns.set_txt(f"_dmarc.{domain}", "v=DMARC1; p=quarantine")
    marker = new_marker()
    accepted(mx, f"user@{domain}", msg(marker, f"user@{domain}"))
    copy = stored(mx, marker, ALICE, "Junk")
    dmarc_res = our_results(copy).one("dmarc")
    assert dmarc_res.result == "fail" and dmarc_res.props.get("header.from") == domain, str(dmarc_res)
    assert dmarc_comment_has(dmarc_res, "p=quarantine", "dis=quarantine"), str(dmarc_res)
    assert mx.db.messages(ALICE, "INBOX", marker) == []


def test_dmarc_none_delivers_to_inbox_with_fail(mx, dns):
    """RFC 7489 §6.3 p=none: monitoring only: INBOX, but the result says fail."""
    domain = "dmarc-none.example"
    dns.set_txt(domain, SPF_ELSEWHERE)
    dns.set_txt(f"_dmarc.{domain}", "v=DMARC1; p=none")
    marker = new_marker()
    accepted(mx, f"user@{domain}", msg(marker, f"user@{domain}"))
    ar = our_results(stored(mx, marker))
    assert ar.one("spf").result == "fail", str(ar)
    dmarc_res = ar.one("dmarc")
    assert dmarc_res.result == "fail" and dmarc_comment_has(dmarc_res, "p=none", "dis=none"), str(dmarc_res)


def test_dmarc_aligned_dkim_pass_overrides_spf_fail(mx, dns, keys):
    """RFC 7489 §4.2: DMARC passes when either SPF or DKIM passes aligned: SPF fails, a dkimpy
    signature of the From domain passes: dmarc=pass under p=reject, INBOX."""
    domain = "dmarc-aligned.example"
    publish(dns, domain, "sel", keys["ed25519"])
    dns.set_txt(domain, SPF_ELSEWHERE)
    dns.set_txt(f"_dmarc.{domain}", "v=DMARC1; p=reject")
    marker = new_marker()
    accepted(mx, f"user@{domain}", sign(msg(marker, f"user@{domain}"), domain, "sel", keys["ed25519"]))
    ar = our_results(stored(mx, marker))
    assert [ar.one("spf").result, ar.one("dkim").result, ar.one("dmarc").result] == ["fail", "pass", "pass"], str(ar)


@pytest.mark.parametrize("mode", ["relaxed", "strict"])
def test_dmarc_dkim_alignment_modes(mx, dns, keys, mode):
    """RFC 7489 §3.1.1: From `user@mail.<org>`, DKIM d=<org>, policy at `_dmarc.<org>`
    (p=quarantine). Relaxed (default): same organizational domain, aligned: pass, INBOX.
    Strict (adkim=s): not the same domain: fail, Junk (the signature itself passes)."""
    org = f"align-{mode}.example"
    author = f"user@mail.{org}"
    publish(dns, org, "sel", keys["rsa"])
    dns.set_txt(f"_dmarc.{org}", "v=DMARC1; p=quarantine" + ("; adkim=s" if mode == "strict" else ""))
    marker = new_marker()
    accepted(mx, author, sign(msg(marker, author), org, "sel", keys["rsa"]))
    copy = stored(mx, marker, ALICE, "INBOX" if mode == "relaxed" else "Junk")
    ar = our_results(copy)
    assert ar.one("dkim").result == "pass" and ar.one("dkim").props.get("header.d") == org, str(ar)
    dmarc_res = ar.one("dmarc")
    assert dmarc_res.result == ("pass" if mode == "relaxed" else "fail"), str(dmarc_res)
    assert dmarc_res.props.get("header.from") == f"mail.{org}", str(dmarc_res)


def test_dmarc_subdomain_policy(mx, dns):
    """RFC 7489 §6.3 sp=: `_dmarc.<org>` says p=none; sp=reject. A failing message from a
    subdomain (no record of its own) is refused; one from the organizational domain itself is
    delivered with dmarc=fail (p=none)."""
    org = "dmarc-sp.example"
    dns.set_txt(f"_dmarc.{org}", "v=DMARC1; p=none; sp=reject")
    dns.set_txt(org, SPF_ELSEWHERE)
    dns.set_txt(f"child.{org}", SPF_ELSEWHERE)
    marker = new_marker()
    refused(mx, f"user@child.{org}", msg(marker, f"user@child.{org}"), marker, 550, "5.7.1")
    marker = new_marker()
    accepted(mx, f"user@{org}", msg(marker, f"user@{org}"))
    dmarc_res = our_results(stored(mx, marker)).one("dmarc")
    assert dmarc_res.result == "fail" and dmarc_comment_has(dmarc_res, "p=none", "dis=none"), str(dmarc_res)


def test_dmarc_discovery_is_bounded(mx, dns):
    """DA-14, RFC 7489 §6.6.3: From `u@a.b.c.d.e.f.g.h.i.j.k.l.m.<org>` with a record only at
    `_dmarc.<org>` (p=quarantine): the organizational domain's policy applies (Junk), after at
    most 8 `_dmarc` queries (2 with the public-suffix method)."""
    org = "dmarc-walk.example"
    author = f"u@a.b.c.d.e.f.g.h.i.j.k.l.m.{org}"
    dns.set_txt(f"_dmarc.{org}", "v=DMARC1; p=quarantine")
    before = len(dns.queries)
    marker = new_marker()
    accepted(mx, author, msg(marker, author))
    dmarc_res = our_results(stored(mx, marker, ALICE, "Junk")).one("dmarc")
    assert dmarc_res.result == "fail", str(dmarc_res)
    asked = [q for q in dns.queries[before:] if q[1].startswith("_dmarc.") and q[1].endswith(org)]
    assert 1 <= len(asked) <= 8, asked


def test_per_domain_rules_turn_reject_into_junk(mx, dns):
    """`[sender_auth.domain."second.example"] dmarc_reject = "junk"`: the RS-11 spoof (p=reject
    failure) to erin@second.example is accepted into erin's Junk; to alice@test.example (default
    rules) it is still refused."""
    dns.set_txt("test.example", SPF_ELSEWHERE)
    dns.set_txt("_dmarc.test.example", "v=DMARC1; p=reject")
    marker = new_marker()
    accepted(mx, "ceo@test.example", build_message(marker, sender="ceo@test.example", to=ERIN), rcpts=(ERIN,))
    copy = stored(mx, marker, ERIN, "Junk")
    dmarc_res = our_results(copy).one("dmarc")
    assert dmarc_res.result == "fail" and dmarc_comment_has(dmarc_res, "p=reject"), str(dmarc_res)
    marker = new_marker()
    refused(mx, "ceo@test.example", msg(marker, "ceo@test.example"), marker, 550, "5.7.1")


REJ = "dmarc-da13.example"  # p=reject, SPF excludes 127.0.0.1


@pytest.mark.parametrize("from_lines, outcome", [
    pytest.param(b"From: <a@x-da13.example>\r\nFrom: <b@y-da13.example>", 550, id="two-from-fields"),
    pytest.param(b"From: a@x-da13.example, b@y-da13.example", 550, id="two-domains"),
    pytest.param(b'From: "ceo@dmarc-da13.example" <>', 550, id="no-domain"),
    pytest.param(b"From: ceo@dmarc-da13.example (comment <x@y-da13.example>)", 550, id="comment-is-not-the-domain"),
    pytest.param(b"From: =?utf-8?Q?ceo=40dmarc-da13.example?= <x@f-da13.example>", "f-da13.example",
                 id="encoded-display-name"),
    pytest.param(b"", None, id="no-from"),
])
def test_dmarc_from_domain_extraction(mx, dns, from_lines, outcome):
    """DA-13, RFC 7489 §6.6.1, RFC 5322 §3.6: several From fields, a From with several
    domains or none: 550 5.7.1 (`reject_ambiguous_from`). The domain comes from the address, never
    from a comment or display name: a comment naming a p=reject domain's address does not hide
    it (refused), an encoded display name does not supply one (delivered, header.from=the
    address's domain). No From at all: delivered, and dmarc=none (RFC 7489 §11.2: "none: ... no
    aligned identifier could be extracted")."""
    dns.set_txt(REJ, SPF_ELSEWHERE)
    dns.set_txt(f"_dmarc.{REJ}", "v=DMARC1; p=reject")
    marker = new_marker()
    message = build_message(marker, to=ALICE, from_header=from_lines)
    if outcome == 550:
        refused(mx, "bounce@da13-envelope.example", message, marker, 550, "5.7.1")
        return
    accepted(mx, "bounce@da13-envelope.example", message)
    dmarc_res = our_results(stored(mx, marker)).one("dmarc")
    if outcome is None:
        assert dmarc_res.result == "none", str(dmarc_res)
    else:
        assert dmarc_res.props.get("header.from") == outcome, str(dmarc_res)


@pytest.mark.parametrize("failing", ["dmarc-record", "aligned-spf"])
def test_dns_failure_defers(mx, dns, failing):
    """DA-08, RFC 7489 §6.6.3 / §6.6.2: SERVFAIL for the `_dmarc` record leaves the policy open:
    451 4.7.0, nothing stored. Same when the policy is p=reject and the aligned SPF check could
    not be made (SERVFAIL for the SPF record): the message might have passed."""
    domain = f"tempfail-{failing}.example"
    if failing == "dmarc-record":
        dns.set_txt(domain, SPF_ELSEWHERE)
        dns.servfail.add(f"_dmarc.{domain}")
    else:
        dns.set_txt(f"_dmarc.{domain}", "v=DMARC1; p=reject")
        dns.servfail.add(domain)
    marker = new_marker()
    refused(mx, f"user@{domain}", msg(marker, f"user@{domain}"), marker, 451, "4.7.0")


# --- ARC (RFC 8617) ------------------------------------------------------------------------------


def _forwarded(dns, keys, marker: str, sealer: str) -> tuple[str, bytes]:
    """A message of arc-origin.example (p=reject, SPF excludes us) signed by its domain, then
    changed by a mailing list (footer: DKIM breaks) which records what it saw in an A-R and
    seals it (dkimpy arc_sign, i=1). Returns (envelope sender at the list, message)."""
    pytest.importorskip("authres", reason="dkimpy's ARC signing needs the authres package")
    origin = "arc-origin.example"
    publish(dns, origin, "sel", keys["rsa"])
    dns.set_txt(origin, SPF_ELSEWHERE)
    dns.set_txt(f"_dmarc.{origin}", "v=DMARC1; p=reject")
    publish(dns, sealer, "arc", keys["arc"])
    dns.set_txt(sealer, SPF_HERE)
    signed = sign(msg(marker, f"user@{origin}"), origin, "sel", keys["rsa"])
    footer = signed + b"--\r\nlist footer\r\n"
    seen = (f"Authentication-Results: {sealer}; dkim=pass header.d={origin};"
            f" spf=pass smtp.mailfrom=user@{origin}; dmarc=pass header.from={origin}\r\n").encode()
    message = seen + footer
    seal = dkim.arc_sign(message, b"arc", sealer.encode(), keys["arc"].private, sealer.encode())
    return f"list-bounce@{sealer}", b"".join(seal) + message


@pytest.mark.parametrize("sealer", [TRUSTED_SEALER, "untrusted-list.example"])
def test_arc_seal_of_trusted_forwarder_overrides_dmarc_reject(mx, dns, keys, sealer):
    """RFC 8617 §7.2: a valid ARC chain (arc=pass) whose sealer is in `trusted_arc_sealers`
    stands in for the DMARC failure that forwarding caused: delivered to INBOX. The same chain
    sealed by a forwarder not in the list: the p=reject failure stands, 550 5.7.1."""
    marker = new_marker()
    envelope, message = _forwarded(dns, keys, marker, sealer)
    if sealer != TRUSTED_SEALER:
        refused(mx, envelope, message, marker, 550, "5.7.1")
        return
    accepted(mx, envelope, message)
    ar = our_results(stored(mx, marker))
    assert ar.one("arc").result == "pass", str(ar)
    assert ar.one("dmarc").result == "fail" and ar.one("dkim").result == "fail", str(ar)
    names = [k.lower() for k, _ in raw_fields(stored(mx, marker).data)]
    assert names.count("authentication-results") == 2, "the forwarder's A-R is kept"


def test_arc_broken_chain_does_not_override(mx, dns, keys):
    """RFC 8617 §5.2: a chain whose newest ARC-Message-Signature no longer verifies (Subject
    changed after sealing) is arc=fail: even the trusted forwarder's seal does not help."""
    marker = new_marker()
    envelope, message = _forwarded(dns, keys, marker, TRUSTED_SEALER)
    broken = message.replace(f"Subject: test {marker}".encode(), f"Subject: changed {marker}".encode())
    assert broken != message
    refused(mx, envelope, broken, marker, 550, "5.7.1")


# --- Authentication-Results spoofing (RFC 8601 §5) -----------------------------------------------


def test_forged_authentication_results_removed(mx, dns):
    """DA-16, RFC 8601 §5: incoming A-R fields claiming our authserv-id (any case, final dot,
    leading comment) are removed; ours is the only one naming us, right after our Received;
    A-R of other authserv-ids (even look-alikes) are kept byte for byte."""
    domain = "forged-ar.example"
    marker = new_marker()
    kept = [f"Authentication-Results: other.example; spf=fail smtp.mailfrom=x@{domain}",
            f"Authentication-Results: {HOSTNAME}.evil.example; spf=pass smtp.mailfrom=x@{domain}"]
    forged = [f"Authentication-Results: {HOSTNAME}; dkim=pass header.d=test.example;"
              " spf=pass smtp.mailfrom=test.example; dmarc=pass",
              f"Authentication-Results: (spoof) {HOSTNAME.upper()}.;\r\n dmarc=pass header.from=test.example"]
    extra = "\r\n".join([forged[0], kept[0], forged[1], kept[1], "Received-SPF: pass"]).encode() + b"\r\n"
    accepted(mx, f"user@{domain}", msg(marker, f"user@{domain}", headers=extra))
    copy = stored(mx, marker)
    ar = our_results(copy)  # exactly one naming us
    assert ar.one("dkim").result == "none" and ar.one("dmarc").result == "none", str(ar)
    fields = raw_fields(copy.data)
    names = [k.lower() for k, _ in fields]
    assert names.index("authentication-results") == names.index("received") + 1, names
    values = ["Authentication-Results:" + v for k, v in fields if k.lower() == "authentication-results"]
    assert len(values) == 3, "\n".join(values)
    assert values[1:] == kept, "\n".join(values)
    assert b"dkim=pass header.d=test.example" not in copy.data
    assert b"Received-SPF: pass" in copy.data  # not ours to judge


# --- submission ---------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["submission", "submissions"])
def test_submission_is_not_checked(mx, dns, service):
    """Mail submitted after AUTH (587 with STARTTLS via swaks, 465 via the raw client) is not
    checked and gets no Authentication-Results, even though test.example's SPF (-all for
    127.0.0.1) and DMARC p=reject would refuse it on port 25."""
    dns.set_txt("test.example", SPF_ELSEWHERE)
    dns.set_txt("_dmarc.test.example", "v=DMARC1; p=reject")
    marker = new_marker()
    if service == "submission":
        if shutil.which("swaks") is None:
            pytest.skip("swaks is not installed")
        proc = subprocess.run(
            ["swaks", "--server", f"127.0.0.1:{mx.ports['submission']}", "--tls", "--auth", "PLAIN",
             "--au", ALICE, "--ap", PASSWORDS[ALICE], "--from", ALICE, "--to", BOB, "--helo", HELO,
             "--timeout", "30", "--header", f"Subject: swaks {marker}", "--add-header", f"X-Test-Id: {marker}"],
            capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    else:
        with mx.login("submissions", ALICE, helo=HELO) as conn:
            reply = conn.send_mail(ALICE, [BOB], build_message(marker, sender=ALICE, to=BOB))
            assert reply.is_(250), f"{reply}\n{conn.log()}"
            conn.quit()
    copy = stored(mx, marker, BOB)
    assert [k for k, _ in parse_headers(copy.data) if k.lower() == "authentication-results"] == [], copy.data[:800]


# --- DMARC aggregate reports (RFC 7489 §7.2, Appendix C) -----------------------------------------


def today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def strip_ns(root: ET.Element) -> ET.Element:
    for element in root.iter():
        element.tag = element.tag.rsplit("}", 1)[-1]
    return root


def feedback_documents(text: str) -> dict[str, ET.Element]:
    """The <feedback> documents of `dmarc report`'s output, by policy domain."""
    docs = {}
    for block in re.findall(r"<feedback\b.*?</feedback>", text, re.S):
        root = strip_ns(ET.fromstring(block))
        docs[root.findtext("policy_published/domain")] = root
    return docs


def record_summary(root: ET.Element) -> list[dict]:
    """One dict per <record>: count, source_ip, disposition, dkim/spf (aligned), header_from,
    the auth_results dkim (domain, selector, result) and spf (domain, scope, result)."""
    out = []
    for rec in root.findall("record"):
        out.append({
            "count": int(rec.findtext("row/count")),
            "source_ip": rec.findtext("row/source_ip"),
            "disposition": rec.findtext("row/policy_evaluated/disposition"),
            "dkim": rec.findtext("row/policy_evaluated/dkim"),
            "spf": rec.findtext("row/policy_evaluated/spf"),
            "header_from": rec.findtext("identifiers/header_from"),
            "auth_dkim": [(d.findtext("domain"), d.findtext("selector"), d.findtext("result"))
                          for d in rec.findall("auth_results/dkim")],
            "auth_spf": [(s.findtext("domain"), s.findtext("scope"), s.findtext("result"))
                         for s in rec.findall("auth_results/spf")],
        })
    return out


def check_report_xml(root: ET.Element, domain: str, policy: str, expected: dict[tuple, int]) -> None:
    """The document is for `domain` with p=`policy`; its records, grouped by (dkim aligned,
    spf aligned, auth dkim, auth spf), have these counts."""
    assert root.tag == "feedback"
    assert root.findtext("report_metadata/org_name"), "report_metadata/org_name"
    assert root.findtext("report_metadata/report_id"), "report_metadata/report_id"
    begin = int(root.findtext("report_metadata/date_range/begin"))
    end = int(root.findtext("report_metadata/date_range/end"))
    midnight = int(datetime.datetime.fromisoformat(today()).replace(tzinfo=datetime.timezone.utc).timestamp())
    assert begin == midnight and 86399 <= end - begin <= 86400, (begin, end, midnight)
    assert root.findtext("policy_published/domain") == domain
    assert root.findtext("policy_published/p") == policy
    records = record_summary(root)
    assert records and all(r["source_ip"] == "127.0.0.1" for r in records), records
    assert all(r["header_from"] == domain for r in records), records
    grouped: dict[tuple, int] = {}
    for r in records:
        key = (r["dkim"], r["spf"], tuple(r["auth_dkim"]), tuple(r["auth_spf"]))
        grouped[key] = grouped.get(key, 0) + r["count"]
    assert grouped == expected, f"records: {records}"


def dmarc_cli(mx, *args) -> str:
    return assert_ok(mx.instance.run("dmarc", *args)).out


def drain_reports(mx) -> None:
    """Queue (and so forget) whatever report data today already has."""
    dmarc_cli(mx, "send", today())


def reports_for(sink: FakeSmtp, domain: str) -> list:
    pattern = re.compile(rf"^Report Domain: {re.escape(domain)} Submitter: ", re.M)
    found = []
    for delivery in list(sink.deliveries):
        parsed = email.message_from_bytes(delivery.data, policy=email.policy.default)
        if pattern.match(str(parsed["Subject"] or "")):
            found.append((delivery, parsed))
    return found


def test_dmarc_aggregate_report_to_same_organization(mx, dns, keys, sink):
    """RFC 7489 §7.2: three messages From a domain whose record has
    `rua=mailto:dmarc@<that domain>`: two DKIM-signed by it with its SPF passing, one sent
    through an unrelated envelope domain unsigned (dmarc fail, p=none). `dmarc report` prints
    the Appendix C XML (policy, counts 2 + 1, 127.0.0.1, header_from, dkim/spf results);
    `dmarc send <today>` queues it and the outbound queue delivers it to the domain's MX (the
    sink): null reverse-path, Subject `Report Domain: … Submitter: … Report-ID: <…>`, an
    application/gzip attachment named `<hostname>!<domain>!<begin>!<end>.xml.gz` holding the
    same data; then the day's data for the domain is gone."""
    domain = "report-same.example"
    drain_reports(mx)
    dns.set_txt(domain, SPF_HERE)
    dns.set_txt(f"_dmarc.{domain}", f"v=DMARC1; p=none; rua=mailto:dmarc@{domain}")
    dns.set("mx." + domain, "A", ["127.0.0.1"])
    dns.set(domain, "MX", [(10, "mx." + domain)])
    publish(dns, domain, "rep", keys["ed25519"])
    for _ in range(2):
        marker = new_marker()
        accepted(mx, f"news@{domain}", sign(msg(marker, f"news@{domain}"), domain, "rep", keys["ed25519"]))
        assert result(stored(mx, marker), "dmarc") == "pass"
    marker = new_marker()
    accepted(mx, "bounce@report-unrelated.example", msg(marker, f"news@{domain}"))
    assert result(stored(mx, marker), "dmarc") == "fail"

    expected = {
        ("pass", "pass", ((domain, "rep", "pass"),), ((domain, "mfrom", "pass"),)): 2,
        ("fail", "fail", (), (("report-unrelated.example", "mfrom", "none"),)): 1,
    }
    docs = feedback_documents(dmarc_cli(mx, "report"))
    assert domain in docs, f"no report for {domain}: {list(docs)}"
    check_report_xml(docs[domain], domain, "none", expected)

    out = lines(dmarc_cli(mx, "send", today()))
    assert out[-1] == "1 DMARC report(s) queued", out
    assert domain not in feedback_documents(dmarc_cli(mx, "report", today())), "the rows are forgotten once queued"

    assert_ok(mx.instance.run("queue", "flush"))
    found = wait_until(lambda: reports_for(sink, domain), REPORT_ARRIVE_TIMEOUT, 0.2)
    assert found, (f"no report reached the sink in {REPORT_ARRIVE_TIMEOUT}s; sink errors {sink.errors}\n"
                   f"{mx.instance.run('queue', 'list').out}\n{mx.log()[-3000:]}")
    assert len(found) == 1, [d.rcpts for d, _ in found]
    delivery, report = found[0]
    assert delivery.mail_from == "", f"reports go out with the null reverse-path: {delivery.mail_from!r}"
    assert delivery.rcpts == [f"dmarc@{domain}"], delivery.rcpts
    assert report["From"].addresses[0].addr_spec == "noreply-dmarc@test.example", str(report["From"])
    subject = " ".join(str(report["Subject"]).split())
    assert re.fullmatch(rf"Report Domain: {re.escape(domain)} Submitter: {re.escape(HOSTNAME)} "
                        r"Report-ID: <[^<>\s]+>", subject), subject
    attachments = [p for p in report.walk() if p.get_content_type() == "application/gzip"]
    assert len(attachments) == 1, [p.get_content_type() for p in report.walk()]
    filename = attachments[0].get_filename()
    m = re.fullmatch(rf"{re.escape(HOSTNAME)}!{re.escape(domain)}!(\d+)!(\d+)\.xml\.gz", filename or "")
    assert m, filename
    root = strip_ns(ET.fromstring(gzip.decompress(attachments[0].get_payload(decode=True))))
    check_report_xml(root, domain, "none", expected)
    assert (m[1], m[2]) == (root.findtext("report_metadata/date_range/begin"),
                            root.findtext("report_metadata/date_range/end"))


def test_dmarc_report_external_destination_needs_authorization(mx, dns, sink):
    """RFC 7489 §7.1: reports for a domain go to a rua address of another organizational domain
    only if `<domain>._report._dmarc.<rua domain>` publishes "v=DMARC1". Two domains with
    `rua=mailto:reports@collector.example`, only one authorized: `dmarc send` queues 1 report,
    the sink receives that one only, and the authorization record of the other was asked for."""
    authorized, unauthorized, collector = "report-ext-ok.example", "report-ext-no.example", "collector.example"
    drain_reports(mx)
    for domain in (authorized, unauthorized):
        dns.set_txt(domain, SPF_HERE)
        dns.set_txt(f"_dmarc.{domain}", f"v=DMARC1; p=quarantine; rua=mailto:reports@{collector}")
    dns.set_txt(f"{authorized}._report._dmarc.{collector}", "v=DMARC1")
    dns.set(collector, "MX", [(10, f"mx.{collector}")])
    dns.set(f"mx.{collector}", "A", ["127.0.0.1"])
    for domain in (authorized, unauthorized):
        marker = new_marker()
        accepted(mx, f"news@{domain}", msg(marker, f"news@{domain}"))
        assert result(stored(mx, marker), "dmarc") == "pass"
    docs = feedback_documents(dmarc_cli(mx, "report", today()))
    assert {authorized, unauthorized} <= docs.keys(), list(docs)
    for domain in (authorized, unauthorized):
        check_report_xml(docs[domain], domain, "quarantine",
                         {("fail", "pass", (), ((domain, "mfrom", "pass"),)): 1})

    out = lines(dmarc_cli(mx, "send", today()))
    assert out[-1] == "1 DMARC report(s) queued", out
    assert dns.asked(f"{unauthorized}._report._dmarc.{collector}", "TXT"), "the authorization was checked"
    assert_ok(mx.instance.run("queue", "flush"))
    found = wait_until(lambda: reports_for(sink, authorized), REPORT_ARRIVE_TIMEOUT, 0.2)
    assert found, f"the authorized report did not arrive\n{mx.instance.run('queue', 'list').out}\n{mx.log()[-3000:]}"
    assert found[0][0].rcpts == [f"reports@{collector}"], found[0][0].rcpts
    assert reports_for(sink, unauthorized) == [], "a report went to an unauthorized external destination"
    assert not any(q.address == f"reports@{collector}" and unauthorized.encode() in q.data
                   for q in mx.db.queued()), "nor is one queued"


def test_null_mx_sender_refused_at_mail_from(mx, dns):
    """DA-15, RFC 7505 §4.2: a reverse-path whose domain publishes a null MX is refused at MAIL
    FROM with 550 5.7.27; the same domain with an ordinary MX is accepted."""
    domain = "nullmx-sender.example"
    dns.set(domain, "MX", [(0, ".")])
    with mx.connect("smtp") as conn:
        conn.ehlo(HELO)
        reply = conn.mail(f"ceo@{domain}")
        assert reply.is_(550, "5.7.27"), f"MAIL FROM -> {reply}\n{conn.log()}"
        conn.cmd("QUIT")
    other = "mx-sender.example"
    dns.set(other, "MX", [(10, f"mx.{other}")])
    with mx.connect("smtp") as conn:
        conn.ehlo(HELO)
        assert conn.mail(f"ceo@{other}").code == 250, conn.log()
        conn.cmd("QUIT")


@pytest.mark.parametrize("stray", [b"X-no-colon-here", b":", b"bad name: value"])
def test_stray_header_line_cannot_hide_the_from(mx, dns, stray):
    """RFC 5322 §2.2: a header line that is no field makes parsers disagree on where the header
    ends (one stops there, IMAP reads on to the empty line): a From after it must not escape
    DMARC while the mail client shows it. Such a message is refused with 550 5.7.1."""
    domain = "stray-from.example"
    dns.set_txt(domain, SPF_ELSEWHERE)
    dns.set_txt(f"_dmarc.{domain}", "v=DMARC1; p=reject")
    marker = new_marker()
    message = stray + b"\r\n" + msg(marker, f"ceo@{domain}")
    refused(mx, "bounce@elsewhere.example", message, marker, 550, "5.7.1")
