#!/usr/bin/env python3
"""Helpers of bench/outbound.sh (outbound delivery throughput, issue 6).

    outbound_tool.py dns --port-file F [--domain dest.bench]
        A tiny authoritative DNS server (dnslib) on 127.0.0.1, UDP and TCP on one free port
        (written to F): DOMAIN MX 10 mx.DOMAIN, mx.DOMAIN A 127.0.0.1; other names in DOMAIN
        NXDOMAIN (or NOERROR/no data for the two names above), names outside it REFUSED.
        Runs until SIGTERM.

    outbound_tool.py measure --label L --messages N --sink-out F --sink-pid P
                             (--sealpost-cmd "BIN --config C" --sealpost-log LOG
                              | --postfix-config DIR --postfix-queue DIR) [--json OUT]
        The timed phase. First (--quiet-wait S) up to S seconds for a second in which the
        machine is busy less than --quiet-max cores; then t0 and the release: for sealpost `BIN --config C serve` is started
        (its store holds N due messages; the scheduler reads them at start-up), for Postfix
        `postqueue -c DIR -f` (N messages in its deferred queue). Polls smtp-sink's counters
        (-c output) every 10 ms until the sink has N messages, then the sender's queue until it
        is empty (sealpost: `queue list` says "queue is empty"; Postfix: no file left under
        incoming/active/deferred/hold/maildrop). Reports wall time to both, messages/s, the
        sender's CPU time over the phase (/proc utime+stime of its process tree, reaped children
        included through cutime/cstime; for Postfix the master's tree: qmgr, smtp, postlogd,
        ...), the sink's CPU, the machine's busy share, its interrupt part (irq + softirq:
        loopback TCP's receive side, in no process's time) and the part used by neither the
        sender, the sink, this watcher nor interrupts (other jobs: `foreign_cores`), the sink's session count (connections)
        and the sender's peak memory (sealpost: VmHWM; both: the largest sum of VmRSS over the
        tree, sampled every 50 ms, which counts the pages Postfix's processes share once per
        process, and the largest sum of PSS, sampled every 250 ms and at the end). For sealpost it then stops
        serve (SIGTERM). One JSON line on stdout (and appended to OUT).
"""
import argparse, json, os, re, signal, subprocess, sys, threading, time

TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------------- DNS
def cmd_dns(args):
    from dnslib import A, MX, QTYPE, RCODE, RR, SOA
    from dnslib.server import BaseResolver, DNSServer
    import socket

    zone = args.domain.lower().rstrip(".")
    mx = "mx." + zone
    records = {zone: {"MX": [MX(mx + ".", 10)]}, mx: {"A": [A("127.0.0.1")]}}

    class Resolver(BaseResolver):
        def resolve(self, request, handler):
            reply = request.reply()
            name = str(request.q.qname).rstrip(".").lower()
            qtype = QTYPE.get(request.q.qtype)
            if not (name == zone or name.endswith("." + zone)):
                reply.header.rcode = RCODE.REFUSED
                reply.header.aa = 0
                return reply
            types = records.get(name)
            if types is None:
                reply.header.rcode = RCODE.NXDOMAIN
            for rdata in (types or {}).get(qtype, []):
                reply.add_answer(RR(name + ".", getattr(QTYPE, qtype), ttl=3600, rdata=rdata))
            if not reply.rr:
                reply.add_auth(RR(zone + ".", QTYPE.SOA, ttl=3600,
                                  rdata=SOA("ns." + zone + ".", "hostmaster." + zone + ".",
                                            (1, 3600, 600, 86400, 3600))))
            return reply

    class Quiet:
        def __getattr__(self, _):
            return lambda *a, **k: None

    for _ in range(20):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        try:
            servers = [DNSServer(Resolver(), address="127.0.0.1", port=port, tcp=tcp, logger=Quiet())
                       for tcp in (False, True)]
            break
        except OSError:
            continue
    else:
        sys.exit("no free port for the DNS server")
    for s in servers:
        s.start_thread()
    with open(args.port_file + ".tmp", "w") as f:
        f.write(f"{port}\n")
    os.rename(args.port_file + ".tmp", args.port_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for s in servers:
        s.stop()


# ---------------------------------------------------------------------------------- /proc
def proc_table():
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        # ppid, utime+stime+cutime+cstime, rss pages
        procs[int(d)] = (int(rest[1]), sum(int(x) for x in rest[11:15]), int(rest[21]))
    return procs


def tree(roots, procs=None):
    procs = procs if procs is not None else proc_table()
    kids = {}
    for p, (pp, _, _) in procs.items():
        kids.setdefault(pp, []).append(p)
    seen, todo = [], list(roots)
    while todo:
        p = todo.pop()
        if p in seen or p not in procs:
            continue
        seen.append(p)
        todo += kids.get(p, [])
    return seen, procs


def tree_cpu_rss(roots):
    pids, procs = tree(roots)
    return (sum(procs[p][1] for p in pids) / TCK, sum(procs[p][2] for p in pids) * PAGE, pids)


def machine_busy():
    """(busy, irq + softirq) seconds of the machine: loopback TCP's receive side and the
    block layer run in softirq context, counted in no process's utime/stime."""
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / TCK, (v[5] + v[6]) / TCK


def pss_kb(pids):
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def vm_hwm_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


SINK_RE = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)")


def sink_counts(path):
    """The last `sess= quit= mesg=` record of smtp-sink -c (records end with CR)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 200))
            tail = f.read()
    except OSError:
        return (0, 0, 0)
    found = SINK_RE.findall(tail)
    if not found:
        return (0, 0, 0)
    return tuple(int(x) for x in found[-1])


# ---------------------------------------------------------------------------------- measure
def postfix_queue_files(qdir):
    n = 0
    for sub in ("incoming", "active", "deferred", "hold", "maildrop"):
        for _, _, files in os.walk(os.path.join(qdir, sub)):
            n += len(files)
    return n


def postfix_master_pid(qdir):
    return int(open(os.path.join(qdir, "pid", "master.pid")).read().strip())


def sealpost_queue_empty(cmd):
    out = subprocess.run(cmd + ["queue", "list"], capture_output=True, text=True)
    return out.returncode == 0 and out.stdout.strip().startswith("queue is empty")


def wait_quiet(max_cores, max_wait):
    """Waits (at most max_wait s) for a second in which the machine is busier than max_cores
    no more; returns the seconds waited."""
    start = time.monotonic()
    while True:
        b0 = machine_busy()[0]
        time.sleep(1)
        busy = machine_busy()[0] - b0
        waited = time.monotonic() - start
        if busy <= max_cores or waited >= max_wait:
            return round(waited - 1, 1)
        time.sleep(2)


def cmd_measure(args):
    n = args.messages
    waited = wait_quiet(args.quiet_max, args.quiet_wait) if args.quiet_wait > 0 else 0
    sealpost = args.sealpost_cmd is not None
    start_sess, _, start_mesg = sink_counts(args.sink_out)
    if start_mesg:
        sys.exit(f"the sink already has {start_mesg} messages before the release")
    roots = [] if sealpost else [postfix_master_pid(args.postfix_queue)]
    cpu0, _, _ = tree_cpu_rss(roots) if roots else (0.0, 0, [])
    sink0 = tree_cpu_rss([args.sink_pid])[0]
    busy0, irq0 = machine_busy()
    me0 = sum(os.times()[:4])
    server = None
    t0 = time.monotonic()
    if sealpost:
        log = open(args.sealpost_log, "ab")
        wrap = args.wrap.split() if args.wrap else []
        server = subprocess.Popen(wrap + args.sealpost_cmd.split() + ["serve"], stdout=log, stderr=log)
        roots = [server.pid]
    else:
        subprocess.run(["postqueue", "-c", args.postfix_config, "-f"], check=True)
    t_release = time.monotonic() - t0
    peak_rss = peak_pss = 0
    last_sample = last_pss = 0.0
    t_first = t_sink = t_empty = None
    status = "ok"
    deadline = t0 + args.timeout
    timeline = open(args.timeline, "w") if args.timeline else None
    while True:
        now = time.monotonic()
        if now > deadline:
            status = "timeout"
            break
        if server is not None and server.poll() is not None:
            status = f"sealpost exited with {server.returncode}"
            break
        if now - last_sample >= 0.05:
            last_sample = now
            _, rss, pids = tree_cpu_rss(roots)
            peak_rss = max(peak_rss, rss)
            if now - last_pss >= 0.25:
                last_pss = now
                peak_pss = max(peak_pss, pss_kb(pids) * 1024)
        sess_now, _, mesg = sink_counts(args.sink_out)
        if timeline is not None:
            timeline.write(f"{now - t0:.3f} {mesg} {sess_now}\n")
        if mesg and t_first is None:
            t_first = now - t0
        if mesg >= n:
            if t_sink is None:
                t_sink = now - t0
            empty = (sealpost_queue_empty(args.sealpost_cmd.split()) if sealpost
                     else postfix_queue_files(args.postfix_queue) == 0)
            if empty:
                t_empty = time.monotonic() - t0
                break
            time.sleep(0.01)
            continue
        time.sleep(0.01)
    cpu1, rss, pids = tree_cpu_rss(roots)
    peak_rss = max(peak_rss, rss)
    sink1 = tree_cpu_rss([args.sink_pid])[0]
    busy1, irq1 = machine_busy()
    me1 = sum(os.times()[:4])
    elapsed = time.monotonic() - t0
    serve_pid = server.pid if server is not None else None
    if server is not None and args.wrap:  # the wrapper's child is serve
        serve_pid = next((p for p in pids if p != server.pid), None)
    hwm = vm_hwm_kb(serve_pid) if serve_pid else None
    pss = pss_kb(pids)
    peak_pss = max(peak_pss, pss * 1024)
    nprocs = len(pids)
    # Connections: smtp-sink counts a session when it ends; Postfix keeps idle connections
    # cached for smtp_connection_cache_time_limit (2 s).
    time.sleep(args.settle)
    sess, quit_, mesg = sink_counts(args.sink_out)
    if server is not None:
        try:
            os.kill(serve_pid or server.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    wall = t_empty if t_empty is not None else None
    res = {
        "label": args.label,
        "messages": n,
        "quiet_wait_s": waited,
        "status": status,
        "sink_messages": mesg,
        "wall_s": round(wall, 3) if wall else None,
        "msgs_per_s": round(n / wall, 1) if wall else None,
        "release_s": round(t_release, 3),
        "first_msg_s": round(t_first, 3) if t_first is not None else None,
        "sink_all_s": round(t_sink, 3) if t_sink is not None else None,
        "sender_cpu_s": round(cpu1 - cpu0, 2),
        "sender_cpu_ms_per_msg": round((cpu1 - cpu0) * 1000 / n, 3),
        "sink_cpu_s": round(sink1 - sink0, 2),
        "machine_busy_cores": round((busy1 - busy0) / elapsed, 2),
        "irq_cores": round((irq1 - irq0) / elapsed, 2),
        # CPU of everything else (other jobs on the machine), in cores: busy minus sender,
        # sink, this watcher (with its `queue list` children) and interrupt time.
        "foreign_cores": round(((busy1 - busy0) - (irq1 - irq0) - (cpu1 - cpu0) - (sink1 - sink0)
                                - (me1 - me0)) / elapsed, 2),
        "connections": sess - start_sess,
        "peak_rss_mb": round(peak_rss / 2**20, 1),
        "peak_pss_mb": round(peak_pss / 2**20, 1),
        "vm_hwm_mb": round(hwm / 1024, 1) if hwm else None,
        "end_pss_mb": round(pss / 1024, 1),
        "processes_at_end": nprocs,
    }
    if status == "ok" and mesg != n:
        res["status"] = f"sink has {mesg} messages, expected {n}"
    line = json.dumps(res)
    print(line, flush=True)
    if args.json:
        with open(args.json, "a") as f:
            f.write(line + "\n")
    return 0 if res["status"] == "ok" else 1


def cmd_summary(args):
    """Median and range per label of the JSON lines in FILE, as a Markdown table."""
    import statistics
    rows = [json.loads(l) for l in open(args.file) if l.strip().startswith("{")]
    labels = []
    for r in rows:
        if r["label"] not in labels:
            labels.append(r["label"])

    def stat(vals, fmt):
        vals = [v for v in vals if v is not None]
        if not vals:
            return "—"
        med = statistics.median(vals)
        return f"{fmt.format(med)} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"

    print("| sender | runs | msg/s | wall s | sender CPU s | CPU ms/msg | connections | peak PSS MB | peak RSS sum MB | other jobs (cores) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label in labels:
        rs = [r for r in rows if r["label"] == label and r["status"] == "ok"]
        bad = sum(1 for r in rows if r["label"] == label and r["status"] != "ok")
        print(f"| {label} | {len(rs)}{f' (+{bad} failed)' if bad else ''} "
              f"| {stat([r['msgs_per_s'] for r in rs], '{:.0f}')} "
              f"| {stat([r['wall_s'] for r in rs], '{:.2f}')} "
              f"| {stat([r['sender_cpu_s'] for r in rs], '{:.2f}')} "
              f"| {stat([r['sender_cpu_ms_per_msg'] for r in rs], '{:.3f}')} "
              f"| {stat([r['connections'] for r in rs], '{:.0f}')} "
              f"| {stat([r['peak_pss_mb'] for r in rs], '{:.1f}')} "
              f"| {stat([r['peak_rss_mb'] for r in rs], '{:.1f}')} "
              f"| {stat([r['foreign_cores'] for r in rs], '{:.2f}')} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dns")
    d.add_argument("--port-file", required=True)
    d.add_argument("--domain", default="dest.bench")
    m = sub.add_parser("measure")
    m.add_argument("--label", required=True)
    m.add_argument("--messages", type=int, required=True)
    m.add_argument("--sink-out", required=True)
    m.add_argument("--sink-pid", type=int, required=True)
    m.add_argument("--sealpost-cmd")
    m.add_argument("--sealpost-log")
    m.add_argument("--postfix-config")
    m.add_argument("--postfix-queue")
    m.add_argument("--wrap", help="a command prefix for serve (e.g. perf record ... --): its "
                   "CPU time and memory are then counted with serve's")
    m.add_argument("--quiet-wait", type=float, default=0,
                   help="before the release, wait up to this long for a quiet second")
    m.add_argument("--quiet-max", type=float, default=0.15,
                   help="a quiet second: the machine busy no more than this many cores")
    m.add_argument("--timeout", type=float, default=900)
    m.add_argument("--settle", type=float, default=3.0)
    m.add_argument("--json")
    m.add_argument("--timeline", help="write 'seconds messages sessions' (the sink's counters, sessions counted "
                   "when they end) every poll (10 ms)")
    s = sub.add_parser("summary")
    s.add_argument("file")
    args = ap.parse_args()
    if args.cmd == "dns":
        return cmd_dns(args)
    if args.cmd == "summary":
        return cmd_summary(args)
    if (args.sealpost_cmd is None) == (args.postfix_config is None):
        ap.error("measure needs --sealpost-cmd or --postfix-config")
    return cmd_measure(args)


if __name__ == "__main__":
    sys.exit(main() or 0)
