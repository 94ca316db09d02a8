#!/usr/bin/env bash
# SMTP submission throughput on the implicit-TLS port (465-like) with AUTH PLAIN, using the
# peers' smtp_load.py (the client of the Postfix + Dovecot baseline), then a count of the
# delivered rows in the store (smtp_load.py's own IMAP check needs IMAP, which sealpost has not
# yet). Users sink1..sink20@bench.test / benchpass, as in the baseline.
#   bench/smtp_load.sh                          # 20 connections, 3000 messages of 4 KiB
#   CONNS=20 MESSAGES=5000 SIZE=4096 bench/smtp_load.sh
#   bench/smtp_load.sh --kill                   # crash safety: SIGKILL mid-run, restart, every
#                                               # message answered 250 must be in the store
#   KILL_AFTER=3 CONNS=20 bench/smtp_load.sh --kill
# Results: one JSON line on stdout, also appended to $WORK/smtp_load.jsonl.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE=load
case "${1:-}" in
    "") ;;
    --kill) MODE=kill ;;
    *) echo "usage: $0 [--kill]" >&2; exit 2 ;;
esac
CONNS=${CONNS:-20}
MESSAGES=${MESSAGES:-3000}
SIZE=${SIZE:-4096}
KILL_AFTER=${KILL_AFTER:-3}
SINKS=20
BENCH_DOMAIN=bench.test
BENCH_PASS=benchpass
AUTH_USER="sink1@$BENCH_DOMAIN"

SERVICES=(submissions)
bench_setup
CLI=("$SEALPOST_BIN" --config "$WORK/sealpost.toml")
DB="$WORK/data/sealpost.db"
"${CLI[@]}" domain add "$BENCH_DOMAIN" >/dev/null
for i in $(seq 1 "$SINKS"); do
    printf '%s\n' "$BENCH_PASS" | "${CLI[@]}" user add "sink$i@$BENCH_DOMAIN" --password-stdin >/dev/null
done
echo "provisioned $SINKS users on $BENCH_DOMAIN" >&2
bench_start
PORT465=${PORT[submissions]}

if [ "$MODE" = load ]; then
    cpu0=$(python3 "$PEERS_BENCH/cpu_snap.py" "$SERVER_PID")
    # --mail-from: sealpost lets a user send only as one of its own addresses (the baseline's
    # default loadgen@example.org would get 553 5.7.1), so the AUTH user is the sender.
    python3 "$PEERS_BENCH/smtp_load.py" --host 127.0.0.1 --port "$PORT465" --tls implicit \
        --auth "$AUTH_USER:$BENCH_PASS" --mail-from "$AUTH_USER" --servername "$BENCH_HOSTNAME" \
        --conns "$CONNS" --messages "$MESSAGES" --size "$SIZE" --label sealpost-submissions \
        >"$WORK/smtp_load.out" 2>"$WORK/smtp_load.err" || echo "smtp_load.py reported errors" >&2
    cpu1=$(python3 "$PEERS_BENCH/cpu_snap.py" "$SERVER_PID")
    status=0
    python3 - "$WORK/smtp_load.out" "$DB" "$cpu0" "$cpu1" "$WORK/smtp_load.jsonl" <<'PY' || status=$?
import json, os, sqlite3, sys
out, db, cpu0, cpu1, jsonl = sys.argv[1:6]
lines = [l for l in open(out) if l.strip().startswith("{")]
if not lines:
    sys.exit("smtp_load.py printed no result")
res = json.loads(lines[-1])
conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
marker = f"X-Bench-Run: {res['run_id']}".encode()
stored = conn.execute("SELECT count(*) FROM messages m JOIN blobs b ON b.hash = m.blob_hash "
                      "WHERE instr(b.data, ?) > 0", (marker,)).fetchone()[0]
a, b = [float(x) for x in cpu0.split()], [float(x) for x in cpu1.split()]
server_ms = (b[2] - a[2]) / os.sysconf("SC_CLK_TCK") * 1000
res.update(stored_rows=stored, all_stored=stored == res["accepted"],
           server_cpu_ms_per_msg=round(server_ms / res["accepted"], 3) if res["accepted"] else None)
line = json.dumps(res)
print(line)
open(jsonl, "a").write(line + "\n")
sys.exit(0 if res["all_stored"] and res["accepted"] == res["messages"] else 1)
PY
    bench_stop
    exit $status
fi

# --kill: send until the server dies, SIGKILL it after KILL_AFTER seconds, restart, verify.
ACKED="$WORK/acked.txt"
: >"$ACKED"
python3 "$BENCH_DIR/smtp_kill_check.py" send --port "$PORT465" --servername "$BENCH_HOSTNAME" \
    --auth "$AUTH_USER:$BENCH_PASS" --conns "$CONNS" --size "$SIZE" --duration $((KILL_AFTER + 20)) \
    --acked "$ACKED" >"$WORK/kill_send.out" 2>&1 &
CLIENT=$!
sleep "$KILL_AFTER"
echo "SIGKILL sealpost (pid $SERVER_PID) after ${KILL_AFTER}s, $(wc -l <"$ACKED") messages acknowledged so far" >&2
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
wait "$CLIENT" || true
cat "$WORK/kill_send.out" >&2
bench_start
echo "restarted sealpost (pid $SERVER_PID)" >&2
status=0
python3 "$BENCH_DIR/smtp_kill_check.py" verify --db "$DB" --acked "$ACKED" --json "$WORK/smtp_load.jsonl" || status=$?
bench_stop
exit $status
