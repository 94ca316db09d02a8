"""mbsync (isync) syncing a sealpost account with a local Maildir over imaps, both ways:
server → local (new messages, \\Seen/\\Flagged as the S/F letters of the Maildir file name,
new folders), local → server (a new file is appended, a changed file name changes the
flags, T + expunge deletes on the server, a new local folder is created), and server-side
deletions and flag changes reaching the Maildir. The TLS chain is verified with the test CA."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from imap_support import ImapServer, append, imap, quote, simple_message  # noqa: F401  (imap: fixture)

MBSYNC_TIMEOUT = 60
# Maildir flag letters (maildir(5), mbsync(1)) and the IMAP flags they stand for.
LETTERS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}


def need_mbsync() -> str:
    binary = shutil.which("mbsync")
    if binary is None:
        pytest.fail("mbsync is not installed (scripts/test installs the isync package)")
    return binary


def tls_keyword() -> str:
    """isync 1.5 renamed SSLType to TLSType; 1.4 (Debian 12) knows only SSLType."""
    out = subprocess.run(["mbsync", "--version"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"(\d+)\.(\d+)", out)
    return "TLSType" if m and (int(m[1]), int(m[2])) >= (1, 5) else "SSLType"


class Sync:
    """One account's mbsync configuration and Maildir under `home`.

    `Host localhost`, not 127.0.0.1: isync 1.4 matches the host name against the
    certificate's DNS names only (not its IP address entries), and the server certificate is
    verified in full against the test CA (CertificateFile, no system store)."""

    def __init__(self, imap: ImapServer, home: Path, user: str, password: str,
                 patterns: str = "INBOX Work*"):
        need_mbsync()
        self.imap, self.user, self.password = imap, user, password
        self.mail = home / "mail"
        self.mail.mkdir(parents=True)
        secret = home / "password"
        secret.write_text(password + "\n")
        secret.chmod(0o600)
        self.rc = home / "mbsyncrc"
        self.rc.write_text(f"""\
IMAPAccount sealpost
Host localhost
Port {imap.ports["imaps"]}
User {user}
PassCmd "cat {secret}"
{tls_keyword()} IMAPS
CertificateFile {imap.instance.certs.pki.ca_cert}
SystemCertificates no

IMAPStore far
Account sealpost

MaildirStore near
Path {self.mail}/
Inbox {self.mail}/INBOX
SubFolders Verbatim

Channel sync
Far :far:
Near :near:
Patterns {patterns}
Create Both
Expunge Both
SyncState *
Sync All
""")

    def run(self, *extra: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(["mbsync", "-c", str(self.rc), *extra, "-a"], capture_output=True,
                              text=True, timeout=MBSYNC_TIMEOUT, env={**os.environ, "HOME": str(self.mail.parent)})
        assert proc.returncode == 0, f"mbsync failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n" \
                                     f"server log:\n{self.imap.log()[-3000:]}"
        return proc

    def local(self, folder: str = "INBOX") -> dict[str, tuple[Path, str]]:
        """{Subject: (file, Maildir flag letters)} of the messages in a local folder."""
        out = {}
        base = self.mail / folder
        for sub in ("new", "cur"):
            for path in sorted((base / sub).glob("*")) if (base / sub).is_dir() else []:
                m = re.search(rb"^Subject: (.*)\r?$", path.read_bytes(), re.M)
                flags = path.name.split(":2,", 1)[1] if ":2," in path.name else ""
                out[m[1].decode() if m else path.name] = (path, flags)
        return out

    def remote(self, mailbox: str = "INBOX") -> dict[str, tuple[int, set[str], bytes]]:
        """{Subject: (UID, flags, BODY[])} on the server, read over a fresh imaps session."""
        out = {}
        with self.imap.login(self.user, self.password, select=None) as conn:
            exists = conn.ok("e", "EXAMINE ", quote(mailbox)).untagged("EXISTS")
            if int(exists[-1].split()[1]) == 0:
                return out
            for items in conn.ok("f", "FETCH 1:* (UID FLAGS BODY.PEEK[])").fetches().values():
                m = re.search(rb"^Subject: (.*)\r$", items["BODY[]"], re.M)
                out[m[1].decode()] = (int(items["UID"]), {str(f) for f in items["FLAGS"]}, items["BODY[]"])
        return out

    def rename_flags(self, path: Path, letters: str) -> Path:
        """Give a local message new Maildir flags (letters sorted, as maildir(5) asks)."""
        base = path.name.split(":2,", 1)[0]
        target = path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(letters))}"
        path.rename(target)
        return target


def same_message(a: bytes, b: bytes) -> bool:
    """Equal up to line ends (a Maildir holds LF lines, IMAP has CRLF) and the X-TUID header
    mbsync adds to every message it uploads so it can find it again after an interruption."""
    def norm(data: bytes) -> bytes:
        return re.sub(rb"^X-TUID: [^\n]*\n", b"", data.replace(b"\r\n", b"\n"), flags=re.M)
    return norm(a) == norm(b)


def imap_flags(letters: str) -> set[str]:
    return {LETTERS[c] for c in letters if c in LETTERS}


def test_server_to_local(imap, tmp_path):
    """New server messages land in the Maildir (as LF lines); \\Seen and \\Flagged become
    the S and F letters (maildir(5)); a server folder (Work/Plans) is created locally."""
    user, password = imap.new_user()
    copies = [imap.deliver(user, simple_message(f"down {n}", f"Body {n}.\r\n".encode())) for n in range(3)]
    with imap.login(user, password, select="INBOX") as conn:
        conn.ok("s1", "STORE 1 +FLAGS (\\Seen)")
        conn.ok("s2", "STORE 2 +FLAGS (\\Flagged \\Seen)")
        conn.ok("c", "CREATE Work/Plans")
        append(conn, "Work/Plans", simple_message("plan"), "\\Seen")
    sync = Sync(imap, tmp_path, user, password)
    sync.run()
    local = sync.local()
    assert set(local) == {"down 0", "down 1", "down 2"}, local
    for n, copy in enumerate(copies):
        path, flags = local[f"down {n}"]
        assert same_message(path.read_bytes(), copy.data), f"down {n} differs from the stored message"
    assert imap_flags(local["down 0"][1]) == {"\\Seen"}
    assert imap_flags(local["down 1"][1]) == {"\\Flagged", "\\Seen"}
    assert imap_flags(local["down 2"][1]) == set()
    plans = sync.local("Work/Plans")
    assert set(plans) == {"plan"} and imap_flags(plans["plan"][1]) == {"\\Seen"}, plans
    # A second run with nothing changed changes nothing.
    sync.run()
    assert {k: v[1] for k, v in sync.local().items()} == {k: v[1] for k, v in local.items()}


def test_local_to_server(imap, tmp_path):
    """A file put into the Maildir is appended to the server; a flag letter added to a file
    name sets the flag on the server; the T letter plus Expunge deletes the message on the
    server; a new local folder is created on the server with its message."""
    user, password = imap.new_user()
    imap.deliver(user, simple_message("kept"))
    imap.deliver(user, simple_message("doomed"))
    sync = Sync(imap, tmp_path, user, password)
    sync.run()
    local = sync.local()
    assert set(local) == {"kept", "doomed"}

    new_message = simple_message("from maildir", b"Written locally.\r\n")
    (sync.mail / "INBOX" / "new" / f"{int(time.time())}.{os.getpid()}_1.client:2,S").write_bytes(new_message)
    sync.rename_flags(local["kept"][0], local["kept"][1] + "F")
    sync.rename_flags(local["doomed"][0], local["doomed"][1] + "T")
    folder = sync.mail / "Work"
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True)
    (folder / "new" / f"{int(time.time())}.{os.getpid()}_2.client").write_bytes(simple_message("filed"))
    sync.run()

    remote = sync.remote()
    assert set(remote) == {"kept", "from maildir"}, f"server INBOX: {sorted(remote)}"
    assert "\\Flagged" in remote["kept"][1], remote["kept"]
    assert same_message(remote["from maildir"][2], new_message) and "\\Seen" in remote["from maildir"][1]
    assert set(sync.remote("Work")) == {"filed"}
    assert "doomed" not in sync.local(), "expunged locally too"
    assert imap.db.messages(user, "INBOX", marker="doomed") == [], "the message is gone from the store"


def test_server_changes_reach_local(imap, tmp_path):
    """After a first sync, a message expunged on the server disappears from the Maildir,
    flags set and cleared on the server change the file names, a new delivery arrives."""
    user, password = imap.new_user()
    for n in range(3):
        imap.deliver(user, simple_message(f"srv {n}"))
    sync = Sync(imap, tmp_path, user, password)
    with imap.login(user, password, select="INBOX") as conn:
        conn.ok("s3", "STORE 3 +FLAGS (\\Seen)")
    sync.run()
    assert set(sync.local()) == {"srv 0", "srv 1", "srv 2"}
    with imap.login(user, password, select="INBOX") as conn:
        conn.ok("s1", "STORE 1 +FLAGS (\\Deleted)")
        conn.ok("x", "EXPUNGE")
        conn.ok("s2", "STORE 1 +FLAGS (\\Flagged \\Answered)")  # srv 1
        conn.ok("s3", "STORE 2 -FLAGS (\\Seen)")  # srv 2
    imap.deliver(user, simple_message("srv 3"))
    sync.run()
    local = sync.local()
    assert set(local) == {"srv 1", "srv 2", "srv 3"}, local
    assert imap_flags(local["srv 1"][1]) == {"\\Flagged", "\\Answered"}, local["srv 1"]
    assert imap_flags(local["srv 2"][1]) == set(), local["srv 2"]
    assert imap_flags(local["srv 3"][1]) == set()
