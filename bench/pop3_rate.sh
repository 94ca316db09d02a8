#!/usr/bin/env bash
# POP3 sessions per second (TLS + login + STAT + RETR 1 + QUIT, no TLS resumption) with
# bench/pop3_rate.py, against Dovecot's POP3S (the peers' 10995, if it is running) and then
# sealpost's pop3s, in the same run with the same client and the same RSA-2048 certificate.
# Users user1..user$USERS@bench.test / benchpass on both; every maildrop gets one message of
# $SIZE bytes first if it is empty (over SMTP: Postfix's 10025 for Dovecot, sealpost's own
# port 25 listener).
#   bench/pop3_rate.sh                      # 16 workers, 10 s each, 100 users, USER/PASS
#   CONNS=32 PROCS=2 DURATION=20 AUTH=plain bench/pop3_rate.sh
#   PIPELINE=1 bench/pop3_rate.sh           # all commands after the greeting in one write
#   RESUME=1 bench/pop3_rate.sh             # abbreviated TLS handshakes (session resumption)
#   PEER=0 bench/pop3_rate.sh               # sealpost only
#   CLIENT=rust bench/pop3_rate.sh          # timed runs with bench/loadgen's pop3-rate (tokio +
#                                           # rustls/aws-lc-rs, one thread; built here) instead of
#                                           # pop3_rate.py (seeding still uses pop3_rate.py)
# Results: one JSON line per server on stdout (with the server's CPU time per session, from
# its process tree), also appended to $WORK/pop3_rate.jsonl.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-16}
PROCS=${PROCS:-1}
DURATION=${DURATION:-10}
USERS=${USERS:-100}
SIZE=${SIZE:-4096}
AUTH=${AUTH:-user}
PEER=${PEER:-1}
PEER_POP3S=${PEER_POP3S:-10995}
PEER_SMTP=${PEER_SMTP:-10025}
PEER_DOVECOT_PID=${PEER_DOVECOT_PID:-/tmp/peers/run/dovecot/master.pid}
PIPELINE=${PIPELINE:-0}
RESUME=${RESUME:-0}
CLIENT=${CLIENT:-python}
BENCH_DOMAIN=bench.test
BENCH_PASS=benchpass

rate() { # label port smtp-port [more pop3_rate.py options]
    python3 "$BENCH_DIR/pop3_rate.py" --host 127.0.0.1 --port "$2" --seed-smtp-port "$3" "${@:4}" \
        --users "$USERS" --size "$SIZE" --auth "$AUTH" --conns "$CONNS" --procs "$PROCS" \
        --duration "$DURATION" --servername "$BENCH_HOSTNAME" --label "$1"
}

# timed run with the Rust client (USER/PASS only, no resumption, one process)
rate_rust() { # label port
    "$LOADGEN_BIN" --host 127.0.0.1 --port "$2" --user "user{n}@$BENCH_DOMAIN" --pass "$BENCH_PASS" \
        --users "$USERS" --conns "$CONNS" --duration "$DURATION" --servername "$BENCH_HOSTNAME" \
        --label "$1" "${EXTRA[@]}"
}

# measure LABEL POP3S-PORT SMTP-PORT SERVER-PID: seed (untimed: deliveries and every user's
# first login), then the timed run, with the server's CPU time (its process tree) around it.
measure() {
    rate "$1-seed" "$2" "$3" --seed-only
    local cpu0 cpu1 status=0
    cpu0=$(python3 "$PEERS_BENCH/cpu_snap.py" "$4")
    if [ "$CLIENT" = rust ]; then
        rate_rust "$1" "$2" >"$WORK/$1.out" || status=1
    else
        rate "$1" "$2" "$3" --skip-seed "${EXTRA[@]}" >"$WORK/$1.out" || status=1
    fi
    cpu1=$(python3 "$PEERS_BENCH/cpu_snap.py" "$4")
    python3 - "$WORK/$1.out" "$cpu0" "$cpu1" "$WORK/pop3_rate.jsonl" <<'PY'
import json, os, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
a, b = [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
if lines:
    res = json.loads(lines[-1])
    ms = (b[2] - a[2]) / os.sysconf("SC_CLK_TCK") * 1000
    res["server_cpu_ms_per_session"] = round(ms / res["sessions"], 2) if res["sessions"] else None
    line = json.dumps(res)
    print(line)
    open(sys.argv[4], "a").write(line + "\n")
PY
    return $status
}

EXTRA=()
[ "$PIPELINE" = 1 ] && EXTRA+=(--pipeline)
[ "$RESUME" = 1 ] && EXTRA+=(--resume)
case "$CLIENT" in
python) ;;
rust)
    [ "$RESUME" = 1 ] || [ "$AUTH" != user ] && { echo "CLIENT=rust supports neither RESUME=1 nor AUTH=plain" >&2; exit 2; }
    LOADGEN_DIR="$BENCH_DIR/loadgen"
    (cd "$LOADGEN_DIR" && cargo build --release --quiet) >&2
    LOADGEN_BIN="$LOADGEN_DIR/target/release/pop3-rate"
    ;;
*) echo "CLIENT must be python or rust" >&2; exit 2 ;;
esac

SERVICES=(smtp pop3s)
bench_setup
CLI=("$SEALPOST_BIN" --config "$WORK/sealpost.toml")
"${CLI[@]}" domain add "$BENCH_DOMAIN" >/dev/null
for i in $(seq 1 "$USERS"); do
    printf '%s\n' "$BENCH_PASS" | "${CLI[@]}" user add "user$i@$BENCH_DOMAIN" --password-stdin >/dev/null
done
echo "provisioned $USERS users on $BENCH_DOMAIN" >&2

status=0
if [ "$PEER" = 1 ]; then
    if (exec 3<>"/dev/tcp/127.0.0.1/$PEER_POP3S") 2>/dev/null; then
        DOVECOT_PID=$(cat "$PEER_DOVECOT_PID" 2>/dev/null || echo 0)
        measure dovecot-pop3s "$PEER_POP3S" "$PEER_SMTP" "$DOVECOT_PID" \
            || { echo "the $CLIENT client reported errors on Dovecot" >&2; status=1; }
    else
        echo "no Dovecot POP3S on 127.0.0.1:$PEER_POP3S (/work/shared/bench/peers/setup.sh starts it); skipped" >&2
    fi
fi

bench_start
measure sealpost-pop3s "${PORT[pop3s]}" "${PORT[smtp]}" "$SERVER_PID" \
    || { echo "the $CLIENT client reported errors on sealpost" >&2; status=1; }
bench_stop
exit $status
