"""MTA-STS (RFC 8461) for outbound delivery: a sending instance A (test.example, Alice) finds
a destination's policy through the `_mta-sts` TXT record in the test DNS server (dnsserver.py)
and fetches it over HTTPS from a Python server of this file; a receiving instance B serves every
destination domain of these tests on its smtp port (A's `[outbound] remote_port`).

Each test uses its own destination domain (so that A's in-memory policy cache never carries
one test's policy into another), with its own `_mta-sts` TXT record and policy:

- enforce, the MX named, B's certificate valid for it: delivered over STARTTLS;
- enforce, the MX not named: deferred (4.7.5), nothing sent; after the domain publishes a new
  policy (new id, a `*.` pattern matching the MX) and `queue flush`: delivered;
- enforce, the MX named but B's certificate not valid for it (another name; another CA):
  deferred with the TLS error, nothing sent (no plaintext fallback);
- testing: delivered despite an unnamed MX and a certificate for another name;
- a policy that cannot be had (404, text/html, a redirect, a malformed policy, a policy host
  with an untrusted certificate) is no policy: delivered opportunistically, although the body
  served each time is an `enforce` policy that does not name the MX.

A trusts a test CA of its own (`[outbound] ca_file`); the policy host's certificate and B's
certificate for mx.remote.example come from it; a second, untrusted CA issues the rest. Every
name resolves to 127.0.0.1; A connects to policy hosts on `[outbound] mta_sts_port`.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dnsserver import DnsServer
from outbound_support import queue_entries, wait_until
from harness import Instance, assert_ok, lines, toml_str
from maildb import Stored, parse_headers
from mailserver import ALICE, SMTP_SERVICES, MailServer, configure, provision, stop_mail_server
from pki import Leaf, Pki
from smtpclient import build_message, new_marker

HELO = "client.test"
REMOTE_HOST = "mx.remote.example"  # B's hostname; the MX of most domains here
WELL_KNOWN = "/.well-known/mta-sts.txt"

# The destination domains, one (or one group) per test. All are served by B.
ENFORCE = "sts-enforce.example"  # MX mx.remote.example, named by the policy
MISMATCH = "sts-mismatch.example"  # MX mx.remote.example, the policy names other.remote.example
BADNAME = "sts-badname.example"  # MX mx.sts-badname.example: B has no certificate for that name
ROGUE = "sts-rogue.example"  # MX mx.sts-rogue.example: B's certificate for it is from an untrusted CA
TESTING = "sts-testing.example"  # mode testing; MX mx.sts-testing.example, not named, no valid certificate
FETCH_FAILURES = {  # what the policy host does wrong -> the domain
    "http-404": "sts-404.example",
    "text-html": "sts-html.example",
    "redirect": "sts-redirect.example",
    "bad-version": "sts-badversion.example",
    "untrusted-policy-host": "sts-policycert.example",
}
MX_OF = {
    ENFORCE: REMOTE_HOST,
    MISMATCH: REMOTE_HOST,
    BADNAME: f"mx.{BADNAME}",
    ROGUE: f"mx.{ROGUE}",
    TESTING: f"mx.{TESTING}",
    **{domain: REMOTE_HOST for domain in FETCH_FAILURES.values()},
}
DOMAINS = list(MX_OF)

# The scheduler is woken at once when a message is queued; after `queue flush` from the CLI it
# polls the store every 5 s. A failed attempt is recorded within a few seconds.
ARRIVE_TIMEOUT = 20.0
DNS_TTL = 1
ATTEMPT_TIMEOUT = 15.0



def rcpt(domain: str) -> str:
    return f"bob@{domain}"


def policy_text(mode: str, *mx: str, max_age: int = 86400, version: str = "STSv1") -> str:
    """An RFC 8461 §3.2 policy body (CRLF lines)."""
    fields = [f"version: {version}", f"mode: {mode}", *(f"mx: {host}" for host in mx), f"max_age: {max_age}"]
    return "\r\n".join(fields) + "\r\n"


# An enforce policy that does not name any MX host of these tests: served, in one way or another,
# where a fetch must fail (so that a sender that took it anyway would not deliver).
HOSTILE_POLICY = policy_text("enforce", "other.remote.example")


# --- the policy host ------------------------------------------------------------------------------


@dataclass
class Response:
    status: int = 200
    content_type: str = "text/plain"
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()


class PolicyServer:
    """HTTPS on 127.0.0.1 (an ephemeral port, a thread per connection): `GET PATH` with
    `Host: H` gets `responses[(H, PATH)]`, else a 404. The certificate is `leaf`, or, for an
    SNI name in `sni_leaves`, that one. Records the SNI names of all handshakes (`handshakes`,
    with the error of a failed one) and the requests (`requests`: (host, path))."""

    def __init__(self, leaf: Leaf, sni_leaves: dict[str, Leaf] | None = None):
        self.lock = threading.Lock()
        self.responses: dict[tuple[str, str], Response] = {}
        self.requests: list[tuple[str, str]] = []
        self.handshakes: list[tuple[str | None, str | None]] = []  # (SNI, error or None)
        self.context = self._context(leaf)
        self.sni_contexts = {name.lower(): self._context(other) for name, other in (sni_leaves or {}).items()}
        self.context.sni_callback = self._sni
        owner = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def finish_request(self, request, client_address):
                # The handshake in this connection's thread (not in the accepting one).
                request.settimeout(10)
                try:
                    tls = owner.context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError) as error:
                    owner._handshake_failed(error)
                    return
                try:
                    self.RequestHandlerClass(tls, client_address, self)
                finally:
                    try:
                        tls.close()
                    except OSError:
                        pass

        self.httpd = Server(("127.0.0.1", 0), _PolicyHandler)
        self.httpd.owner = owner
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="mta-sts-https", daemon=True)

    @staticmethod
    def _context(leaf: Leaf) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(leaf.cert), str(leaf.key))
        return context

    def _sni(self, sock: ssl.SSLObject, name: str | None, _context) -> None:
        with self.lock:
            self.handshakes.append((name, None))
        other = self.sni_contexts.get((name or "").lower())
        if other is not None:
            sock.context = other
        return None

    def _handshake_failed(self, error: Exception) -> None:
        with self.lock:
            # The SNI callback ran first (if the ClientHello got that far): note the error there.
            if self.handshakes and self.handshakes[-1][1] is None:
                self.handshakes[-1] = (self.handshakes[-1][0], repr(error))
            else:
                self.handshakes.append((None, repr(error)))

    def serve(self, host: str, path: str, response: Response) -> None:
        with self.lock:
            self.responses[(host.lower(), path)] = response

    def respond(self, host: str, path: str) -> Response:
        with self.lock:
            self.requests.append((host, path))
            return self.responses.get((host, path), Response(404, body="not found\n"))

    def requests_for(self, host: str) -> list[str]:
        with self.lock:
            return [path for h, path in self.requests if h == host]

    def sni_seen(self, name: str) -> list[str | None]:
        """The errors of the handshakes with this SNI name (None: it succeeded, or failed later)."""
        with self.lock:
            return [error for sni, error in self.handshakes if (sni or "").lower() == name]

    def __enter__(self) -> PolicyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class _PolicyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        host = re.sub(r":\d+$", "", (self.headers.get("Host") or "").strip().lower())
        response = self.server.owner.respond(host, self.path)
        body = response.body.encode()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args) -> None:  # quiet
        pass


# --- fixtures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StsCerts:
    ca: Pki  # trusted by A (`[outbound] ca_file`)
    policy_host: Leaf  # mta-sts.<every domain>, from `ca`
    mx: Leaf  # mx.remote.example, from `ca`: B's default certificate
    rogue_mx: Leaf  # mx.sts-rogue.example, from an untrusted CA: B's certificate for that SNI name
    rogue_policy_host: Leaf  # mta-sts.sts-policycert.example, from the untrusted CA


@pytest.fixture(scope="module")
def sts_certs(tmp_path_factory) -> StsCerts:
    folder = tmp_path_factory.mktemp("sts-pki")
    ca = Pki(folder / "trusted", name="sealpost MTA-STS test CA")
    rogue = Pki(folder / "rogue", name="sealpost untrusted test CA")
    return StsCerts(
        ca=ca,
        policy_host=ca.leaf("policy-host", [f"mta-sts.{d}" for d in DOMAINS]),
        mx=ca.leaf("mx-remote", [REMOTE_HOST]),
        rogue_mx=rogue.leaf("rogue-mx", [MX_OF[ROGUE]]),
        rogue_policy_host=rogue.leaf("rogue-policy-host", [f"mta-sts.{FETCH_FAILURES['untrusted-policy-host']}"]),
    )


@pytest.fixture(scope="module")
def https(sts_certs) -> PolicyServer:
    server = PolicyServer(sts_certs.policy_host, sni_leaves={
        f"mta-sts.{FETCH_FAILURES['untrusted-policy-host']}": sts_certs.rogue_policy_host})
    with server:
        yield server


@pytest.fixture(scope="module")
def dns():
    """Every domain's MX; every MX host and policy host at 127.0.0.1. TXT records are added
    by `publish`. A TTL of 1 s, so that A's resolver sees a changed `_mta-sts` record soon."""
    records: dict[str, dict[str, list]] = {}
    for domain, mx in MX_OF.items():
        records[domain] = {"MX": [(10, mx)]}
        records[mx] = {"A": ["127.0.0.1"]}
        records[f"mta-sts.{domain}"] = {"A": ["127.0.0.1"]}
    with DnsServer(records, zones=["example"], ttl=DNS_TTL) as server:
        yield server


def publish(dns: DnsServer, https: PolicyServer, domain: str, policy_id: str, response: Response) -> None:
    """The domain's `_mta-sts` TXT record (with `policy_id`) and what its policy host answers."""
    https.serve(f"mta-sts.{domain}", WELL_KNOWN, response)
    dns.set(f"_mta-sts.{domain}", "TXT", [f"v=STSv1; id={policy_id}"])


@pytest.fixture(scope="module")
def remote(sealpost_bin, certs, sts_certs, tmp_path_factory) -> MailServer:
    """B: hostname mx.remote.example, every destination domain with the user bob; its default
    certificate is the trusted CA's for mx.remote.example, plus one from the untrusted CA for
    mx.sts-rogue.example (chosen by SNI)."""
    instance = Instance(sealpost_bin, tmp_path_factory.mktemp("sts-remote"), certs, services=SMTP_SERVICES)
    instance.config.hostname = REMOTE_HOST
    instance.config.log = {"level": "debug"}
    instance.install_cert(sts_certs.mx)
    sts_certs.rogue_mx.copy_to(instance.folder, "rogue-mx.pem", "rogue-mx-key.pem")
    instance.config.extra_certs.append(("rogue-mx.pem", "rogue-mx-key.pem"))
    configure(instance)
    for domain in DOMAINS:
        assert_ok(instance.run("domain", "add", domain))
        assert_ok(instance.run("user", "add", rcpt(domain), "--password-stdin", input="remote-Secret-pass-9\n"))
    server = MailServer(instance, instance.serve(), {})
    yield server
    problem = stop_mail_server(server)
    if problem:
        pytest.fail(problem)


@pytest.fixture(scope="module")
def sender(sealpost_bin, certs, sts_certs, tmp_path_factory, dns, https, remote) -> MailServer:
    """A: test.example, its DNS the test server, remote MX hosts on B's smtp port, policy hosts
    on the HTTPS server's port, the test CA trusted for both; debug logs."""
    instance = Instance(sealpost_bin, tmp_path_factory.mktemp("sts-sender"), certs, services=SMTP_SERVICES)
    instance.config.log = {"level": "debug"}
    configure(instance)
    instance.config.extra["dns"] = f'nameservers = ["{dns.nameserver}"]'
    instance.config.extra["outbound"] = "\n".join([
        f"remote_port = {remote.ports['smtp']}",
        f"mta_sts_port = {https.port}",
        f"ca_file = {toml_str(str(sts_certs.ca.ca_cert))}",
    ])
    instance.write_config()
    provision(instance)
    server = MailServer(instance, instance.serve(), {})
    yield server
    problem = stop_mail_server(server)
    if problem:
        pytest.fail(problem)


# --- helpers -----------------------------------------------------------------------------------


def submit(mail: MailServer, marker: str, recipient: str) -> bytes:
    """Alice submits a message carrying `marker` to `recipient`; returns the bytes sent."""
    message = build_message(marker, sender=ALICE, to=recipient)
    with mail.login("submissions", ALICE, helo=HELO) as conn:
        reply = conn.send_mail(ALICE, [recipient], message)
        assert reply.is_(250), f"{reply}\n{conn.log()}"
        conn.quit()
    return message



def context(sender: MailServer, remote: MailServer, https: PolicyServer | None = None) -> str:
    """What to show when a test fails: A's queue, the policy host's view, both logs."""
    parts = [f"A's queue: {sender.instance.run('queue', 'list').out}"]
    if https is not None:
        with https.lock:
            parts.append(f"policy host: requests {https.requests}, handshakes {https.handshakes}")
    parts.append(f"A's log (tail, without the DNS and TLS libraries' lines):\n{own_log(sender)[-5000:]}")
    parts.append(f"B's log (tail):\n{remote.log()[-2000:]}")
    return "\n".join(parts)


def own_log(mail: MailServer) -> str:
    """The server's log lines, without the debug output of hickory and rustls (and the lines
    of their multi-line messages)."""
    kept = [line for line in mail.log().splitlines()
            if re.match(r"\d{4}-\d\d-\d\dT", line) and not re.search(r" (hickory_\w+|rustls\w*)::", line)]
    return "\n".join(kept)


def delivered(sender: MailServer, remote: MailServer, https: PolicyServer, domain: str, marker: str) -> Stored:
    """B's one copy of the message to bob@domain (waiting for it), after A's queue let go of it."""
    found = wait_until(lambda: remote.db.messages(rcpt(domain), "INBOX", marker), ARRIVE_TIMEOUT)
    assert found, f"message {marker} not delivered to {rcpt(domain)} within {ARRIVE_TIMEOUT}s\n" + context(
        sender, remote, https)
    assert len(found) == 1, found
    left = wait_until(lambda: not sender.db.queued(marker), 5)
    assert left, f"still queued on A after the delivery: {sender.db.queued(marker)}"
    return found[0]


def received_by_b(stored: Stored) -> str:
    """B's Received field (the first one)."""
    received = [v for k, v in parse_headers(stored.data) if k.lower() == "received"]
    assert received, stored.data[:600]
    assert re.search(rf"\bby {re.escape(REMOTE_HOST)}\b", received[0]), received[0]
    return received[0]


def deferred(sender: MailServer, remote: MailServer, https: PolicyServer, marker: str) -> re.Match:
    """The `queue list` line of the one recipient of `marker` once an attempt failed (attempts
    >= 1, retried later, a temporary error)."""
    queued = sender.db.queued(marker)
    assert len(queued) == 1, f"{marker} is not queued on A (delivered at once?): {queued}\n" + context(
        sender, remote, https)
    queue_id = queued[0].queue_id

    def attempted():
        if not sender.db.queued(marker):
            return "gone"  # delivered (or bounced): no use waiting
        mine = [m for m in queue_entries(sender) if int(m[1]) == queue_id]
        return mine[0] if mine and int(mine[0][3]) >= 1 else None

    line = wait_until(attempted, ATTEMPT_TIMEOUT)
    assert line != "gone", f"{marker} left A's queue: delivered despite the policy?\n" + context(
        sender, remote, https)
    assert line, f"no failed attempt recorded for {marker} within {ATTEMPT_TIMEOUT}s\n" + context(
        sender, remote, https)
    assert line[4] != "now", f"a temporary failure is retried later: {line[0]}"
    assert line[5].startswith("4."), f"a temporary failure (4.x.x): {line[0]}"
    assert [q.status for q in sender.db.queued(marker)] == ["queued"], sender.db.queued(marker)
    return line


def policy_fetched_log(sender: MailServer, domain: str, mode: str) -> list[str]:
    """A's log lines saying it fetched the policy of `domain` in `mode` (Enforce / Testing)."""
    return [line for line in sender.log().splitlines()
            if "MTA-STS policy fetched" in line and re.search(rf"\bdomain={re.escape(domain)}\b", line)
            and re.search(rf"\bmode={mode}\b", line)]


def assert_nothing_on_b(remote: MailServer, marker: str) -> None:
    """B stored no copy (neither over TLS nor in a plaintext retry)."""
    time.sleep(0.5)  # (a copy would be stored before A records the attempt; a little margin)
    assert remote.db.find(marker) == [], f"B has a copy of {marker}:\n{remote.log()[-2000:]}"


# --- 1. enforce: delivered to a named MX with a valid certificate -------------------------------


def tls_policy(sender: MailServer, domain: str, policy_type: str) -> dict:
    """The RFC 8460 report entry of `policy_type` for `domain` in `queue tls-report` (today)."""
    reports = json.loads(assert_ok(sender.instance.run("queue", "tls-report")).out)
    for report in reports:
        for entry in report["policies"]:
            policy = entry["policy"]
            if policy["policy-domain"] == domain and policy["policy-type"] == policy_type:
                assert report["organization-name"] == sender.hostname, report
                return entry
    raise AssertionError(f"no {policy_type} policy for {domain} in {json.dumps(reports, indent=1)}")


def test_enforce_delivers_to_named_mx_over_verified_tls(sender, remote, https, dns):
    publish(dns, https, ENFORCE, "enforce1", Response(body=policy_text("enforce", REMOTE_HOST)))
    marker = new_marker()
    submit(sender, marker, rcpt(ENFORCE))
    stored = delivered(sender, remote, https, ENFORCE, marker)
    by_b = received_by_b(stored)
    assert re.search(r"\bwith ESMTPS\b", by_b), f"not over TLS: {by_b}"
    # The policy was looked up and fetched (the TXT record led to the HTTPS GET, SNI and Host
    # naming the policy host), and A took it as an enforce policy.
    fetched = https.requests_for(f"mta-sts.{ENFORCE}")
    assert fetched and set(fetched) == {WELL_KNOWN}, context(sender, remote, https)
    assert https.sni_seen(f"mta-sts.{ENFORCE}"), f"no SNI for the policy host: {https.handshakes}"
    assert policy_fetched_log(sender, ENFORCE, "Enforce"), context(sender, remote, https)
    # TLS-RPT (RFC 8460 §4.4): a successful session under the sts policy, recorded.
    entry = tls_policy(sender, ENFORCE, "sts")
    assert entry["summary"]["total-successful-session-count"] >= 1, entry
    assert "mode: enforce" in entry["policy"]["policy-string"], entry
    assert entry["policy"]["mx-host"] == [REMOTE_HOST], entry


# --- 2. enforce: the MX is not named --------------------------------------------------------------


def test_enforce_defers_when_no_mx_is_named_then_follows_a_new_policy(sender, remote, https, dns):
    publish(dns, https, MISMATCH, "mismatch1", Response(body=policy_text("enforce", "other.remote.example")))
    marker = new_marker()
    submit(sender, marker, rcpt(MISMATCH))
    line = deferred(sender, remote, https, marker)
    error = line[5]
    assert line[2] == rcpt(MISMATCH), line[0]
    assert error.startswith("4.7.5 "), f"RFC 3463 X.7.5 when no MX host passes the policy: {line[0]}"
    assert "MTA-STS" in error and REMOTE_HOST in error, f"the error names the policy and the host: {line[0]}"
    assert https.requests_for(f"mta-sts.{MISMATCH}"), context(sender, remote, https)
    assert policy_fetched_log(sender, MISMATCH, "Enforce"), context(sender, remote, https)
    assert_nothing_on_b(remote, marker)
    # B was never even connected to for this domain: no session carried the recipient.
    assert rcpt(MISMATCH) not in remote.log(), "B saw the recipient"

    # The domain publishes a new policy (a new id: RFC 8461 §3.1) naming its MX by a pattern
    # (`*.remote.example`, §4.1): the retry fetches it again and delivers.
    fetches = len(https.requests_for(f"mta-sts.{MISMATCH}"))
    publish(dns, https, MISMATCH, "mismatch2", Response(body=policy_text("enforce", "*.remote.example")))
    time.sleep(DNS_TTL + 0.5)  # the old TXT record leaves A's resolver cache
    out = lines(assert_ok(sender.instance.run("queue", "flush")).out)
    assert re.match(r"^[1-9]\d* recipients? due now$", out[0]), out
    stored = delivered(sender, remote, https, MISMATCH, marker)
    assert re.search(r"\bwith ESMTPS\b", received_by_b(stored))
    assert len(https.requests_for(f"mta-sts.{MISMATCH}")) > fetches, "the new id did not cause a new fetch"


# --- 3. enforce: the named MX has no valid certificate ------------------------------------------------


@pytest.mark.parametrize("domain, reason", [
    (BADNAME, r"NotValidForName|not valid for"),
    (ROGUE, r"UnknownIssuer|unknown issuer"),
], ids=["certificate-for-another-name", "certificate-from-untrusted-ca"])
def test_enforce_defers_when_the_mx_certificate_does_not_verify(sender, remote, https, dns, domain, reason):
    mx = MX_OF[domain]
    publish(dns, https, domain, "badcert1", Response(body=policy_text("enforce", mx)))
    marker = new_marker()
    submit(sender, marker, rcpt(domain))
    line = deferred(sender, remote, https, marker)
    error = line[5]
    assert "TLS" in error and re.search(r"(?i)certificate", error), f"a TLS certificate error: {line[0]}"
    assert re.search(reason, error, re.I), f"not the expected reason ({reason}): {line[0]}"
    assert policy_fetched_log(sender, domain, "Enforce"), context(sender, remote, https)
    # Nothing in plaintext after the failed handshake (RFC 8461 §5: the host is not used).
    assert_nothing_on_b(remote, marker)
    assert rcpt(domain) not in remote.log(), f"B saw the recipient (a plaintext retry?):\n{remote.log()[-3000:]}"
    # TLS-RPT (RFC 8460 §4.3.2.1): the failed validation, by kind, with the host and address.
    entry = tls_policy(sender, domain, "sts")
    expected = "certificate-host-mismatch" if domain == BADNAME else "certificate-not-trusted"
    details = entry["failure-details"]
    assert any(d["result-type"] == expected and d["receiving-mx-hostname"] == mx
               and d["receiving-ip"] == "127.0.0.1" for d in details), entry
    assert entry["summary"]["total-failure-session-count"] >= 1, entry


# --- 4. testing: delivered regardless -------------------------------------------------------------


def test_testing_mode_delivers_despite_failures(sender, remote, https, dns):
    """mode: testing (RFC 8461 §5): the MX is not named and its certificate is for another name
    (B presents mx.remote.example to mx.sts-testing.example), yet the message goes, over TLS."""
    publish(dns, https, TESTING, "testing1", Response(body=policy_text("testing", "other.remote.example")))
    marker = new_marker()
    submit(sender, marker, rcpt(TESTING))
    stored = delivered(sender, remote, https, TESTING, marker)
    assert re.search(r"\bwith ESMTPS\b", received_by_b(stored)), "opportunistic STARTTLS is still used"
    assert https.requests_for(f"mta-sts.{TESTING}"), context(sender, remote, https)
    assert policy_fetched_log(sender, TESTING, "Testing"), context(sender, remote, https)


# --- 5. no policy to be had: delivered opportunistically ---------------------------------------------


FETCH_RESPONSES = {
    # RFC 8461 §3.3: only a 200 counts; the body is not looked at.
    "http-404": Response(404, body=HOSTILE_POLICY),
    # §3.3: the policy is text/plain.
    "text-html": Response(200, content_type="text/html", body=HOSTILE_POLICY),
    # §3.3: redirects are not followed (the target would serve the hostile policy).
    # (The Location header is added by the test: it names the port.)
    "redirect": Response(301, body=HOSTILE_POLICY),
    # §3.2: version must be STSv1: an unparseable policy is no policy.
    "bad-version": Response(200, body=policy_text("enforce", "other.remote.example", version="STSv2")),
    # §3.3: the policy host's certificate must verify; this one is from an untrusted CA.
    "untrusted-policy-host": Response(200, body=HOSTILE_POLICY),
}


@pytest.mark.parametrize("case", list(FETCH_FAILURES))
def test_unusable_policy_means_no_policy(sender, remote, https, dns, case):
    domain = FETCH_FAILURES[case]
    policy_host = f"mta-sts.{domain}"
    response = FETCH_RESPONSES[case]
    if case == "redirect":
        target = "/.well-known/moved-mta-sts.txt"
        https.serve(policy_host, target, Response(200, body=HOSTILE_POLICY))
        response = Response(301, body=HOSTILE_POLICY,
                            headers=(("Location", f"https://{policy_host}:{https.port}{target}"),))
    publish(dns, https, domain, f"{case.replace('-', '')}1", response)
    marker = new_marker()
    submit(sender, marker, rcpt(domain))
    stored = delivered(sender, remote, https, domain, marker)
    assert re.search(r"\bwith ESMTPS\b", received_by_b(stored)), "opportunistic STARTTLS"
    # The fetch was attempted (so delivery did not just skip MTA-STS), and it failed.
    if case == "untrusted-policy-host":
        assert https.sni_seen(policy_host), f"no handshake for {policy_host}: {https.handshakes}"
        assert https.requests_for(policy_host) == [], "a request went over an unverified connection"
    else:
        assert https.requests_for(policy_host)[:1] == [WELL_KNOWN], context(sender, remote, https)
    if case == "redirect":
        assert "/.well-known/moved-mta-sts.txt" not in https.requests_for(policy_host), "the redirect was followed"
    assert not policy_fetched_log(sender, domain, r"\w+"), "A took a policy it must have refused"
    assert re.search(rf"MTA-STS policy fetch failed.*\b{re.escape(domain)}\b", sender.log()), (
        f"no failed fetch logged for {domain}\n{sender.log()[-3000:]}")


# --- 6. REQUIRETLS (RFC 8689): only over a verified route -----------------------------------------


def submit_requiretls(sender: MailServer, marker: str, recipient: str) -> None:
    message = build_message(marker, sender=ALICE, to=recipient)
    with sender.login("submissions", ALICE, helo=HELO) as conn:
        assert "REQUIRETLS" in conn.caps, f"REQUIRETLS offered on TLS sessions: {conn.caps}"
        reply = conn.send_mail(ALICE, [recipient], message, params="REQUIRETLS")
        assert reply.is_(250), f"{reply}\n{conn.log()}"
        conn.quit()


def test_requiretls_goes_over_an_mta_sts_verified_route(sender, remote, https, dns):
    publish(dns, https, ENFORCE, "enforce1", Response(body=policy_text("enforce", REMOTE_HOST)))
    marker = new_marker()
    submit_requiretls(sender, marker, rcpt(ENFORCE))
    stored = delivered(sender, remote, https, ENFORCE, marker)
    assert re.search(r"\bwith ESMTPS\b", received_by_b(stored)), "over TLS"


def test_requiretls_without_a_verified_route_bounces_unsent(sender, remote, https, dns):
    """RFC 8689 §4.2.1: mode testing verifies nothing, so a REQUIRETLS message is not sent;
    the sender gets a 5.7.10 report with the header only (§5)."""
    publish(dns, https, TESTING, "testing1", Response(body=policy_text("testing", "other.remote.example")))
    marker = new_marker()
    submit_requiretls(sender, marker, rcpt(TESTING))
    reports = wait_until(lambda: sender.db.messages(ALICE, "INBOX", marker), 20)
    assert len(reports) == 1, context(sender, remote, https)
    text = reports[0].data.decode(errors="replace")
    assert "Action: failed" in text and "Status: 5.7.10" in text, text
    assert "REQUIRETLS" in text, text
    assert "text/rfc822-headers" in text, f"the header only: {text}"
    assert_nothing_on_b(remote, marker)
    assert not [m for m in queue_entries(sender) if rcpt(TESTING) == m[2]], "not left queued"
