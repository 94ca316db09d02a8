"""A sealpost server set up for the SMTP tests: listeners, domains, users, aliases, store access;
and what the POP3 and IMAP servers share with it (`Running`, `start_server`, `stop_server`,
`serving`)."""

from __future__ import annotations

import itertools
import re
import signal
import uuid
from collections.abc import Iterator
from typing import TypeVar

import pytest

from dnsserver import DnsServer
from harness import REPO, HOSTNAME, Instance, Server, assert_ok, free_port
from maildb import MailDb, Stored
from smtpclient import Smtp

DOMAIN = "test.example"
SECOND = "second.example"
ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"
ERIN = f"erin@{SECOND}"
PASSWORDS = {
    ALICE: "alice-Secret-pass-1",
    BOB: "bob-Secret-pass-2",
    CAROL: "carol-Secret-pass-3",  # the account whose password the brute-force tests guess
    ERIN: "erin-Secret-pass-4",
}
TEAM = f"team@{DOMAIN}"  # alias: alice + bob
INFO = f"info@{SECOND}"  # alias: bob
ALIASES = {
    TEAM: [ALICE, BOB],
    INFO: [BOB],
    f"@{SECOND}": [ALICE],  # catch-all of the second domain
}
SMTP_SERVICES = ("smtp", "submission", "submissions")
_users = itertools.count(1)


def readme_config_table(key: str) -> str | None:
    """The table under which README's configuration reference documents `key` ("" = top level)."""
    readme = REPO / "README.md"
    if not readme.exists():
        return None
    for block in re.findall(r"^```toml[ \t]*\n(.*?)^```", readme.read_text(), re.S | re.M):
        table = ""
        for line in block.splitlines():
            header = re.match(r"\s*\[\[?([\w.]+)\]\]?", line)
            if header:
                table = header[1]
            elif re.match(rf"\s*{re.escape(key)}\s*=", line):
                return table
    return None


class Running:
    """A running `sealpost serve`: its instance, ports, store and log; fresh accounts and
    delivery over port 25 for the tests that read mail back (POP3, IMAP)."""

    user_prefix = "user"  # of the addresses new_user makes
    marker_header = "X-Test-Marker"  # what deliver prepends to find the stored copy

    def __init__(self, instance: Instance, server: Server):
        self.instance = instance
        self.server = server
        self.ports = instance.ports
        self.db = MailDb(instance.folder / "data" / "sealpost.db")

    def new_user(self) -> tuple[str, str]:
        """A fresh account (and its password), so tests never share mailboxes."""
        address = f"{self.user_prefix}{next(_users)}-{uuid.uuid4().hex[:6]}@{DOMAIN}"
        password = f"pw-{uuid.uuid4().hex}"
        assert_ok(self.instance.run("user", "add", address, "--password-stdin", input=password + "\n"))
        return address, password

    def deliver(self, rcpt: str, message: bytes) -> Stored:
        """Sends `message` (CRLF lines) over port 25; returns the copy stored in rcpt's INBOX
        (trace headers prepended)."""
        marker = uuid.uuid4().hex
        message = f"{self.marker_header}: {marker}\r\n".encode() + message
        with Smtp(self.ports["smtp"]) as smtp:
            smtp.ehlo("client.test")
            reply = smtp.send_mail("sender@ext.test", [rcpt], message)
            assert reply.code == 250, f"{reply}\n{smtp.log()}"
            smtp.quit()
        stored = self.db.wait_for(marker)
        assert len(stored) == 1 and stored[0].address == rcpt, stored
        assert stored[0].data.endswith(message)
        return stored[0]

    def status_kib(self, field: str) -> int:
        """A field of /proc/<pid>/status in KiB (VmHWM: peak resident memory; VmRSS: now)."""
        with open(f"/proc/{self.server.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.server.pid}/status")

    def vm_hwm_kib(self) -> int:
        """The server's peak resident memory so far (VmHWM, KiB)."""
        return self.status_kib("VmHWM")

    def log(self) -> str:
        return self.server.log()


R = TypeVar("R", bound=Running)


def start_server(cls: type[R], binary, folder, certs, services: tuple[str, ...], limits: dict | None = None,
                 log_level: str | None = None) -> R:
    """A provisioned server with these listeners and `[limits]` (and log level), as `cls`."""
    instance = Instance(binary, folder, certs, services=services)
    if log_level:
        instance.config.log = {"level": log_level}
    configure(instance, None, limits)
    provision(instance)
    return cls(instance, instance.serve())


def stop_server(running: Running) -> str | None:
    """SIGTERM; returns a problem description, or None when it exited 0."""
    if not running.server.alive():
        return f"server was not running at teardown (exit {running.server.proc.returncode}):\n{running.log()[-4000:]}"
    code = running.server.stop(signal.SIGTERM)
    if code != 0:
        return f"SIGTERM -> exit {code} (expected 0):\n{running.log()[-4000:]}"
    return None


def serving(running: R) -> Iterator[R]:
    """The body of a fixture: `yield from serving(start_...(...))` yields the server and, at
    teardown, stops it, failing the test if it was not running or did not exit 0."""
    yield running
    problem = stop_server(running)
    if problem:
        pytest.fail(problem)


class MailServer(Running):
    """A running `sealpost serve` with the SMTP listeners, provisioned for the tests."""

    hostname = HOSTNAME

    def __init__(self, instance: Instance, server: Server, settings: dict[str, int]):
        super().__init__(instance, server)
        self.settings = settings  # the [smtp]/[limits] values configured (key -> value)

    def connect(self, service: str = "smtp", **kwargs) -> Smtp:
        """A new session, greeting read (TLS first on submissions)."""
        return Smtp(self.ports[service], tls=service == "submissions", **kwargs)

    def session(self, service: str = "smtp", helo: str = "client.test", starttls: bool = False, **kwargs) -> Smtp:
        """A new session after EHLO (and STARTTLS + EHLO again when asked)."""
        conn = self.connect(service, **kwargs)
        try:
            conn.ehlo(helo)
            if starttls:
                conn.starttls()
                conn.ehlo(helo)
        except BaseException:
            conn.close()
            raise
        return conn

    def login(self, service: str = "submissions", user: str = ALICE, password: str | None = None,
              helo: str = "client.test", **kwargs) -> Smtp:
        """An authenticated submission session (STARTTLS first on `submission`)."""
        conn = self.session(service, helo=helo, starttls=service == "submission", **kwargs)
        try:
            reply = conn.auth_plain(user, password or PASSWORDS[user])
            assert reply.is_(235, "2.7.0"), f"AUTH PLAIN as {user} -> {reply}\n{conn.log()}"
        except BaseException:
            conn.close()
            raise
        return conn

    def assert_alive(self) -> None:
        """ALIVE: the process runs and a fresh connection gets the greeting and a NOOP answer."""
        assert self.server.alive(), f"server died:\n{self.server.log()}"
        with self.connect("smtp", timeout=5) as conn:
            assert conn.greeting.code == 220, conn.log()
            assert conn.cmd("NOOP").code == 250, conn.log()


def provision(instance: Instance) -> None:
    run = instance.run
    for domain in (DOMAIN, SECOND):
        assert_ok(run("domain", "add", domain))
    for address, password in PASSWORDS.items():
        assert_ok(run("user", "add", address, "--password-stdin", input=password + "\n"))
    for alias, targets in ALIASES.items():
        assert_ok(run("alias", "add", alias, ",".join(targets)))


def configure(instance: Instance, smtp: dict[str, int] | None = None, limits: dict[str, int] | None = None,
              dns: DnsServer | None = None) -> dict:
    """SMTP listeners' config: DNS and outbound on closed loopback ports (nothing ever leaves the
    machine), plus `smtp` keys (under the table README documents them in) and `[limits]` keys.
    The resolver is `dns` (a running DnsServer of the caller's) or, by default, one started here;
    either is `instance.dns`."""
    config = instance.config
    # By default no SPF, DKIM or DMARC records anywhere (NXDOMAIN): sender authentication on
    # port 25 answers at once. MX and address lookups fail temporarily: remote mail stays queued
    # and nothing leaves the machine.
    instance.dns = dns if dns is not None else DnsServer({}, zones=[""], unroutable=True).start()
    config.extra["dns"] = f'nameservers = ["{instance.dns.nameserver}"]'
    config.extra["outbound"] = f"remote_port = {free_port()}"
    settings: dict[str, int] = {}
    tables: dict[str, list[str]] = {}
    for key, value in (smtp or {}).items():
        table = readme_config_table(key)
        if table is None:
            continue  # not a documented key (yet): the test that needs it skips
        if table == "limits":
            config.limits[key] = value
        else:
            tables.setdefault(table, []).append(f"{key} = {value}")
        settings[key] = value
    for table, lines in tables.items():
        config.extra[table] = "\n".join(lines)
    for key, value in (limits or {}).items():
        config.limits[key] = value
        settings[key] = value
    instance.write_config()
    return settings


def start_mail_server(binary, folder, certs, smtp=None, limits=None) -> MailServer:
    instance = Instance(binary, folder, certs, services=SMTP_SERVICES)
    settings = configure(instance, smtp, limits)
    provision(instance)
    return MailServer(instance, instance.serve(), settings)


stop_mail_server = stop_server  # the name the SMTP fixtures use
