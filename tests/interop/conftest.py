"""Fixtures for the sealpost interop suite: the binary, a test PKI, config folders, servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import REPO, Instance, Result, Server
from pki import CertSet


@pytest.fixture(scope="session")
def sealpost_bin() -> Path:
    binary = Path(os.environ.get("SEALPOST_BIN", REPO / "target" / "release" / "sealpost")).resolve()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no executable sealpost at {binary} (set SEALPOST_BIN or run cargo build --release)")
    return binary


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> CertSet:
    """Private CA + leaves: default (RSA, mail.test.example/localhost), other (ECDSA, SNI), renewed, expired."""
    return CertSet.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def make_instance(sealpost_bin, certs, tmp_path):
    """Factory: a new config folder (certificates, sealpost.toml, free ports) under tmp_path."""
    count = 0

    def make(name: str | None = None, **kwargs) -> Instance:
        nonlocal count
        count += 1
        return Instance(sealpost_bin, tmp_path / (name or f"instance{count}"), certs, **kwargs)

    return make


@pytest.fixture
def instance(make_instance) -> Instance:
    return make_instance("sealpost")


@pytest.fixture
def run(instance):
    """run(*args, input=None) -> (code, stdout, stderr) of `sealpost --config <instance> ARGS`."""

    def run(*args, input: str | None = None, **kwargs) -> Result:
        return instance.run(*args, input=input, **kwargs)

    return run


@pytest.fixture
def start_server(instance):
    """Factory: start `serve` for an instance (default: the `instance` fixture).

    At teardown every server still running gets SIGTERM and must exit 0 within 10 s.
    """
    started: list[Server] = []

    def start(inst: Instance | None = None, wait: bool = True) -> Server:
        server = (inst or instance).serve(wait=wait)
        started.append(server)
        return server

    yield start
    problems = []
    for server in started:
        if server.alive():
            code = server.stop()
            if code != 0:
                problems.append(f"SIGTERM -> exit {code} (expected 0 within 10 s)\n{server.log()}")
    if problems:
        pytest.fail("graceful shutdown failed:\n" + "\n".join(problems))


@pytest.fixture
def server(start_server) -> Server:
    return start_server()


# --- SMTP: a provisioned server (test_smtp_*.py) -------------------------------------------------

from mailserver import MailServer, start_mail_server, stop_mail_server  # noqa: E402


@pytest.fixture(scope="module")
def mail(sealpost_bin, certs, tmp_path_factory) -> MailServer:
    """One server per test module with the smtp, submission and submissions listeners, the
    domains test.example and second.example, users, aliases and a catch-all (mailserver.py).
    Tests keep apart by unique markers in their messages and distinct client source addresses."""
    server = start_mail_server(sealpost_bin, tmp_path_factory.mktemp("mail"), certs)
    yield server
    problem = stop_mail_server(server)
    if problem:
        pytest.fail(problem)


@pytest.fixture
def make_mail(sealpost_bin, certs, tmp_path):
    """Factory: a fresh provisioned server with extra settings, e.g.
    make_mail(smtp={"max_recipients": 3}, limits={"idle_timeout_secs": 2})."""
    started: list[MailServer] = []
    count = 0

    def make(smtp=None, limits=None) -> MailServer:
        nonlocal count
        count += 1
        server = start_mail_server(sealpost_bin, tmp_path / f"mail{count}", certs, smtp, limits)
        started.append(server)
        return server

    yield make
    problems = [p for p in map(stop_mail_server, started) if p]
    if problems:
        pytest.fail("\n".join(problems))
