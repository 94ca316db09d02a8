"""Real SMTP clients against the server: Python smtplib, swaks, curl and openssl s_client.
Each sends a message and checks that it is in the store afterwards."""

from __future__ import annotations

import base64
import queue
import re
import shutil
import smtplib
import subprocess
import threading
from email.message import EmailMessage

import pytest

from harness import HOSTNAME
from mailserver import ALICE, BOB, ERIN, PASSWORDS, TEAM
from smtpclient import build_message, new_marker
from tlsclient import client_context

CLIENT_TIMEOUT = 30


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (scripts/test installs it)")


def expect_stored(mail, marker: str, *addresses: str) -> list:
    stored = mail.db.wait_for(marker, count=len(addresses))
    assert sorted(s.address for s in stored) == sorted(addresses), f"stored for {[s.address for s in stored]}"
    return stored


# --- Python smtplib -----------------------------------------------------------------------------------


def test_smtplib_smtps_login_sendmail(mail, certs):
    marker = new_marker()
    ctx = client_context(ca=certs.pki.ca_cert, check_hostname=True)
    with smtplib.SMTP_SSL("127.0.0.1", mail.ports["submissions"], context=ctx, timeout=CLIENT_TIMEOUT) as smtp:
        smtp.login(ALICE, PASSWORDS[ALICE])
        refused = smtp.sendmail(ALICE, [BOB], build_message(marker, sender=ALICE, to=BOB))
    assert refused == {}
    stored = expect_stored(mail, marker, BOB)
    assert stored[0].data.startswith(f"Return-Path: <{ALICE}>\r\n".encode())


def test_smtplib_auth_login_with_initial_response(mail):
    """smtplib's LOGIN sends the user name as an initial response (RFC 4954 §4 allows it)."""
    marker = new_marker()
    with smtplib.SMTP_SSL("127.0.0.1", mail.ports["submissions"], context=client_context(),
                          timeout=CLIENT_TIMEOUT) as smtp:
        smtp.ehlo("client.test")
        smtp.user, smtp.password = BOB, PASSWORDS[BOB]
        code, _ = smtp.auth("LOGIN", smtp.auth_login)
        assert code == 235
        smtp.sendmail(BOB, [ALICE], build_message(marker, sender=BOB, to=ALICE))
    expect_stored(mail, marker, ALICE)


def test_smtplib_submission_starttls(mail, certs):
    marker = new_marker()
    ctx = client_context(ca=certs.pki.ca_cert, check_hostname=True)
    with smtplib.SMTP("127.0.0.1", mail.ports["submission"], local_hostname="client.test",
                      timeout=CLIENT_TIMEOUT) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("auth"), "AUTH offered before STARTTLS"
        smtp.starttls(context=ctx)
        smtp.ehlo()
        assert smtp.has_extn("auth") and not smtp.has_extn("starttls")
        smtp.login(BOB, PASSWORDS[BOB])
        refused = smtp.sendmail(BOB, [ALICE, TEAM], build_message(marker, sender=BOB, to=ALICE))
    assert refused == {}
    expect_stored(mail, marker, ALICE, BOB)


def test_smtplib_port_25_starttls(mail):
    marker = new_marker()
    with smtplib.SMTP("127.0.0.1", mail.ports["smtp"], local_hostname="client.test", timeout=CLIENT_TIMEOUT) as smtp:
        smtp.starttls(context=client_context())
        refused = smtp.sendmail("someone@ext.test", [ALICE, ERIN], build_message(marker))
    assert refused == {}
    stored = expect_stored(mail, marker, ALICE, ERIN)
    assert re.search(rb"Received: from client\.test .*?with ESMTPS", stored[0].data, re.S)


def test_smtplib_port_25_refuses_relay_and_unknown(mail):
    marker = new_marker()
    with smtplib.SMTP("127.0.0.1", mail.ports["smtp"], timeout=CLIENT_TIMEOUT) as smtp:
        refused = smtp.sendmail("someone@ext.test", [ALICE, "nosuchuser@test.example", "relaytest@ext.test"],
                                build_message(marker))
    assert refused.get("nosuchuser@test.example", (0,))[0] == 550, refused
    assert refused.get("relaytest@ext.test", (0,))[0] == 554, refused
    expect_stored(mail, marker, ALICE)


def test_smtplib_send_message_smtputf8(mail):
    marker = new_marker()
    msg = EmailMessage()
    msg["From"] = "Jörg Müller <jörg@bücher.example>"
    msg["To"] = ALICE
    msg["Subject"] = f"Grüße {marker}"
    msg["X-Test-Id"] = marker
    msg.set_content("Hallo Alice, schöne Grüße!\n")
    with smtplib.SMTP("127.0.0.1", mail.ports["smtp"], timeout=CLIENT_TIMEOUT) as smtp:
        smtp.ehlo("client.test")
        assert smtp.has_extn("smtputf8")
        refused = smtp.send_message(msg)  # non-ASCII addresses: smtplib uses SMTPUTF8 + BODY=8BITMIME
    assert refused == {}
    stored = expect_stored(mail, marker, ALICE)
    assert stored[0].data.startswith("Return-Path: <jörg@bücher.example>\r\n".encode())
    assert "schöne Grüße".encode() in stored[0].data


# --- swaks ----------------------------------------------------------------------------------------------


def swaks(*args: str) -> subprocess.CompletedProcess:
    need("swaks")
    proc = subprocess.run(["swaks", "--helo", "client.test", "--timeout", "30", *args],
                          capture_output=True, text=True, timeout=60)
    return proc


def swaks_message(marker: str) -> list[str]:
    return ["--header", f"Subject: swaks {marker}", "--add-header", f"X-Test-Id: {marker}",
            "--body", f"swaks body {marker}"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_swaks_submission_starttls(mail, mechanism):
    marker = new_marker()
    proc = swaks("--server", f"127.0.0.1:{mail.ports['submission']}", "--tls", "--auth", mechanism,
                 "--au", ALICE, "--ap", PASSWORDS[ALICE], "--from", ALICE, "--to", BOB, *swaks_message(marker))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expect_stored(mail, marker, BOB)


@pytest.mark.parametrize("how", [["--tls-on-connect"], ["--protocol", "SSMTPA"]], ids=["tls-on-connect", "protocol-SSMTPA"])
def test_swaks_smtps(mail, how):
    marker = new_marker()
    proc = swaks("--server", f"127.0.0.1:{mail.ports['submissions']}", *how, "--auth", "PLAIN",
                 "--au", BOB, "--ap", PASSWORDS[BOB], "--from", BOB, "--to", ALICE, *swaks_message(marker))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expect_stored(mail, marker, ALICE)


def test_swaks_pipelining_port_25(mail):
    marker = new_marker()
    proc = swaks("--server", f"127.0.0.1:{mail.ports['smtp']}", "--pipeline", "--from", "sender@ext.test",
                 "--to", f"{ALICE},{BOB}", *swaks_message(marker))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PIPELINING" in proc.stdout
    expect_stored(mail, marker, ALICE, BOB)


def test_swaks_wrong_password_fails(mail):
    proc = swaks("--server", f"127.0.0.1:{mail.ports['submissions']}", "--tls-on-connect", "--auth", "PLAIN",
                 "--au", ERIN, "--ap", "wrong-password", "--from", ERIN, "--to", ALICE, "--quit-after", "AUTH")
    assert proc.returncode != 0, proc.stdout
    assert "535 5.7.8" in proc.stdout, proc.stdout
    swaks("--server", f"127.0.0.1:{mail.ports['submissions']}", "--tls-on-connect", "--auth", "PLAIN",
          "--au", ERIN, "--ap", PASSWORDS[ERIN], "--quit-after", "AUTH")  # clears erin's failure delay


# --- curl -------------------------------------------------------------------------------------------------


def curl(*args: str) -> subprocess.CompletedProcess:
    need("curl")
    return subprocess.run(["curl", "--silent", "--show-error", "--max-time", "30", *args],
                          capture_output=True, text=True, timeout=60)


def test_curl_smtps(mail, tmp_path):
    marker = new_marker()
    eml = tmp_path / "msg.eml"
    eml.write_bytes(build_message(marker, sender=ALICE, to=BOB))
    proc = curl("--ssl-reqd", "-k", f"smtps://127.0.0.1:{mail.ports['submissions']}",
                "--user", f"{ALICE}:{PASSWORDS[ALICE]}", "--mail-from", ALICE, "--mail-rcpt", BOB,
                "--upload-file", str(eml))
    assert proc.returncode == 0, proc.stderr
    expect_stored(mail, marker, BOB)


def test_curl_submission_starttls(mail, tmp_path, certs):
    marker = new_marker()
    eml = tmp_path / "msg.eml"
    eml.write_bytes(build_message(marker, sender=BOB, to=ALICE))
    proc = curl("--ssl-reqd", "--cacert", str(certs.pki.ca_cert), "--resolve", f"{HOSTNAME}:{mail.ports['submission']}:127.0.0.1",
                f"smtp://{HOSTNAME}:{mail.ports['submission']}", "--user", f"{BOB}:{PASSWORDS[BOB]}",
                "--mail-from", BOB, "--mail-rcpt", ALICE, "--upload-file", str(eml))
    assert proc.returncode == 0, proc.stderr
    expect_stored(mail, marker, ALICE)


def test_curl_refuses_to_send_password_without_tls(mail, tmp_path):
    """Without --ssl-reqd curl would try AUTH in plaintext: the server offers none before TLS."""
    eml = tmp_path / "msg.eml"
    eml.write_bytes(build_message(new_marker(), sender=ALICE, to=BOB))
    proc = curl(f"smtp://127.0.0.1:{mail.ports['submission']}", "--user", f"{ALICE}:{PASSWORDS[ALICE]}",
                "--mail-from", ALICE, "--mail-rcpt", BOB, "--upload-file", str(eml))
    assert proc.returncode != 0, "curl sent mail over plaintext 587"


def test_curl_port_25_starttls(mail, tmp_path):
    marker = new_marker()
    eml = tmp_path / "msg.eml"
    eml.write_bytes(build_message(marker))
    proc = curl("--ssl-reqd", "-k", f"smtp://127.0.0.1:{mail.ports['smtp']}", "--mail-from", "sender@ext.test",
                "--mail-rcpt", ALICE, "--upload-file", str(eml))
    assert proc.returncode == 0, proc.stderr
    expect_stored(mail, marker, ALICE)


# --- openssl s_client -starttls smtp ------------------------------------------------------------------------


class SClientSmtp:
    """`openssl s_client -starttls smtp -crlf -quiet`, driven line by line."""

    def __init__(self, port: int, ca):
        self.proc = subprocess.Popen(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", "smtp", "-name", "client.test",
             "-crlf", "-quiet", "-nocommands", "-servername", HOSTNAME, "-CAfile", str(ca),
             "-verify_return_error", "-verify_hostname", HOSTNAME],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.decode("utf-8", "replace"))
        self.lines.put(None)

    def send(self, line: str) -> None:
        self.seen.append("C: " + line)
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def reply(self) -> list[str]:
        got = []
        while True:
            try:
                line = self.lines.get(timeout=15)
            except queue.Empty:
                raise AssertionError(f"s_client: no reply line\n{self.transcript()}") from None
            if line is None:
                raise AssertionError(f"s_client ended\n{self.transcript()}\n{self.proc.stderr.read().decode()}")
            self.seen.append("S: " + line.rstrip())
            got.append(line.rstrip("\r\n"))
            if re.match(r"\d{3} ", line):
                return got

    def cmd(self, line: str, code: int) -> list[str]:
        self.send(line)
        reply = self.reply()
        assert reply[-1].startswith(str(code)), f"{line} -> {reply}\n{self.transcript()}"
        return reply

    def transcript(self) -> str:
        return "\n".join(self.seen)

    def finish(self) -> int:
        self.proc.stdin.close()
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -1


@pytest.mark.parametrize("service", ["smtp", "submission"])
def test_openssl_s_client_starttls(mail, certs, service):
    marker = new_marker()
    client = SClientSmtp(mail.ports[service], certs.pki.ca_cert)
    try:
        caps = client.cmd("EHLO client.test", 250)
        assert not any("STARTTLS" in c for c in caps), caps
        sender = "sender@ext.test"
        if service == "submission":
            assert any(re.match(r"250[ -]AUTH\b.*\bPLAIN\b", c) for c in caps), caps
            client.cmd("AUTH PLAIN " + base64.b64encode(f"\0{ALICE}\0{PASSWORDS[ALICE]}".encode()).decode(), 235)
            sender = ALICE
        client.cmd(f"MAIL FROM:<{sender}>", 250)
        client.cmd(f"RCPT TO:<{BOB}>", 250)
        client.cmd("DATA", 354)
        for line in build_message(marker, sender=sender, to=BOB).decode().split("\r\n")[:-1]:
            client.send(line)
        client.cmd(".", 250)
        client.cmd("QUIT", 221)
    finally:
        client.finish()
    expect_stored(mail, marker, BOB)
