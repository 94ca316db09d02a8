"""A throw-away test PKI built with the `openssl` command-line tool.

One private CA signs every leaf. Leaves are written as PEM files; each knows the
SHA-256 fingerprint of its DER encoding so that tests can tell which certificate
a server presented.
"""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

CA_CONFIG = """\
[ca]
default_ca = test_ca
[test_ca]
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = any_name
unique_subject = no
[any_name]
commonName = supplied
"""


def openssl(*args: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


def pem_fingerprint(cert_pem: Path) -> str:
    """SHA-256 of the DER form of the first certificate in a PEM file."""
    text = cert_pem.read_text()
    first = text[: text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


@dataclass(frozen=True)
class Leaf:
    cert: Path
    key: Path

    @property
    def fingerprint(self) -> str:
        return pem_fingerprint(self.cert)

    def copy_to(self, folder: Path, cert_name: str, key_name: str) -> Leaf:
        cert, key = folder / cert_name, folder / key_name
        shutil.copyfile(self.cert, cert)
        shutil.copyfile(self.key, key)
        key.chmod(0o600)
        return Leaf(cert, key)


def new_key(path: Path, kind: str) -> None:
    if kind == "rsa":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(path))
    elif kind == "ec":
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    else:
        raise ValueError(kind)
    path.chmod(0o600)


class Pki:
    """A CA in `folder`; `leaf()` issues server certificates signed by it. `name` is the CA's
    common name (CAs meant to be told apart by a verifier need different names: it finds a
    leaf's issuer by name)."""

    def __init__(self, folder: Path, name: str = "sealpost interop test CA"):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_cert = folder / "ca.pem"
        self.ca_key = folder / "ca-key.pem"
        new_key(self.ca_key, "ec")
        openssl(
            "req", "-x509", "-new", "-key", str(self.ca_key), "-sha256", "-days", "30",
            "-subj", f"/CN={name}", "-out", str(self.ca_cert),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )
        (folder / "index.txt").write_text("")
        (folder / "serial").write_text("1000\n")
        self.ca_config = folder / "ca.cnf"
        self.ca_config.write_text(CA_CONFIG.format(dir=folder))

    def leaf(
        self,
        name: str,
        dns_names: list[str],
        kind: str = "rsa",
        start: str | None = None,
        end: str | None = None,
    ) -> Leaf:
        """Issue a server certificate. `start`/`end` are `YYYYMMDDHHMMSSZ` (default: now .. +30 days)."""
        key, csr = self.folder / f"{name}-key.pem", self.folder / f"{name}.csr"
        cert, ext = self.folder / f"{name}.pem", self.folder / f"{name}.ext"
        new_key(key, kind)
        openssl("req", "-new", "-key", str(key), "-subj", f"/CN={dns_names[0]}", "-out", str(csr))
        san = ",".join([f"DNS:{n}" for n in dns_names] + ["IP:127.0.0.1"])
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
            f"subjectAltName={san}\n"
        )
        dates = ["-startdate", start, "-enddate", end] if start and end else ["-days", "30"]
        openssl(
            "ca", "-batch", "-notext", "-config", str(self.ca_config),
            "-cert", str(self.ca_cert), "-keyfile", str(self.ca_key),
            "-in", str(csr), "-out", str(cert), "-extfile", str(ext), *dates,
        )
        return Leaf(cert, key)


@dataclass(frozen=True)
class CertSet:
    """Every certificate the interop suite needs, issued once per session."""

    pki: Pki
    default: Leaf  # RSA-2048, mail.test.example + localhost
    other: Leaf  # ECDSA P-256, other.test.example (chosen by SNI)
    renewed: Leaf  # RSA-2048, mail.test.example again (a new certificate for reload tests)
    expired: Leaf  # RSA-2048, mail.test.example, valid 2020..2021
    stray_key: Path  # an RSA key that matches none of the certificates

    @classmethod
    def create(cls, folder: Path) -> CertSet:
        pki = Pki(folder)
        names = ["mail.test.example", "localhost"]
        stray = folder / "stray-key.pem"
        new_key(stray, "rsa")
        return cls(
            pki=pki,
            default=pki.leaf("default", names),
            other=pki.leaf("other", ["other.test.example"], kind="ec"),
            renewed=pki.leaf("renewed", names),
            expired=pki.leaf("expired", names, start="20200101000000Z", end="20210101000000Z"),
            stray_key=stray,
        )
