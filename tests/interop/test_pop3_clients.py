"""Real POP3 clients: curl (pop3s:// and pop3:// with STLS) and fetchmail retrieving into a
local mbox and deleting with --nokeep. What they get is compared byte for byte with what SMTP
delivered (the copy in the store)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from harness import HOSTNAME
from test_pop3_support import message, pop, stuffed_size  # noqa: F401  (fixtures)

CLIENT_TIMEOUT = 60
BODY = b"Hello over POP3.\r\n.a line with a leading dot\r\n..\r\n.\r\nThe end.\r\n"
FROM_LINE = b"From fetchmail@localhost Thu Jan  1 00:00:00 1970\n"
MDA = f"""import sys
data = sys.stdin.buffer.read()
with open(sys.argv[1], "ab") as mbox:
    mbox.write({FROM_LINE!r} + data + b"\\n")
"""


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (scripts/test installs it)")


def curl(pop, certs, url: str, user: str, password: str, *args: str) -> subprocess.CompletedProcess:
    need("curl")
    port = pop.ports["pop3s" if url.startswith("pop3s") else "pop3"]
    cmd = ["curl", "--silent", "--show-error", "--max-time", "30", "--cacert", str(certs.pki.ca_cert),
           "--resolve", f"{HOSTNAME}:{port}:127.0.0.1", "--user", f"{user}:{password}",
           *args, url.format(host=f"{HOSTNAME}:{port}")]
    return subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT)


def test_curl_pop3s_list_retrieve_and_delete(pop, certs):
    user, password = pop.new_user()
    copies = [pop.deliver(user, message(f"curl {n}", BODY)) for n in range(2)]
    listing = curl(pop, certs, "pop3s://{host}/", user, password)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout == b"".join(f"{n + 1} {stuffed_size(c.data)}\r\n".encode()
                                      for n, c in enumerate(copies))
    for n, copy in enumerate(copies):
        got = curl(pop, certs, f"pop3s://{{host}}/{n + 1}", user, password)
        assert got.returncode == 0, got.stderr
        assert got.stdout == copy.data, "curl received exactly the delivered message"
    uidl = curl(pop, certs, "pop3s://{host}/", user, password, "--request", "UIDL")
    assert uidl.returncode == 0 and len(uidl.stdout.splitlines()) == 2, uidl
    dele = curl(pop, certs, "pop3s://{host}/1", user, password, "--request", "DELE", "--list-only")
    assert dele.returncode == 0, dele.stderr
    assert [s.uid for s in pop.db.messages(user)] == [copies[1].uid]


def test_curl_pop3_with_stls(pop, certs):
    user, password = pop.new_user()
    copy = pop.deliver(user, message("curl stls", BODY))
    got = curl(pop, certs, "pop3://{host}/1", user, password, "--ssl-reqd")
    assert got.returncode == 0, got.stderr
    assert got.stdout == copy.data
    # Without TLS curl gets no login at all.
    refused = curl(pop, certs, "pop3://{host}/1", user, password)
    assert refused.returncode != 0 and refused.stdout == b""


def test_fetchmail_retrieves_into_mbox_and_deletes(pop, certs, tmp_path):
    need("fetchmail")
    user, password = pop.new_user()
    big = b"".join(f"line {n} of a longer message\r\n".encode() for n in range(20_000))
    copies = [pop.deliver(user, message("fetchmail 1", BODY)),
              pop.deliver(user, message("fetchmail 2", b".\r\n" + big)),
              pop.deliver(user, message("fetchmail 3", b"short\r\n"))]
    home = tmp_path / "fetchmail"
    home.mkdir()
    mda = home / "mda.py"
    mda.write_text(MDA)
    mbox = home / "mbox"
    rc = home / "fetchmailrc"
    rc.write_text(
        f'poll {HOSTNAME} via 127.0.0.1 service {pop.ports["pop3s"]} protocol POP3 timeout 30\n'
        f'  user "{user}" there with password "{password}" is "nobody" here\n'
        f'  ssl sslcertck sslcertfile "{certs.pki.ca_cert}" sslcommonname "{HOSTNAME}"\n'
        f'  no keep\n  no rewrite\n  no stripcr\n'
        f'  mda "{sys.executable} {mda} {mbox}"\n'
    )
    rc.chmod(0o600)
    env = {**os.environ, "FETCHMAILHOME": str(home)}
    result = subprocess.run(["fetchmail", "--fetchmailrc", str(rc), "--invisible", "--nosyslog",
                             "--nodetach", "--verbose"],
                            capture_output=True, env=env, timeout=CLIENT_TIMEOUT)
    log = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, log[-4000:]
    assert mbox.read_bytes() == b"".join(FROM_LINE + c.data + b"\n" for c in copies), \
        "the mbox holds each delivered message byte for byte"
    assert pop.db.messages(user) == [], f"--nokeep deleted them on the server:\n{log[-2000:]}"
    # A second run finds nothing.
    again = subprocess.run(["fetchmail", "--fetchmailrc", str(rc), "--nosyslog", "--nodetach"],
                           capture_output=True, env=env, timeout=CLIENT_TIMEOUT)
    assert again.returncode == 1, again  # fetchmail: 1 = no mail
