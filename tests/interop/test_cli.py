"""Management commands: domain, user, alias, quickstart -- and their error paths."""

from __future__ import annotations

import base64
import re
import subprocess
import tomllib
from dataclasses import dataclass

import pytest

from harness import HOSTNAME, assert_fails, assert_ok, lines, run_binary

DOMAIN = "test.example"
QUOTED = r'"(?:[^"\\]|\\.)*"'


@pytest.fixture
def domain(run) -> str:
    assert_ok(run("domain", "add", DOMAIN))
    return DOMAIN


def add_user(run, address: str, password: str = "correct-horse-battery") -> None:
    assert_ok(run("user", "add", address, "--password-stdin", input=password + "\n"))


# --- domains -------------------------------------------------------------------------------------


def test_domain_add_list_del(run):
    added = assert_ok(run("domain", "add", DOMAIN))
    assert added.out.strip(), "domain add should print the DKIM selectors"
    assert_ok(run("domain", "add", "second.example"))
    assert sorted(lines(assert_ok(run("domain", "list")).out)) == ["second.example", DOMAIN]
    assert_ok(run("domain", "del", "second.example"))
    assert lines(assert_ok(run("domain", "list")).out) == [DOMAIN]


def test_domain_add_duplicate_is_named(run, domain):
    assert_fails(run("domain", "add", domain), (1, 2), domain)


def test_domain_add_invalid_name_is_named(run):
    assert_fails(run("domain", "add", "not a domain!"), 2, "not a domain!")


def test_domain_del_unknown_is_named(run):
    assert_fails(run("domain", "del", "nowhere.example"), (1, 2), "nowhere.example")


@dataclass
class Record:
    name: str
    ttl: int
    type: str
    data: str

    @property
    def strings(self) -> list[str]:
        return [s[1:-1] for s in re.findall(QUOTED, self.data)]

    @property
    def text(self) -> str:
        return "".join(self.strings)

    @property
    def tags(self) -> dict[str, str]:
        pairs = (t.split("=", 1) for t in self.text.split(";") if "=" in t)
        return {k.strip(): v.strip() for k, v in pairs}


def parse_zone(text: str) -> list[Record]:
    records = []
    for line in lines(text):
        if line.startswith((";", "$")):
            continue
        m = re.fullmatch(r"(\S+)\s+(\d+)\s+IN\s+([A-Z0-9]+)\s+(.+)", line)
        assert m, f"not a zone-file line `NAME TTL IN TYPE DATA`: {line!r}"
        records.append(Record(m[1], int(m[2]), m[3], m[4]))
    return records


def public_key_bits(der: bytes) -> int:
    proc = subprocess.run(["openssl", "pkey", "-pubin", "-inform", "DER", "-noout", "-text"],
                          input=der, capture_output=True)
    assert proc.returncode == 0, f"DKIM p= is not a DER public key: {proc.stderr.decode()}"
    return int(re.search(rb"\((\d+) bit\)", proc.stdout)[1])


def test_domain_records(run):
    added = assert_ok(run("domain", "add", DOMAIN)).out
    records = parse_zone(assert_ok(run("domain", "records", DOMAIN)).out)
    apex = f"{DOMAIN}."
    for r in records:
        assert r.ttl > 0, r
        if r.type == "TXT":
            assert re.fullmatch(rf"\s*({QUOTED}\s*)+", r.data), f"TXT data must be quoted strings: {r.data!r}"
            assert all(len(s) <= 255 for s in r.strings), f"TXT string over 255 chars: {r.data!r}"

    mx = [r for r in records if r.type == "MX" and r.name == apex]
    assert mx and re.fullmatch(rf"\d+\s+{re.escape(HOSTNAME)}\.", mx[0].data), f"MX to {HOSTNAME}.: {mx}"
    assert any(r.type == "TXT" and r.name == apex and r.text.startswith("v=spf1") for r in records), "no SPF"
    dmarc = [r for r in records if r.type == "TXT" and r.name == f"_dmarc.{apex}"]
    assert dmarc and dmarc[0].text.startswith("v=DMARC1"), f"no DMARC record: {dmarc}"

    dkim = {r.tags.get("k"): r for r in records if r.type == "TXT" and r.name.endswith(f"._domainkey.{apex}")}
    assert set(dkim) >= {"ed25519", "rsa"}, f"DKIM records by k=: {sorted(map(str, dkim))}"
    for r in dkim.values():
        selector = r.name.split("._domainkey.")[0]
        assert selector in added, f"`domain add` did not print selector {selector!r}: {added!r}"
        assert r.tags.get("v", "DKIM1") == "DKIM1"
    assert len(base64.b64decode(dkim["ed25519"].tags["p"])) == 32, "Ed25519 p= is a 32-byte key (RFC 8463)"
    assert public_key_bits(base64.b64decode(dkim["rsa"].tags["p"])) >= 1024, "RSA DKIM key too short"
    assert len(dkim["rsa"].strings) > 1, "an RSA key does not fit one 255-char string"


def test_domain_records_unknown_is_named(run):
    assert_fails(run("domain", "records", "nowhere.example"), (1, 2), "nowhere.example")


# --- users ---------------------------------------------------------------------------------------


def generated_password(output: str) -> str:
    m = re.search(r"^password: (\S+)\s*$", output, re.M)
    assert m, f"no `password: ...` line in {output!r}"
    return m[1]


def test_user_add_generates_strong_password(run, domain):
    first = generated_password(assert_ok(run("user", "add", f"alice@{domain}")).out)
    second = generated_password(assert_ok(run("user", "add", f"bob@{domain}")).out)
    assert len(first) >= 12 and first != second


def test_user_add_password_from_stdin(run, domain):
    result = assert_ok(run("user", "add", f"carol@{domain}", "--password-stdin", input="s3cret-Stdin-pass\n"))
    assert "s3cret-Stdin-pass" not in result.out + result.err, "password echoed back"
    assert f"carol@{domain}" in lines(assert_ok(run("user", "list")).out)


def test_user_add_empty_password_refused(run, domain):
    result = run("user", "add", f"dave@{domain}", "--password-stdin", input="")
    assert result.code != 0, f"an empty password was accepted:\n{result}"


def test_user_list_all_and_by_domain(run, domain):
    assert_ok(run("domain", "add", "second.example"))
    for address in (f"alice@{domain}", f"bob@{domain}", "erin@second.example"):
        add_user(run, address)
    assert sorted(lines(assert_ok(run("user", "list")).out)) == [f"alice@{domain}", f"bob@{domain}",
                                                                    "erin@second.example"]
    assert lines(assert_ok(run("user", "list", "second.example")).out) == ["erin@second.example"]


def test_user_passwd_and_del(run, domain):
    add_user(run, f"alice@{domain}")
    assert_ok(run("user", "passwd", f"alice@{domain}", "--password-stdin", input="another-long-pass\n"))
    generated_password(assert_ok(run("user", "passwd", f"alice@{domain}")).out)
    assert_ok(run("user", "del", f"alice@{domain}"))
    assert f"alice@{domain}" not in lines(assert_ok(run("user", "list")).out)


def test_user_quota_show_set_clear(run, domain):
    """`user quota`: shows quota and usage, sets it with K/M/G suffixes, removes it."""
    add_user(run, f"alice@{domain}")
    assert lines(assert_ok(run("user", "quota", f"alice@{domain}")).out) == [
        f"quota of alice@{domain}: none", "in use: 0 octets in 0 messages"]
    assert_ok(run("user", "quota", f"alice@{domain}", "500M"))
    assert lines(assert_ok(run("user", "quota", f"alice@{domain}")).out)[0] == \
        f"quota of alice@{domain}: {500 * 1024 * 1024} octets"
    assert_ok(run("user", "quota", f"alice@{domain}", "none"))
    assert lines(assert_ok(run("user", "quota", f"alice@{domain}")).out)[0] == f"quota of alice@{domain}: none"
    assert_fails(run("user", "quota", f"alice@{domain}", "lots"), 2, "lots")
    assert_fails(run("user", "quota", f"nobody@{domain}"), (1, 2), f"nobody@{domain}")
    assert_fails(run("user", "quota", f"nobody@{domain}", "1G"), (1, 2), f"nobody@{domain}")


def test_user_add_unknown_domain_is_named(run, domain):
    assert_fails(run("user", "add", "alice@nowhere.example"), (1, 2), "nowhere.example")


def test_user_add_duplicate_is_named(run, domain):
    add_user(run, f"alice@{domain}")
    assert_fails(run("user", "add", f"alice@{domain}"), (1, 2), f"alice@{domain}")


@pytest.mark.parametrize(
    "args", [["add", "--password-stdin"], ["passwd", "--password-stdin"], ["del"]], ids=lambda a: a[0]
)
def test_user_bad_address_is_named(run, domain, args):
    command, *options = args
    assert_fails(run("user", command, "not-an-email", *options, input="pw-long-enough\n"), 2, "not-an-email")


@pytest.mark.parametrize("command", ["passwd", "del"])
def test_user_unknown_is_named(run, domain, command):
    args = ["--password-stdin"] if command == "passwd" else []
    result = run("user", command, f"ghost@{domain}", *args, input="pw-long-enough\n")
    assert_fails(result, (1, 2), f"ghost@{domain}")


# --- aliases -------------------------------------------------------------------------------------


def test_alias_add_list_del(run, domain):
    add_user(run, f"alice@{domain}")
    add_user(run, f"bob@{domain}")
    assert_ok(run("alias", "add", f"info@{domain}", f"alice@{domain},bob@{domain}"))
    assert_ok(run("alias", "add", f"@{domain}", f"alice@{domain}"))  # catch-all
    listed = lines(assert_ok(run("alias", "list")).out)
    assert f"info@{domain} -> alice@{domain},bob@{domain}" in listed, listed
    assert f"@{domain} -> alice@{domain}" in listed, listed
    assert_ok(run("alias", "del", f"info@{domain}"))
    listed = lines(assert_ok(run("alias", "list")).out)
    assert not any(line.startswith(f"info@{domain} ") for line in listed), listed
    assert f"@{domain} -> alice@{domain}" in listed, listed


def test_alias_bad_address_is_named(run, domain):
    assert_fails(run("alias", "add", "not-an-email", f"alice@{domain}"), 2, "not-an-email")


# --- quickstart ----------------------------------------------------------------------------------

STANDARD_PORTS = {"smtp": 25, "submission": 587, "submissions": 465, "imap": 143, "imaps": 993,
                  "pop3": 110, "pop3s": 995}


def test_quickstart(sealpost_bin, tmp_path):
    folder = tmp_path / "qs"
    result = assert_ok(run_binary(sealpost_bin, ["quickstart", "--domain", "example.org", "--hostname",
                                                 "mail.example.org", "--dir", folder], cwd=tmp_path))
    assert re.search(r"password:?\s+\S+", result.out, re.I), f"no password printed:\n{result}"
    assert "_dmarc.example.org." in result.out and "v=spf1" in result.out, f"no DNS records:\n{result}"

    config_path = folder / "sealpost.toml"
    config = tomllib.loads(config_path.read_text())
    assert config["hostname"] == "mail.example.org"
    for service, port in STANDARD_PORTS.items():
        addresses = config.get("listen", {}).get(service, [])
        assert addresses and all(a.endswith(f":{port}") for a in addresses), (service, addresses)

    def cli(*args):
        return assert_ok(run_binary(sealpost_bin, ["--config", config_path, *args], cwd=tmp_path))

    assert any(line.startswith("ok") for line in cli("check").out.splitlines())
    assert "example.org" in lines(cli("domain", "list").out)
    assert "postmaster@example.org" in lines(cli("user", "list").out)
