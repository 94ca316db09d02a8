"""SMTP AUTH on the submission ports (RFC 4954, RFC 4616, SECURITY-TESTS.md §4.5 AU-01, AU-03,
AU-05..AU-08, AU-10, AU-11; ST-06 credentials before TLS).

Password failures slow the next attempts per client IP and per account (README), so failure
tests use their own source address (next_source) and the account carol, whose counter the
`carol` fixture clears afterwards with a good login.
"""

from __future__ import annotations

import base64
import threading
import time

import pytest

from harness import HOSTNAME
from maildb import check_trace_headers
from mailserver import ALICE, BOB, CAROL, PASSWORDS
from smtpclient import SmtpClosed, build_message, new_marker, next_source

HELO = "client.test"
SUBMISSION = [("submissions", False), ("submission", True)]
SUBMISSION_IDS = ["465", "587-starttls"]
AUTH_TIMEOUT = 40  # failure delays grow up to 15 s (README); never time them tightly


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


@pytest.fixture
def carol(mail):
    """The account whose password is guessed; its failure counter is cleared after the test."""
    yield CAROL
    with mail.login("submissions", CAROL, source=next_source(), timeout=AUTH_TIMEOUT):
        pass


def fresh(mail, service, starttls, **kwargs):
    return mail.session(service, helo=HELO, starttls=starttls, source=next_source(), timeout=AUTH_TIMEOUT, **kwargs)


# --- what is offered where (ST-06, AU-08) --------------------------------------------------------------


def test_submission_587_before_tls(mail):
    """ST-06: STARTTLS offered, AUTH neither offered nor accepted, MAIL refused, before TLS."""
    user = f"pretls-{new_marker()}@test.example"
    with mail.session("submission", helo=HELO) as conn:
        assert "STARTTLS" in conn.caps, conn.log()
        assert "AUTH" not in conn.caps, f"AUTH offered before TLS on 587:\n{conn.log()}"
        for reply in (conn.auth_plain(ALICE, PASSWORDS[ALICE]), conn.auth_plain(user, "wrong-password"),
                      conn.cmd("AUTH LOGIN")):
            assert reply.is_(530, "5.7.0") or reply.is_(538, "5.7.11"), f"AUTH before TLS -> {reply}"
        conn.expect(f"MAIL FROM:<{ALICE}>", 530, "5.7.0")
    time.sleep(0.3)
    assert user not in mail.log(), "a password sent before TLS was checked (the log names its user)"


@pytest.mark.parametrize("service, starttls", SUBMISSION, ids=SUBMISSION_IDS)
def test_auth_offered_inside_tls(mail, service, starttls):
    with mail.session(service, helo=HELO, starttls=starttls) as conn:
        mechanisms = {m.upper() for m in conn.caps.get("AUTH", [])}
        assert {"PLAIN", "LOGIN"} <= mechanisms, f"AUTH mechanisms {mechanisms}:\n{conn.log()}"
        assert "STARTTLS" not in conn.caps, f"STARTTLS offered inside TLS:\n{conn.log()}"


@pytest.mark.parametrize("starttls", [False, True], ids=["plaintext", "starttls"])
def test_no_auth_on_port_25(mail, starttls):
    """AU-08: port 25 offers no AUTH and refuses it."""
    with mail.session("smtp", helo=HELO, starttls=starttls) as conn:
        assert "AUTH" not in conn.caps
        reply = conn.auth_plain(ALICE, PASSWORDS[ALICE])
        assert reply.code in (502, 503) and reply.enhanced == "5.5.1", f"AUTH on 25 -> {reply}"
        conn.expect("MAIL FROM:<x@ext.test>", 250)  # an ordinary, unauthenticated transaction
        conn.expect("RCPT TO:<relaytest@ext.test>", 554, "5.7.1")


# --- successful AUTH -------------------------------------------------------------------------------------


@pytest.mark.parametrize("service, starttls", SUBMISSION, ids=SUBMISSION_IDS)
def test_auth_plain_initial_response(mail, service, starttls):
    with mail.session(service, helo=HELO, starttls=starttls) as conn:
        reply = conn.auth_plain(ALICE, PASSWORDS[ALICE])
        assert reply.is_(235, "2.7.0"), conn.log()
        conn.expect(f"MAIL FROM:<{ALICE}>", 250, "2.1.0")


def test_auth_plain_after_empty_challenge(mail):
    with mail.session("submissions", helo=HELO) as conn:
        challenge = conn.cmd("AUTH PLAIN")
        assert challenge.code == 334 and challenge.text.strip() == "", f"RFC 4954 §4: empty challenge: {challenge}"
        reply = conn.cmd(b64(f"\0{BOB}\0{PASSWORDS[BOB]}"), timeout=AUTH_TIMEOUT)
        assert reply.is_(235, "2.7.0"), conn.log()
        conn.expect(f"MAIL FROM:<{BOB}>", 250)


@pytest.mark.parametrize("service, starttls", SUBMISSION, ids=SUBMISSION_IDS)
def test_auth_login(mail, service, starttls):
    with mail.session(service, helo=HELO, starttls=starttls) as conn:
        first = conn.cmd("AUTH LOGIN")
        assert first.code == 334, conn.log()
        assert base64.b64decode(first.text).lower().startswith(b"user"), f"first challenge {first}"
        second = conn.cmd(b64(BOB))
        assert second.code == 334 and base64.b64decode(second.text).lower().startswith(b"pass"), conn.log()
        reply = conn.cmd(b64(PASSWORDS[BOB]), timeout=AUTH_TIMEOUT)
        assert reply.is_(235, "2.7.0"), conn.log()
        conn.expect(f"MAIL FROM:<{BOB}>", 250)


def test_authzid_equal_to_authcid_accepted(mail):
    with mail.session("submissions", helo=HELO) as conn:
        assert conn.auth_plain(BOB, PASSWORDS[BOB], authzid=BOB).is_(235, "2.7.0"), conn.log()


@pytest.mark.parametrize("service, starttls", SUBMISSION, ids=SUBMISSION_IDS)
def test_authenticated_message_trace_headers(mail, service, starttls):
    """RFC 3848: `with ESMTPSA`, naming the TLS version and cipher."""
    marker = new_marker()
    message = build_message(marker, sender=ALICE, to=BOB)
    with mail.login(service, ALICE, helo=HELO) as conn:
        tls = (conn.sock.version(), conn.sock.cipher()[0])
        assert conn.send_mail(ALICE, [BOB], message).is_(250), conn.log()
    stored = mail.db.wait_for(marker)
    assert [s.address for s in stored] == [BOB]
    check_trace_headers(stored[0], message, sender=ALICE, helo=HELO, hostname=HOSTNAME, protocol="ESMTPSA",
                        tls=tls, delivered_to=(BOB,))


# --- failures (AU-01, AU-03, AU-05) ----------------------------------------------------------------------


@pytest.mark.parametrize("service, starttls", SUBMISSION, ids=SUBMISSION_IDS)
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_wrong_password(mail, carol, service, starttls, mechanism):
    with fresh(mail, service, starttls) as conn:
        auth = conn.auth_plain if mechanism == "PLAIN" else conn.auth_login
        reply = auth(carol, "not-the-password", timeout=AUTH_TIMEOUT)
        assert reply.is_(535, "5.7.8"), conn.log()
        conn.expect(f"MAIL FROM:<{carol}>", 530, "5.7.0")  # still not authenticated


def test_unknown_user_gets_the_same_reply(mail, carol):
    """AU-03: byte-identical failure replies for an unknown user and a wrong password."""
    replies = []
    for user in (carol, f"nosuch-{new_marker()}@test.example", f"nosuch-{new_marker()}@nowhere.example"):
        with fresh(mail, "submissions", False) as conn:
            replies.append(conn.auth_plain(user, "not-the-password", timeout=AUTH_TIMEOUT).raw)
    assert len(set(replies)) == 1 and replies[0].startswith(b"535 5.7.8"), replies


@pytest.mark.timeout(180)
def test_repeated_failures_close_the_session(mail, carol):
    """AU-01: every failure gets 535 5.7.8 (slower and slower); after max_auth_failures
    (README default 3) the session ends with 421 4.7.0. Another client then still logs in."""
    with fresh(mail, "submissions", False) as conn:
        replies = []
        for _ in range(6):
            try:
                reply = conn.auth_plain(carol, "guess-" + new_marker(), timeout=AUTH_TIMEOUT)
            except (SmtpClosed, BrokenPipeError, ConnectionResetError):
                replies.append("closed")
                break
            replies.append(reply)
            if reply.code == 421:
                break
            assert reply.is_(535, "5.7.8"), conn.log()
        if replies[-1] not in ("closed",) and replies[-1].code == 535:
            try:  # a 421 may follow the last 535 on its own
                replies.append(conn.reply(timeout=5))
            except (SmtpClosed, TimeoutError):
                replies.append("closed")
        failures = sum(1 for r in replies if r != "closed" and r.code == 535)
        assert replies[-1] != "closed" and replies[-1].is_(421, "4.7.0"), f"no 421 4.7.0 after {failures} failures\n{conn.log()}"
        assert failures <= 3, f"{failures} failed AUTH in one session before 421"
        closed, _ = conn.closed_within(5)
        assert closed, "not closed after 421"
    started = time.monotonic()
    with mail.login("submissions", carol, source=next_source(), timeout=AUTH_TIMEOUT):
        waited = time.monotonic() - started
    assert waited < AUTH_TIMEOUT, "the account was locked out for everyone"


def test_authzid_impersonation_refused(mail, carol):
    """AU-05: carol's own password does not let her act as bob."""
    with fresh(mail, "submissions", False) as conn:
        reply = conn.auth_plain(carol, PASSWORDS[carol], authzid=BOB)
        assert reply.is_(535, "5.7.8"), f"authzid={BOB} authcid={carol} -> {reply}"
        conn.expect(f"MAIL FROM:<{BOB}>", 530, "5.7.0")


# --- malformed exchanges (AU-06, AU-07) ------------------------------------------------------------------

MALFORMED_PLAIN = {
    "no-nul": (b64("carolpassword"), (501, 535)),
    "three-nuls": (b64("\0carol@test.example\0pw\0x"), (501, 535)),
    "bad-base64": ("####", (501,)),
    "empty": ("=", (501, 535)),
    "only-nuls": (b64("\0\0"), (501, 535)),
}


@pytest.mark.parametrize("case", MALFORMED_PLAIN)
def test_malformed_plain_response(mail, carol, case):
    blob, codes = MALFORMED_PLAIN[case]
    with fresh(mail, "submissions", False) as conn:
        reply = conn.cmd(f"AUTH PLAIN {blob}", timeout=AUTH_TIMEOUT)
        assert reply.code in codes and reply.enhanced and reply.enhanced.startswith("5."), f"AUTH PLAIN {blob} -> {reply}"
        if reply.code == 501:
            assert reply.enhanced.startswith("5.5."), str(reply)
        conn.expect(f"MAIL FROM:<{carol}>", 530, "5.7.0")
    mail.assert_alive()


def test_bad_base64_after_challenge(mail, carol):
    with fresh(mail, "submissions", False) as conn:
        assert conn.cmd("AUTH PLAIN").code == 334
        reply = conn.cmd("####", timeout=AUTH_TIMEOUT)
        assert reply.code == 501 and reply.enhanced and reply.enhanced.startswith("5.5."), conn.log()
        conn.expect("NOOP", 250)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_cancel_with_star(mail, mechanism):
    """RFC 4954 §4: '*' cancels the exchange with 501; §6 gives it the code 5.7.0 ("Client
    initiated Authentication Exchange"). The session goes on."""
    with fresh(mail, "submissions", False) as conn:
        assert conn.cmd(f"AUTH {mechanism}").code == 334
        reply = conn.cmd("*", timeout=AUTH_TIMEOUT)
        assert reply.is_(501, "5.7.0"), f"cancel -> {reply}"
        conn.expect("NOOP", 250)
        assert conn.auth_plain(BOB, PASSWORDS[BOB], timeout=AUTH_TIMEOUT).is_(235, "2.7.0"), conn.log()


def test_disconnect_in_the_middle_of_auth(mail):
    for command in ("AUTH LOGIN", "AUTH PLAIN"):
        with fresh(mail, "submissions", False) as conn:
            assert conn.cmd(command).code == 334
            if command == "AUTH LOGIN":
                assert conn.cmd(b64(CAROL)).code == 334
    mail.assert_alive()


@pytest.mark.parametrize("line", ["AUTH XYZ", "AUTH NTLM TlRMTVNTUAABAAAA", "AUTH DIGEST-MD5", "AUTH RPA =",
                                  "AUTH CRAM-MD5", "AUTH GSSAPI"])
def test_unknown_mechanism(mail, line):
    with fresh(mail, "submissions", False) as conn:
        reply = conn.cmd(line, timeout=AUTH_TIMEOUT)
        assert reply.is_(504, "5.5.4"), f"{line} -> {reply}"
        conn.expect("NOOP", 250)


def test_auth_without_mechanism(mail):
    with fresh(mail, "submissions", False) as conn:
        reply = conn.cmd("AUTH")
        assert reply.code == 501 and reply.enhanced and reply.enhanced.startswith("5.5."), str(reply)


def test_oversize_sasl_response(mail, carol):
    """AU-07: a continuation line over 12288 octets: 500 5.5.6 (or close), bounded buffering."""
    with fresh(mail, "submissions", False) as conn:
        assert conn.cmd("AUTH PLAIN").code == 334
        conn.send(b"A" * 13000 + b"\r\n")
        try:
            reply = conn.reply(timeout=AUTH_TIMEOUT)
        except SmtpClosed:
            reply = None
        if reply is not None:
            assert reply.is_(500, "5.5.6") or reply.code == 421, conn.log()
    mail.assert_alive()


def test_long_initial_response_handled_normally(mail, carol):
    """AU-07: a 600-octet AUTH line is within the limits (RFC 4954 §4: 12288): an ordinary failure."""
    with fresh(mail, "submissions", False) as conn:
        reply = conn.cmd("AUTH PLAIN " + "A" * 590, timeout=AUTH_TIMEOUT)
        assert reply.code in (501, 535) and reply.enhanced, f"600-octet AUTH line -> {reply}"


# --- ordering and identity (AU-08, AU-10, AU-11) ---------------------------------------------------------


def test_second_auth_refused(mail):
    with mail.login("submissions", ALICE, helo=HELO) as conn:
        reply = conn.auth_plain(BOB, PASSWORDS[BOB])
        assert reply.is_(503, "5.5.1"), f"second AUTH -> {reply}"
        reply = conn.cmd(f"MAIL FROM:<{BOB}>")
        assert reply.code in (550, 553) and reply.enhanced == "5.7.1", "the second AUTH changed the identity"


@pytest.mark.parametrize("login", ["ALICE@TEST.EXAMPLE", "alice@TEST.example", " alice@test.example",
                                   "alice@test.example\0", "alice", "alice@test.example "])
def test_login_name_variants(mail, login):
    """AU-10: a variant of alice's name either is alice (and nobody else) or fails."""
    with fresh(mail, "submissions", False) as conn:
        reply = conn.auth_plain(login, PASSWORDS[ALICE], timeout=AUTH_TIMEOUT)
        assert reply.code in (235, 501, 535), f"{login!r} -> {reply}"
        if reply.code == 235:
            conn.expect(f"MAIL FROM:<{ALICE}>", 250)
            conn.expect("RSET", 250)
            reply = conn.cmd(f"MAIL FROM:<{BOB}>")
            assert reply.code in (550, 553) and reply.enhanced == "5.7.1", str(reply)


def test_concurrent_sessions_keep_their_identity(mail):
    """AU-11: 12 concurrent alice/bob sessions: each may send only as its own user."""
    users = [ALICE, BOB] * 6
    markers = [new_marker() for _ in users]
    errors: list[str] = []
    barrier = threading.Barrier(len(users))

    def session(user: str, marker: str) -> None:
        other = BOB if user == ALICE else ALICE
        try:
            with mail.login("submissions", user, helo=HELO) as conn:
                barrier.wait(30)
                reply = conn.cmd(f"MAIL FROM:<{other}>")
                if reply.code not in (550, 553):
                    errors.append(f"{user} as {other}: {reply}")
                conn.expect("RSET", 250)
                message = build_message(marker, sender=user, to=CAROL)
                reply = conn.send_mail(user, [CAROL], message)
                if reply.code != 250:
                    errors.append(f"{user}: {reply}")
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(f"{user}: {error!r}")

    threads = [threading.Thread(target=session, args=pair) for pair in zip(users, markers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, "\n".join(errors)
    for user, marker in zip(users, markers):
        stored = mail.db.wait_for(marker)
        assert len(stored) == 1 and stored[0].data.startswith(f"Return-Path: <{user}>\r\n".encode()), (user, stored)
