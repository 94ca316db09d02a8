#!/usr/bin/env python3
"""POP3 sessions per second against any POP3S port (stdlib only).

One session = TCP connect -> full TLS handshake (no resumption unless --resume)
-> greeting -> USER/PASS (or AUTH PLAIN) -> STAT -> RETR 1 (read to the terminating line) ->
QUIT -> close. N concurrent sessions (split over P processes, each driving its share from one
selector loop over non-blocking sockets: asyncio's TLS layer would cost the client more CPU
than the server spends) loop for --duration seconds; each of the N workers owns a
disjoint set of the users, so no two sessions of one account ever overlap (a server with
RFC 1939 maildrop locks would otherwise answer [IN-USE]). Reports sessions/s and latency
percentiles as one JSON line.

--seed-smtp-port: before timing, every user whose maildrop is empty gets one message of
--size bytes over plain SMTP on that port (Postfix's 10025 for Dovecot, sealpost's port 25
listener), and the run waits until each maildrop shows it.
"""
import argparse, base64, json, multiprocessing as mp, os, selectors, smtplib, socket, ssl, sys, time
from concurrent.futures import ThreadPoolExecutor

E = os.environ.get


def parse_args():
    a = argparse.ArgumentParser(description=__doc__)
    a.add_argument("--host", default=E("TARGET_HOST", "127.0.0.1"))
    a.add_argument("--port", type=int, default=int(E("POP3S_PORT", "10995")))
    a.add_argument("--users", type=int, default=100)
    a.add_argument("--user-template", default="user{n}@" + E("BENCH_DOMAIN", "bench.test"))
    a.add_argument("--password", default=E("BENCH_PASS", "benchpass"))
    a.add_argument("--auth", choices=["user", "plain"], default="user")
    a.add_argument("--pipeline", action="store_true",
                   help="send all commands after the greeting at once (RFC 2449 PIPELINING)")
    a.add_argument("--conns", type=int, default=16)
    a.add_argument("--procs", type=int, default=1)
    a.add_argument("--duration", type=float, default=10.0)
    a.add_argument("--servername", default=E("TLS_SERVERNAME", "mail.bench.test"))
    a.add_argument("--seed-smtp-port", type=int, default=0)
    a.add_argument("--size", type=int, default=4096)
    a.add_argument("--resume", action="store_true",
                   help="resume each worker's previous TLS session (abbreviated handshakes)")
    a.add_argument("--seed-only", action="store_true", help="seed the maildrops, then exit")
    a.add_argument("--skip-seed", action="store_true")
    a.add_argument("--json")
    a.add_argument("--label", default="")
    return a.parse_args()


def make_ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


class Session:
    """One POP3 session as a generator that yields the socket event it waits for.

    One session = TCP connect -> full TLS handshake -> greeting -> USER/PASS (or AUTH PLAIN)
    -> STAT -> RETR 1 -> QUIT. With a blocking socket the generator never yields (seeding);
    with a non-blocking one a selector loop drives many at once from one thread."""

    def __init__(self, a, ctx, user, retr=True, blocking=False, session=None):
        self.a, self.user, self.retr = a, user, retr
        raw = socket.create_connection((a.host, a.port), timeout=15)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.setblocking(blocking)
        if blocking:
            raw.settimeout(15)
        self.sock = ctx.wrap_socket(raw, server_hostname=a.servername,
                                    do_handshake_on_connect=False, session=session)
        self.buf = b""
        self.count = 0
        self.started = time.monotonic()

    def run(self):
        while True:
            try:
                self.sock.do_handshake()
                break
            except ssl.SSLWantReadError:
                yield selectors.EVENT_READ
            except ssl.SSLWantWriteError:
                yield selectors.EVENT_WRITE
        yield from self.ok("greeting")
        a = self.a
        if a.auth == "plain":
            blob = base64.b64encode(f"\0{self.user}\0{a.password}".encode()).decode()
            login = [f"AUTH PLAIN {blob}"]
        else:
            login = [f"USER {self.user}", f"PASS {a.password}"]
        commands = login + ["STAT"] + (["RETR 1"] if self.retr else []) + ["QUIT"]
        if a.pipeline:
            yield from self.send("".join(f"{c}\r\n" for c in commands).encode())
        for command in commands:
            if not a.pipeline:
                yield from self.send(f"{command}\r\n".encode())
            reply = yield from self.ok(command.split()[0])
            if command == "STAT":
                self.count = int(reply.split()[1])
                if self.retr and not self.count:
                    raise ConnectionError("empty maildrop")
            elif command == "RETR 1":
                yield from self.body()

    def send(self, data):
        while data:
            try:
                data = data[self.sock.send(data):]
            except (ssl.SSLWantWriteError, BlockingIOError):
                yield selectors.EVENT_WRITE
            except ssl.SSLWantReadError:
                yield selectors.EVENT_READ

    def more(self):
        """Reads what has arrived (every buffered TLS record), waiting for at least a byte."""
        got = False
        while True:
            try:
                data = self.sock.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                if got:
                    return
                yield selectors.EVENT_READ
                continue
            if not data:
                raise ConnectionError("closed")
            self.buf += data
            got = True
            if self.sock.gettimeout() is not None and not self.sock.pending():
                return  # blocking socket: do not block for more than what arrived

    def ok(self, what):
        while (i := self.buf.find(b"\n")) < 0:
            yield from self.more()
        line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        if not line.startswith(b"+OK"):
            raise ConnectionError(f"{what}: {line[:80]!r}")
        return line

    def body(self):
        """Skips a multi-line body, up to and including its terminating line."""
        while not self.buf.startswith(b".\r\n") and b"\r\n.\r\n" not in self.buf:
            yield from self.more()
        if self.buf.startswith(b".\r\n"):
            self.buf = self.buf[3:]
        else:
            self.buf = self.buf[self.buf.index(b"\r\n.\r\n") + 5:]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def blocking_session(a, ctx, user, retr=True):
    """A whole session on a blocking socket; returns the message count STAT reported."""
    s = Session(a, ctx, user, retr=retr, blocking=True)
    try:
        for _ in s.run():
            raise ConnectionError("a blocking session had to wait")
        return s.count
    finally:
        s.close()


def seed(a):
    """Gives every empty maildrop one message (over SMTP) and waits until each shows it."""
    ctx = make_ctx()
    users = [a.user_template.format(n=n) for n in range(1, a.users + 1)]
    counts = _counts(a, ctx, users)
    empty = [u for u, c in zip(users, counts) if c == 0]
    if empty and not a.seed_smtp_port:
        sys.exit(f"{len(empty)} empty maildrops (e.g. {empty[0]}) and no --seed-smtp-port")
    line = b"x" * 76 + b"\r\n"
    body = line * max(1, a.size // len(line))
    if empty:
        with smtplib.SMTP(a.host, a.seed_smtp_port, timeout=30) as smtp:
            for user in empty:
                domain = user.split("@")[1]
                msg = (f"From: <bench@{domain}>\r\nTo: <{user}>\r\n"
                       f"Subject: pop3 bench\r\n\r\n").encode() + body
                smtp.sendmail(f"bench@{domain}", [user], msg)
    deadline = time.monotonic() + 60
    while empty:
        counts = _counts(a, ctx, empty)
        empty = [u for u, c in zip(empty, counts) if c == 0]
        if empty and time.monotonic() > deadline:
            sys.exit(f"{len(empty)} maildrops still empty after seeding")
        time.sleep(0.2 if empty else 0)
    print(f"seeded: {a.users} maildrops have mail", file=sys.stderr)


def _counts(a, ctx, users):
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda u: blocking_session(a, ctx, u, retr=False), users))


def proc_main(a, worker_ids, total_workers, t_start, t_stop):
    """Keeps one session per worker in flight, all driven by one selector loop."""
    ctx = make_ctx()
    lat, errors = [], []
    sel = selectors.DefaultSelector()
    # Worker `wid` owns users wid+1, wid+1+W, wid+1+2W, ...: never two sessions of one user.
    users = {w: [a.user_template.format(n=n) for n in range(w + 1, a.users + 1, total_workers)]
             for w in worker_ids}
    turn = {w: 0 for w in worker_ids}
    # --resume: each worker offers the TLS session of its previous connection.
    tls_sessions = {w: None for w in worker_ids}
    resumed = [0]

    def advance(s, gen, wid):
        try:
            want = next(gen)
        except StopIteration:
            if time.monotonic() <= t_stop:
                lat.append(time.monotonic() - s.started)
                resumed[0] += s.sock.session_reused
            if a.resume:
                tls_sessions[wid] = s.sock.session
            finish(s, wid)
            return
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}"[:200])
            finish(s, wid)
            return
        try:
            sel.modify(s.sock, want, (s, gen, wid))
        except KeyError:
            sel.register(s.sock, want, (s, gen, wid))

    def finish(s, wid):
        try:
            sel.unregister(s.sock)
        except KeyError:
            pass
        s.close()
        start(wid)

    def start(wid):
        if time.monotonic() >= t_stop:
            return
        user = users[wid][turn[wid] % len(users[wid])]
        turn[wid] += 1
        try:
            s = Session(a, ctx, user, session=tls_sessions[wid])
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}"[:200])
            return
        advance(s, s.run(), wid)

    time.sleep(max(0.0, t_start - time.monotonic()))
    cpu0 = time.process_time()
    for w in worker_ids:
        start(w)
    while sel.get_map():
        for key, _ in sel.select(timeout=1.0):
            s, gen, wid = key.data
            advance(s, gen, wid)
        now = time.monotonic()
        for key in list(sel.get_map().values()):
            s, gen, wid = key.data
            if now - s.started > 15:
                errors.append("timeout: no answer within 15 s")
                sel.unregister(s.sock)
                s.close()
                start(wid)
    return {"lat": lat, "errors": errors, "cpu": time.process_time() - cpu0, "resumed": resumed[0]}


def proc_entry(a, ids, total, t0, t1, q):
    try:
        q.put(proc_main(a, ids, total, t0, t1))
    except Exception as e:
        q.put({"lat": [], "errors": [repr(e)], "cpu": 0.0, "resumed": 0})


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    a = parse_args()
    if not (a.host.startswith("127.") or a.host in ("::1", "localhost")):
        sys.exit("refusing non-loopback target")
    if a.conns > a.users:
        sys.exit("--conns must not exceed --users (each worker needs users of its own)")
    if not a.skip_seed:
        seed(a)
    if a.seed_only:
        return 0
    procs = max(1, min(a.procs, a.conns))
    t0 = time.monotonic() + 0.5
    t1 = t0 + a.duration
    q = mp.get_context("fork").Queue()
    ps = []
    for k in range(procs):
        ids = list(range(k, a.conns, procs))
        p = mp.get_context("fork").Process(target=proc_entry, args=(a, ids, a.conns, t0, t1, q))
        p.start()
        ps.append(p)
    rs = [q.get() for _ in ps]
    for p in ps:
        p.join()
    lat = [x for r in rs for x in r["lat"]]
    errors = [e for r in rs for e in r["errors"]]
    res = {"label": a.label, "host": a.host, "port": a.port, "auth": a.auth,
           "pipeline": a.pipeline, "resume": a.resume,
           "resumed": sum(r["resumed"] for r in rs), "users": a.users,
           "conns": a.conns, "procs": procs, "duration_s": a.duration, "sessions": len(lat),
           "sessions_per_s": round(len(lat) / a.duration, 1), "errors": len(errors),
           "error_samples": errors[:3],
           "client_cpu_ms_per_session": round(sum(r["cpu"] for r in rs) * 1000 / len(lat), 2) if lat else None,
           "lat_ms": {p: round(pct(lat, p) * 1000, 2) for p in (50, 90, 99)} if lat else None}
    out = json.dumps(res)
    print(out)
    if a.json:
        with open(a.json, "a") as f:
            f.write(out + "\n")
    return 0 if lat and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
