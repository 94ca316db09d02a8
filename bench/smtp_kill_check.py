#!/usr/bin/env python3
"""Crash-safety check for `250 after DATA means stored` (stdlib only, loopback only).

  smtp_kill_check.py send   --port P --auth USER:PASS --acked FILE [--conns 20 --size 4096 --duration 30]
      N connections over implicit TLS with AUTH PLAIN send messages (one command, one reply)
      until the server goes away (or --duration / --max-messages). The Message-ID of every
      message answered 250 is appended to FILE at once (flushed), so the list survives
      whatever happens to the server. Prints a JSON summary.

  smtp_kill_check.py verify --db DATA_DIR/sealpost.db --acked FILE
      After the server was SIGKILLed and restarted: every acknowledged Message-ID must be in
      the store. Prints a JSON summary; exit 1 if one is missing.
"""
import argparse
import asyncio
import base64
import json
import re
import sqlite3
import ssl
import sys
import time
import uuid


def tls_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Failed(Exception):
    pass


async def reply(reader, timeout):
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise Failed("connection closed")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), line


async def command(reader, writer, line, ok, timeout):
    writer.write(line + b"\r\n")
    code, text = await reply(reader, timeout)
    if code not in ok:
        raise Failed(f"{line[:24]!r} -> {text!r}")


def body(size):
    line = b"Crash-safety check line: the quick brown fox jumps over the lazy dog.\r\n"
    return (line * (max(1, size - 400) // len(line) + 1))[: max(2, size - 400)].rstrip(b"\r\n") + b"\r\n"


async def send_main(args):
    if not args.host.startswith("127."):
        sys.exit("refusing non-loopback target")
    user, password = args.auth.split(":", 1)
    sender = args.mail_from or user
    run_id = uuid.uuid4().hex[:16]
    text = body(args.size)
    acked = open(args.acked, "a")
    stats = {"acked": 0, "refused": 0, "in_flight_lost": 0, "errors": []}
    counter = iter(range(10**9))
    deadline = time.monotonic() + args.duration
    ctx = tls_ctx()

    async def worker():
        failures = 0
        while time.monotonic() < deadline and stats["acked"] < args.max_messages:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(args.host, args.port, ssl=ctx, server_hostname=args.servername), 10)
            except (OSError, asyncio.TimeoutError, ssl.SSLError) as error:
                failures += 1
                if failures >= 3:  # the server is gone: stop this worker
                    stats["errors"].append(f"connect: {error!r}"[:200])
                    return
                await asyncio.sleep(0.2)
                continue
            failures = 0
            in_data = False
            try:
                code, _ = await reply(reader, args.timeout)
                if code != 220:
                    raise Failed(f"greeting {code}")
                await command(reader, writer, b"EHLO killcheck.bench.test", (250,), args.timeout)
                token = base64.b64encode(f"\0{user}\0{password}".encode())
                await command(reader, writer, b"AUTH PLAIN " + token, (235,), args.timeout)
                while time.monotonic() < deadline and stats["acked"] < args.max_messages:
                    n = next(counter)
                    rcpt = args.rcpt_template.format(n=n % args.rcpt_count + 1)
                    mid = f"<{n}.{run_id}@killcheck.bench.test>"
                    msg = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: kill check {n}\r\n"
                           f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
                           f"Message-ID: {mid}\r\nX-Kill-Check-Run: {run_id}\r\n\r\n").encode() + text + b".\r\n"
                    await command(reader, writer, f"MAIL FROM:<{sender}>".encode(), (250,), args.timeout)
                    await command(reader, writer, f"RCPT TO:<{rcpt}>".encode(), (250,), args.timeout)
                    await command(reader, writer, b"DATA", (354,), args.timeout)
                    in_data = True
                    writer.write(msg)
                    code, line = await reply(reader, args.timeout)
                    in_data = False
                    if code == 250:
                        acked.write(mid + "\n")
                        acked.flush()
                        stats["acked"] += 1
                    else:
                        stats["refused"] += 1
            except (OSError, Failed, asyncio.TimeoutError, ssl.SSLError, ValueError) as error:
                if in_data:
                    stats["in_flight_lost"] += 1
                if len(stats["errors"]) < 20:
                    stats["errors"].append(f"{type(error).__name__}: {error}"[:200])
            finally:
                try:
                    writer.close()
                except Exception:
                    pass

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(args.conns)))
    acked.close()
    out = {"mode": "send", "run_id": run_id, "acked": stats["acked"], "refused": stats["refused"],
           "in_flight_when_cut": stats["in_flight_lost"], "elapsed_s": round(time.monotonic() - started, 2),
           "error_samples": stats["errors"][:5]}
    print(json.dumps(out))
    return 0


def verify_main(args):
    acked = [line.strip() for line in open(args.acked) if line.strip()]
    conn = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True, timeout=30)
    found = set()
    pattern = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+@killcheck\.bench\.test>)", re.M | re.I)
    rows = conn.execute("SELECT b.data FROM messages m JOIN blobs b ON b.hash = m.blob_hash "
                        "WHERE instr(b.data, 'killcheck.bench.test') > 0")
    for (data,) in rows:
        m = pattern.search(data)
        if m:
            found.add(m[1].decode())
    conn.close()
    missing = [mid for mid in acked if mid not in found]
    out = {"mode": "verify", "acked": len(acked), "stored": len(found), "missing": len(missing),
           "missing_samples": missing[:10], "stored_but_not_acked": len(found - set(acked)),
           "ok": not missing and len(acked) > 0}
    print(json.dumps(out))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(out) + "\n")
    return 0 if out["ok"] else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("send")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--servername", default="mail.bench.test")
    s.add_argument("--auth", required=True, help="USER:PASS for AUTH PLAIN")
    s.add_argument("--mail-from", help="envelope and From address (default: the AUTH user)")
    s.add_argument("--rcpt-template", default="sink{n}@bench.test")
    s.add_argument("--rcpt-count", type=int, default=20)
    s.add_argument("--conns", type=int, default=20)
    s.add_argument("--size", type=int, default=4096)
    s.add_argument("--duration", type=float, default=30.0, help="stop sending after this many seconds")
    s.add_argument("--max-messages", type=int, default=10**9)
    s.add_argument("--timeout", type=float, default=30.0)
    s.add_argument("--acked", required=True, help="append the Message-ID of every 250'd message here")
    v = sub.add_parser("verify")
    v.add_argument("--db", required=True)
    v.add_argument("--acked", required=True)
    v.add_argument("--json", help="append the JSON result to this file")
    args = p.parse_args()
    if args.mode == "send":
        return asyncio.run(send_main(args))
    return verify_main(args)


if __name__ == "__main__":
    sys.exit(main())
