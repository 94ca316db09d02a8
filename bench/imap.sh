#!/usr/bin/env bash
# IMAP side by side with Dovecot (the peers' IMAPS on 10993, if it is running), same client,
# same run, same RSA-2048 certificate, over implicit TLS:
#   mix      /work/shared/bench/peers/imap_load.py --mode mix: per connection LOGIN + SELECT,
#            then a seeded mix of UID FETCH (meta, body, range), UID STORE, UID SEARCH, NOOP
#   session  imap_load.py --mode session: connect + TLS + LOGIN + SELECT INBOX + LOGOUT
#   idle     /work/shared/bench/peers/idle_mem.py: memory per connection in IDLE (PSS of the
#            server's process tree before and after)
# Users user1..user$USERS@bench.test / benchpass on both; imap_load.py's --prefill APPENDs
# $PREFILL messages of 3 KB into every INBOX used first (untimed).
#   bench/imap.sh                         # all three, 20 conns, 20 s each, 1000 idle conns
#   MODES="mix session" CONNS=32 PROCS=2 DURATION=30 bench/imap.sh
#   MODES=idle IDLE_CONNS=10000 PEER=0 bench/imap.sh    # 10,000 IDLE sessions, sealpost only
#   CLIENT=rust bench/imap.sh             # mix and session timed with bench/loadgen's pop3-rate
#                                         # --protocol imap (the same mix and session as
#                                         # imap_load.py, with a client cheap enough not to be
#                                         # the bottleneck); built here
# Results: one JSON line per server and mode on stdout (mix/session with the server's CPU
# time per operation), also appended to $WORK/imap.jsonl.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODES=${MODES:-mix session idle}
CONNS=${CONNS:-20}
PROCS=${PROCS:-1}
DURATION=${DURATION:-20}
USERS=${USERS:-100}
PREFILL=${PREFILL:-50}
IDLE_CONNS=${IDLE_CONNS:-1000}
PEER=${PEER:-1}
CLIENT=${CLIENT:-python}
PEER_IMAPS=${PEER_IMAPS:-10993}
PEER_DOVECOT_PID=${PEER_DOVECOT_PID:-/tmp/peers/run/dovecot/master.pid}
BENCH_DOMAIN=bench.test
BENCH_PASS=benchpass

load() { # label port mode [more imap_load.py options]
    python3 "$PEERS_BENCH/imap_load.py" --host 127.0.0.1 --port "$2" --tls implicit \
        --servername "$BENCH_HOSTNAME" --users "$USERS" --password "$BENCH_PASS" \
        --user-template "user{n}@$BENCH_DOMAIN" --mode "$3" --conns "$CONNS" --procs "$PROCS" \
        --duration "$DURATION" --label "$1" "${@:4}"
}

# measure LABEL PORT PID: the modes asked for against one server.
measure() {
    local label=$1 port=$2 pid=$3 status=0 mode
    for mode in $MODES; do
        case "$mode" in
        mix|session)
            local cpu0 cpu1 prefill=0
            # Prefill once per server (before the first timed mode).
            [ "$mode" = "${MODES%% *}" ] && prefill=$PREFILL
            cpu0=$(python3 "$PEERS_BENCH/cpu_snap.py" "$pid")
            if [ "$CLIENT" = rust ]; then
                [ "$prefill" = 0 ] || load "$label-prefill" "$port" mix --prefill "$prefill" --duration 0.1 \
                    >/dev/null 2>&1 || status=1
                if [ "$mode" = session ]; then
                    # Untimed: every user logs in once (sealpost verifies argon2id hashes and
                    # then keeps the verdict; the peers' Dovecot stores {PLAIN} passwords).
                    "$LOADGEN_BIN" --protocol imap --host 127.0.0.1 --port "$port" --user "user{n}@$BENCH_DOMAIN" \
                        --pass "$BENCH_PASS" --users "$USERS" --conns "$USERS" --duration 1 \
                        --servername "$BENCH_HOSTNAME" --label warm-up >/dev/null 2>&1 || status=1
                fi
                cpu0=$(python3 "$PEERS_BENCH/cpu_snap.py" "$pid")
                "$LOADGEN_BIN" --protocol imap --mode "$mode" --host 127.0.0.1 --port "$port" \
                    --user "user{n}@$BENCH_DOMAIN" --pass "$BENCH_PASS" --users "$USERS" --conns "$CONNS" \
                    --duration "$DURATION" --servername "$BENCH_HOSTNAME" --label "$label-$mode" \
                    >"$WORK/$label-$mode.json" 2>"$WORK/$label-$mode.out" || status=1
            else
                if [ "$mode" = session ]; then
                    # Untimed: every user logs in once (see above).
                    load "$label-warm-up" "$port" session --prefill "$prefill" --conns "$USERS" --duration 2 \
                        >/dev/null 2>&1 || status=1
                    prefill=0
                fi
                cpu0=$(python3 "$PEERS_BENCH/cpu_snap.py" "$pid")
                load "$label-$mode" "$port" "$mode" --prefill "$prefill" --json "$WORK/$label-$mode.json" \
                    >"$WORK/$label-$mode.out" 2>&1 || status=1
            fi
            cpu1=$(python3 "$PEERS_BENCH/cpu_snap.py" "$pid")
            python3 - "$WORK/$label-$mode.json" "$cpu0" "$cpu1" "$WORK/imap.jsonl" "$mode" <<'PY' || status=1
import json, os, sys
res = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
a, b = [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
ms = (b[2] - a[2]) / os.sysconf("SC_CLK_TCK") * 1000
count = res.get("ops") or res.get("sessions") or 0
res["server_cpu_ms_per_op"] = round(ms / count, 3) if count else None
line = json.dumps(res)
print(line)
open(sys.argv[4], "a").write(line + "\n")
PY
            ;;
        idle)
            python3 "$PEERS_BENCH/idle_mem.py" --host 127.0.0.1 --port "$port" --tls implicit \
                --servername "$BENCH_HOSTNAME" --users "$USERS" --password "$BENCH_PASS" \
                --user-template "user{n}@$BENCH_DOMAIN" --pid "$pid" --conns "$IDLE_CONNS" \
                --label "$label-idle" --json "$WORK/$label-idle.json" >"$WORK/$label-idle.out" 2>&1 \
                || { status=1; tail -5 "$WORK/$label-idle.out" >&2; }
            [ -s "$WORK/$label-idle.json" ] && python3 -c 'import sys; l=open(sys.argv[1]).read().strip().splitlines()[-1]; print(l); open(sys.argv[2],"a").write(l+"\n")' \
                "$WORK/$label-idle.json" "$WORK/imap.jsonl"
            ;;
        *) echo "unknown mode $mode (mix, session, idle)" >&2; exit 2 ;;
        esac
    done
    return $status
}

case "$CLIENT" in
python) ;;
rust)
    (cd "$BENCH_DIR/loadgen" && cargo build --release --quiet) >&2
    LOADGEN_BIN="$BENCH_DIR/loadgen/target/release/pop3-rate"
    ;;
*) echo "CLIENT must be python or rust" >&2; exit 2 ;;
esac

SERVICES=(imaps)
bench_setup
# Enough connections for the IDLE run, all from 127.0.0.1.
limit=$((IDLE_CONNS + CONNS * PROCS + 100))
printf '\n[limits]\nmax_connections = %d\nmax_connections_per_ip = %d\nmax_sessions_per_user_ip = %d\n' "$limit" "$limit" "$limit" >>"$WORK/sealpost.toml"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
CLI=("$SEALPOST_BIN" --config "$WORK/sealpost.toml")
"${CLI[@]}" domain add "$BENCH_DOMAIN" >/dev/null
for i in $(seq 1 "$USERS"); do
    printf '%s\n' "$BENCH_PASS" | "${CLI[@]}" user add "user$i@$BENCH_DOMAIN" --password-stdin >/dev/null
done
echo "provisioned $USERS users on $BENCH_DOMAIN" >&2

status=0
if [ "$PEER" = 1 ]; then
    if (exec 3<>"/dev/tcp/127.0.0.1/$PEER_IMAPS") 2>/dev/null; then
        measure dovecot "$PEER_IMAPS" "$(cat "$PEER_DOVECOT_PID" 2>/dev/null || echo 0)" \
            || { echo "the client reported errors on Dovecot" >&2; status=1; }
    else
        echo "no Dovecot IMAPS on 127.0.0.1:$PEER_IMAPS (/work/shared/bench/peers/setup.sh starts it); skipped" >&2
    fi
fi

bench_start
measure sealpost "${PORT[imaps]}" "$SERVER_PID" \
    || { echo "the client reported errors on sealpost" >&2; status=1; }
bench_stop
exit $status
