"""Running the real `sealpost` binary: config files, CLI invocations, `serve` processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from pki import CertSet, Leaf

REPO = Path(__file__).resolve().parents[2]
HOSTNAME = "mail.test.example"
CLI_TIMEOUT = 30
READY_TIMEOUT = 10
STOP_TIMEOUT = 10

# The services the test server listens on by default (all on 127.0.0.1).
DEFAULT_SERVICES = ("smtp", "submissions", "imaps", "pop3s")
IMPLICIT_TLS = ("submissions", "imaps", "pop3s")


_handed_out: set[int] = set()


def free_port() -> int:
    """A port that was free a moment ago (bind to port 0, close, reuse the number), never one
    handed out before in this test run: the kernel may offer a just-closed number again, and
    two listeners of one instance (or of two instances) must not get the same one."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no fresh free port in 100 tries")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def toml_str(value: str) -> str:
    # A JSON string literal is a valid TOML basic string for the characters used here.
    return json.dumps(value)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return toml_str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


@dataclass
class Config:
    """The fields of a test `sealpost.toml`. `render()` writes the TOML text."""

    hostname: str = HOSTNAME
    data_dir: str = "data"
    cert: str = "cert.pem"
    key: str = "key.pem"
    extra_certs: list[tuple[str, str]] = field(default_factory=list)
    listen: dict[str, list[str]] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    log: dict[str, str] = field(default_factory=lambda: {"level": "info"})
    # Extra raw lines appended to given tables ("" = top level), for unknown-key tests.
    extra: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        lines = [f"hostname = {toml_str(self.hostname)}", f"data_dir = {toml_str(self.data_dir)}"]
        lines += self._extra("")
        lines += ["", "[tls]", f"cert = {toml_str(self.cert)}", f"key = {toml_str(self.key)}"]
        lines += self._extra("tls")
        for cert, key in self.extra_certs:
            lines += ["", "[[tls.certificate]]", f"cert = {toml_str(cert)}", f"key = {toml_str(key)}"]
            lines += self._extra("tls.certificate")
        for table, values in (("listen", self.listen), ("limits", self.limits), ("log", self.log)):
            if values or self.extra.get(table):
                lines += ["", f"[{table}]"]
                lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
                lines += self._extra(table)
        for table, text in self.extra.items():
            if table not in ("", "tls", "tls.certificate", "listen", "limits", "log"):
                lines += ["", f"[{table}]", text]
        return "\n".join(lines) + "\n"

    def _extra(self, table: str) -> list[str]:
        return [self.extra[table]] if self.extra.get(table) else []


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __iter__(self):  # allows `code, out, err = run(...)`
        return iter((self.code, self.out, self.err))

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout ---\n{self.out}--- stderr ---\n{self.err}"


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
    env.update(extra or {})
    return env


def run_binary(binary: Path, args, input: str | None = None, cwd: Path | None = None,
               env: dict[str, str] | None = None, timeout: float = CLI_TIMEOUT) -> Result:
    proc = subprocess.run(
        [str(binary), *map(str, args)],
        input=input if input is not None else "",
        capture_output=True, text=True, cwd=cwd, env=clean_env(env), timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


class Instance:
    """A folder holding a `sealpost.toml`, its certificates and its data directory."""

    def __init__(self, binary: Path, folder: Path, certs: CertSet, services=DEFAULT_SERVICES):
        self.binary = binary
        self.folder = folder
        self.certs = certs
        folder.mkdir(parents=True, exist_ok=True)
        self.cert = certs.default.copy_to(folder, "cert.pem", "key.pem")
        self.other = certs.other.copy_to(folder, "other.pem", "other-key.pem")
        self.ports = {name: free_port() for name in services}
        self.config = Config(
            extra_certs=[("other.pem", "other-key.pem")],
            listen={name: [f"127.0.0.1:{port}"] for name, port in self.ports.items()},
        )
        self.config_path = folder / "sealpost.toml"
        self.write_config()

    def write_config(self) -> Path:
        self.config_path.write_text(self.config.render())
        return self.config_path

    def run(self, *args, input: str | None = None, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> Result:
        """`sealpost --config <this config> ARGS...` -> Result(code, out, err)."""
        return run_binary(self.binary, ["--config", self.config_path, *args], input=input,
                          cwd=cwd or self.folder, env=env)

    def install_cert(self, leaf: Leaf, key_text: str | None = None) -> None:
        """Replace cert.pem and key.pem, each atomically (write a temporary file, rename).

        `key_text` overrides the key's contents (e.g. a truncated or foreign key).
        """
        files = (("key.pem", leaf.key.read_text() if key_text is None else key_text),
                 ("cert.pem", leaf.cert.read_text()))
        for name, text in files:
            tmp = self.folder / f".{name}.tmp"
            tmp.write_text(text)
            tmp.chmod(0o600)
            os.replace(tmp, self.folder / name)

    def serve(self, wait: bool = True) -> Server:
        """Start `sealpost serve` (output to serveN.log); by default wait until every port accepts."""
        log_path = self.folder / f"serve{len(list(self.folder.glob('serve*.log')))}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [str(self.binary), "--config", str(self.config_path), "serve"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.folder, env=clean_env(),
            )
        server = Server(proc, self.ports, log_path)
        if wait:
            server.wait_ready()
        return server


class Server:
    """A running `sealpost serve`."""

    def __init__(self, proc: subprocess.Popen, ports: dict[str, int], log_path: Path):
        self.proc = proc
        self.ports = ports
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.ports.values())
        while pending:
            if not self.alive():
                raise AssertionError(f"sealpost serve exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"ports {sorted(pending)} not accepting after {timeout}s:\n{self.log()}")
            pending = {p for p in pending if not accepts(p)}
            if pending:
                time.sleep(0.05)

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def reload(self) -> None:
        self.send_signal(signal.SIGHUP)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int | None:
        """Send `sig` and wait; returns the exit code, or None if it did not exit in time (then killed)."""
        if self.alive():
            self.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(5)

    def assert_graceful_stop(self) -> None:
        code = self.stop()
        assert code == 0, f"SIGTERM: expected exit 0 within {STOP_TIMEOUT}s, got {code}:\n{self.log()}"


def assert_fails(result: Result, code: int | tuple[int, ...], *names: str) -> None:
    """The command failed with `code`, and stderr is one sentence naming every `names` item."""
    codes = code if isinstance(code, tuple) else (code,)
    assert result.code in codes, f"expected exit {code}:\n{result}"
    assert "panicked" not in result.err, f"panic instead of an error message:\n{result}"
    message = result.err.strip()
    assert message, f"no error message on stderr:\n{result}"
    assert len(message.splitlines()) == 1, f"error should be one line on stderr:\n{result}"
    for name in names:
        assert name in message, f"error message does not name {name!r}:\n{result}"


def lines(text: str) -> list[str]:
    """Non-blank lines, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def assert_ok(result: Result) -> Result:
    assert result.code == 0, f"expected success:\n{result}"
    return result
