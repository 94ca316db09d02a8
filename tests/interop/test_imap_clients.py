"""Quick real-client checks of IMAP (issue 4): imaplib over 993 and over 143 with STARTTLS, and
curl imaps:// listing and fetching what SMTP delivered. Every command with imaplib is in
test_imap_imaplib.py, mbsync in test_imap_mbsync.py, the RFC 9051 transcripts in
test_imap_transcripts.py; the shared set-up in imap_support.py."""

from __future__ import annotations

import imaplib
import shutil
import subprocess

import pytest

from harness import HOSTNAME
from imap_support import imap, simple_message  # noqa: F401  (imap: fixture)
from tlsclient import client_context


def test_imaplib_over_implicit_tls(imap):
    user, password = imap.new_user()
    imap.deliver(user, simple_message("first"))
    client = imaplib.IMAP4_SSL("127.0.0.1", imap.ports["imaps"], ssl_context=client_context())
    assert "LOGINDISABLED" not in client.capabilities
    assert client.login(user, password)[0] == "OK"
    names = b" ".join(client.list()[1])
    for special in (b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk", b"\\Archive"):
        assert special in names
    assert client.select("INBOX") == ("OK", [b"1"])
    typ, data = client.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODYSTRUCTURE)")
    assert typ == "OK" and b"Subject: first" in data[0][1]
    assert b"\\Seen" not in data[0][0], "PEEK must not set \\Seen"
    assert client.uid("SEARCH", None, "SUBJECT", "first") == ("OK", [b"1"])
    assert client.store("1", "+FLAGS", "\\Flagged")[0] == "OK"
    assert client.create("Work/Plans")[0] == "OK"
    assert client.copy("1", "Work/Plans")[0] == "OK"
    assert client.status("Work/Plans", "(MESSAGES)")[1] == [b"Work/Plans (MESSAGES 1)"]
    assert client.append("Drafts", None, None, b"Subject: draft\r\n\r\nbody\r\n")[0] == "OK"
    assert client.store("1", "+FLAGS", "\\Deleted")[0] == "OK"
    assert client.expunge()[0] == "OK"
    assert client.select("INBOX")[1] == [b"0"]
    assert client.logout()[0] == "BYE"


def test_imaplib_starttls_and_logindisabled(imap):
    user, password = imap.new_user()
    client = imaplib.IMAP4("127.0.0.1", imap.ports["imap"])
    assert "LOGINDISABLED" in client.capabilities and "STARTTLS" in client.capabilities
    with pytest.raises(imaplib.IMAP4.error):
        client.login(user, password)
    client.starttls(ssl_context=client_context())
    assert client.login(user, password)[0] == "OK"
    assert client.logout()[0] == "BYE"


def test_curl_imaps_lists_and_fetches(imap, certs):
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed (scripts/test installs it)")
    user, password = imap.new_user()
    stored = imap.deliver(user, simple_message("via curl"))
    port = imap.ports["imaps"]
    base = ["curl", "--silent", "--show-error", "--max-time", "30", "--cacert", str(certs.pki.ca_cert),
            "--resolve", f"{HOSTNAME}:{port}:127.0.0.1", "--user", f"{user}:{password}"]
    listing = subprocess.run([*base, f"imaps://{HOSTNAME}:{port}/"], capture_output=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert b'"/" INBOX' in listing.stdout
    fetched = subprocess.run([*base, f"imaps://{HOSTNAME}:{port}/INBOX;UID=1"], capture_output=True, timeout=60)
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout == stored.data, fetched.stdout[-300:]
