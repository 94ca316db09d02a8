#!/usr/bin/env python3
"""The added server CPU per inbound message of sender authentication (issue 7), end to end.

`dns`  : serves the sender's SPF, DKIM and DMARC records (dnslib, tests/interop/dnsserver.py)
         on a free loopback port until killed; prints the port, then writes the signed message.
`send` : sends MESSAGES copies of the signed message over CONNS connections to port 25 and
         prints the server's CPU time per message (from /proc/PID/stat).

The message is 4 KiB from alice@sender.bench.example, DKIM-signed by dkimpy with RSA-2048, sent
from 127.0.0.1 which the domain's SPF record allows; its DMARC record is p=reject with rua.
"""
import argparse
import json
import os
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "interop"))

DOMAIN = "sender.bench.example"
SELECTOR = "rsa2026"


def cpu_jiffies(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in rest[11:15])


def signed_message(workdir: Path) -> tuple[bytes, str]:
    import dkim  # dkimpy

    key_path = workdir / "dkim-rsa.pem"
    if not key_path.exists():
        subprocess.run(["openssl", "genrsa", "-out", str(key_path), "2048"], check=True,
                       capture_output=True)
    public = subprocess.run(["openssl", "rsa", "-in", str(key_path), "-pubout", "-outform", "DER"],
                            check=True, capture_output=True).stdout
    import base64
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()
    body = "".join("The figures for the quarter are attached below, line by line.\r\n"
                   for _ in range(60))
    message = (f"From: Alice <alice@{DOMAIN}>\r\nTo: sink1@bench.test\r\n"
               f"Subject: quarterly figures\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
               f"Message-ID: <bench.1@{DOMAIN}>\r\n\r\n{body}").encode()
    signature = dkim.sign(message, SELECTOR.encode(), DOMAIN.encode(), key_path.read_bytes(),
                          include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return signature + message, record


def serve_dns(workdir: Path) -> None:
    from dnsserver import DnsServer

    message, record = signed_message(workdir)
    (workdir / "signed.eml").write_bytes(message)
    records = {
        DOMAIN: {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
        f"{SELECTOR}._domainkey.{DOMAIN}": {"TXT": [[record[i:i + 255] for i in range(0, len(record), 255)]]},
        f"_dmarc.{DOMAIN}": {"TXT": [f"v=DMARC1; p=reject; rua=mailto:dmarc@{DOMAIN}"]},
    }
    server = DnsServer(records, zones=[""], ttl=3600).start()
    print(server.port, flush=True)
    while True:
        time.sleep(3600)


def send(port: int, pid: int, messages: int, conns: int, message: bytes) -> dict:
    per_conn = [messages // conns + (1 if i < messages % conns else 0) for i in range(conns)]
    errors: list[str] = []

    def worker(count: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                smtp.ehlo("mail.sender.bench.example")
                for _ in range(count):
                    smtp.sendmail(f"alice@{DOMAIN}", ["sink1@bench.test"], message)
        except Exception as error:  # noqa: BLE001 - reported
            errors.append(repr(error))

    cpu0, wall0 = cpu_jiffies(pid), time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in per_conn if n]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu, wall = cpu_jiffies(pid) - cpu0, time.monotonic() - wall0
    ticks = os.sysconf("SC_CLK_TCK")
    return {"messages": messages, "conns": conns, "errors": len(errors),
            "first_error": errors[0] if errors else None,
            "msg_per_s": round(messages / wall, 1),
            "server_cpu_us_per_message": round(cpu / ticks * 1e6 / messages, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["dns", "send"])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--port", type=int)
    parser.add_argument("--pid", type=int)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--conns", type=int, default=10)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    if args.mode == "dns":
        serve_dns(args.work)
    else:
        result = send(args.port, args.pid, args.messages, args.conns,
                      (args.work / "signed.eml").read_bytes())
        result["label"] = args.label
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
