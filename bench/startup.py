#!/usr/bin/env python3
"""Start `sealpost serve` N times: time to the first accepted connection, idle RSS, stop time."""

import argparse
import json
import signal
import socket
import statistics
import subprocess
import time


def parse_args():
    a = argparse.ArgumentParser(description=__doc__)
    a.add_argument("--bin", required=True)
    a.add_argument("--config", required=True)
    a.add_argument("--port", type=int, required=True, help="a port the config listens on (127.0.0.1)")
    a.add_argument("--runs", type=int, default=10)
    a.add_argument("--settle", type=float, default=1.0, help="idle seconds before reading memory")
    a.add_argument("--json")
    return a.parse_args()


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, Threads from /proc/PID/status (kB / count)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


def wait_accept(proc: subprocess.Popen, port: int, timeout: float = 10.0) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode} before accepting")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.001)
    proc.kill()
    raise SystemExit(f"port {port} not accepting after {timeout}s")


def one_run(a) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen([a.bin, "--config", a.config, "serve"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_accept(proc, a.port)
    started = time.perf_counter() - t0
    time.sleep(a.settle)
    status = proc_status(proc.pid)
    t1 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(15)
    return {"start_ms": round(started * 1000, 2), "stop_ms": round((time.perf_counter() - t1) * 1000, 2),
            "rss_kb": status.get("VmRSS"), "hwm_kb": status.get("VmHWM"), "threads": status.get("Threads"),
            "exit": code}


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main():
    a = parse_args()
    runs = [one_run(a) for _ in range(a.runs)]
    result = {"runs": a.runs, "settle_s": a.settle,
              **{k: summary([r[k] for r in runs]) for k in ("start_ms", "stop_ms", "rss_kb", "hwm_kb")},
              "threads": runs[-1]["threads"], "nonzero_exits": sum(r["exit"] != 0 for r in runs),
              "first_run_start_ms": runs[0]["start_ms"]}
    out = json.dumps(result)
    print(out)
    if a.json:
        with open(a.json, "a") as f:
            f.write(out + "\n")


if __name__ == "__main__":
    main()
