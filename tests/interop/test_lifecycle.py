"""`serve` as a process: start-up, signals, shutdown, crash safety, concurrent CLI use, `demo`."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import time

import pytest

from harness import HOSTNAME, accepts, assert_ok, clean_env, lines, port_is_free
from tlsclient import LineConn, client_context, connect_tls, read_until_closed

GRACE = 2


# --- the SMTP listener answers (the protocol itself: test_smtp_*.py) --------------------------------


def test_smtp_port_greets_and_quits(server):
    """RFC 5321 §3.1, §4.1.1.10: a 220 greeting naming the host; QUIT gets 221 and the close."""
    with LineConn(socket.create_connection(("127.0.0.1", server.ports["smtp"]))) as conn:
        greeting = conn.readline()
        assert greeting.startswith(f"220 {HOSTNAME} ".encode()), greeting
        assert conn.command(b"QUIT").startswith(b"221 2.0.0"), "QUIT"
        assert conn.readline() == b"", "connection not closed after 221"


# --- start-up and shutdown -----------------------------------------------------------------------


def test_port_in_use_fails_naming_address(instance, start_server):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        instance.config.listen["imaps"] = [address]
        instance.write_config()
        server = start_server(wait=False)
        try:
            code = server.proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve still running 10 s after failing to bind {address}:\n{server.log()}")
    assert code != 0, server.log()
    assert address in server.log(), f"error does not name {address}:\n{server.log()}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_with_exit_zero(server, sig):
    assert server.stop(sig) == 0, server.log()
    assert not any(accepts(port) for port in server.ports.values()), "a port still accepts after exit"


def test_shutdown_drains_open_connections(instance, start_server):
    instance.config.limits["shutdown_grace_secs"] = GRACE
    instance.write_config()
    server = start_server()
    plain = LineConn(socket.create_connection(("127.0.0.1", server.ports["smtp"])))
    tls = LineConn(connect_tls(server.ports["submissions"], client_context()))
    try:
        assert plain.readline().startswith(b"220") and tls.readline().startswith(b"220")
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = server.proc.wait(GRACE + 8)
        took = time.monotonic() - started
        assert code == 0, server.log()
        assert took <= GRACE + 3, f"shutdown took {took:.1f} s with shutdown_grace_secs = {GRACE}"
        for conn in (plain, tls):
            _, _, closed = read_until_closed(conn.sock, 2)
            assert closed, "client connection left open after the server exited"
    finally:
        plain.close()
        tls.close()


# --- the store while serving, and after a crash ----------------------------------------------------


def test_commands_work_while_serving(server, run):
    assert_ok(run("check"))
    assert_ok(run("domain", "add", "live.example"))
    assert_ok(run("user", "add", "alice@live.example", "--password-stdin", input="live-password-1\n"))
    assert "live.example" in lines(assert_ok(run("domain", "list")).out)
    assert "alice@live.example" in lines(assert_ok(run("user", "list")).out)
    assert server.alive(), server.log()


def test_store_survives_kill_9(server, run, start_server):
    assert_ok(run("domain", "add", "crash.example"))
    assert_ok(run("user", "add", "alice@crash.example", "--password-stdin", input="crash-password-1\n"))
    server.kill()  # SIGKILL: no chance to flush anything
    assert "alice@crash.example" in lines(assert_ok(run("user", "list")).out)
    restarted = start_server()
    assert restarted.alive()
    assert "alice@crash.example" in lines(assert_ok(run("user", "list")).out)
    assert "crash.example" in lines(assert_ok(run("domain", "list")).out)


# --- demo ----------------------------------------------------------------------------------------

DEMO_PORTS = {"smtp": 2525, "submission": 5870, "submissions": 4650, "imap": 1430, "imaps": 9930,
              "pop3": 1100, "pop3s": 9950}


def start_demo(binary, folder, log_path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(binary), "demo", "--dir", str(folder)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, cwd=folder.parent, env=clean_env())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"demo exited with {proc.returncode}:\n{log_path.read_text()}"
        try:
            connect_tls(DEMO_PORTS["submissions"], client_context(), "localhost").close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"demo: no TLS on {DEMO_PORTS['submissions']} after 30 s:\n{log_path.read_text()}")


def stop_demo(proc) -> int | None:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def test_demo_runs_and_reuses_its_folder(sealpost_bin, tmp_path):
    busy = [p for p in DEMO_PORTS.values() if not port_is_free(p)]
    if busy:
        pytest.skip(f"demo ports in use: {busy}")
    folder = tmp_path / "demo"
    first = tmp_path / "demo1.log"
    proc = start_demo(sealpost_bin, folder, first)
    try:
        closed = [name for name, port in DEMO_PORTS.items() if not accepts(port)]
        assert not closed, f"demo does not listen on {closed}"
        password_file = folder / "demo-password"
        assert (folder / "sealpost.toml").is_file()
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600, oct(password_file.stat().st_mode)
        password = password_file.read_text().strip()
        assert password and password in first.read_text(), "password not printed"
        assert "curl" in first.read_text(), "no ready-to-paste curl command printed"
        users = subprocess.run([str(sealpost_bin), "--config", str(folder / "sealpost.toml"), "user", "list"],
                               capture_output=True, text=True, env=clean_env(), timeout=30)
        assert "demo@localhost" in lines(users.stdout), users
    finally:
        code = stop_demo(proc)
    assert code == 0, f"demo: SIGTERM -> {code}:\n{first.read_text()}"

    proc = start_demo(sealpost_bin, folder, tmp_path / "demo2.log")
    try:
        assert password_file.read_text().strip() == password, "second run changed the password"
    finally:
        code = stop_demo(proc)
    assert code == 0, f"demo (second run): SIGTERM -> {code}"
    assert os.path.exists(folder / "sealpost.toml")
