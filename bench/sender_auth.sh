#!/usr/bin/env bash
# The cost of sender authentication per inbound message (issue 7: < 1 ms of CPU for SPF + DKIM +
# DMARC on a 4 KiB message with one RSA-2048 signature, DNS answered locally), two ways:
#  1. in-process: crates/sender-auth/examples/assess_cost.rs (SPF, DKIM, DMARC, ARC, iprev and
#     the Authentication-Results field; DNS from memory, the key from the key cache);
#  2. end to end: MESSAGES dkimpy-signed messages over CONNS connections to port 25 of
#     `sealpost serve`, with [sender_auth] enabled and then disabled, records served by a local
#     dnslib server (bench/sender_auth_tool.py); the difference of the server's CPU per message.
#   bench/sender_auth.sh
#   MESSAGES=3000 CONNS=10 bench/sender_auth.sh
# Results: JSON lines on stdout, also appended to $WORK/sender_auth.jsonl.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MESSAGES=${MESSAGES:-2000}
CONNS=${CONNS:-10}
LOOPS=${LOOPS:-5000}

SERVICES=(smtp)
bench_setup

echo "in-process cost ($LOOPS messages)..." >&2
(cd "$REPO_DIR" && cargo run --quiet --release -p sealpost-sender-auth --example assess_cost -- "$LOOPS") \
    | tee -a "$WORK/sender_auth.jsonl"
CLI=("$SEALPOST_BIN" --config "$WORK/sealpost.toml")
"${CLI[@]}" domain add bench.test >/dev/null
printf 'benchpass\n' | "${CLI[@]}" user add sink1@bench.test --password-stdin >/dev/null

python3 "$BENCH_DIR/sender_auth_tool.py" dns --work "$WORK" >"$WORK/dns.port" &
DNS_PID=$!
trap 'kill "$DNS_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/dns.port" ] && [ -s "$WORK/signed.eml" ] && break; sleep 0.1; done
DNS_PORT=$(head -1 "$WORK/dns.port")
printf '\n[dns]\nnameservers = ["127.0.0.1:%s"]\n' "$DNS_PORT" >>"$WORK/sealpost.toml"
cp "$WORK/sealpost.toml" "$WORK/sealpost.base.toml"

run() {
    local enabled=$1
    cp "$WORK/sealpost.base.toml" "$WORK/sealpost.toml"
    printf '\n[sender_auth]\nenabled = %s\n' "$enabled" >>"$WORK/sealpost.toml"
    bench_start
    trap 'kill "$SERVER_PID" "$DNS_PID" 2>/dev/null || true' EXIT
    # Untimed warm-up: connections, caches, the first key lookup.
    python3 "$BENCH_DIR/sender_auth_tool.py" send --work "$WORK" --port "${PORT[smtp]}" \
        --pid "$SERVER_PID" --messages 50 --conns 2 --label warmup >/dev/null
    python3 "$BENCH_DIR/sender_auth_tool.py" send --work "$WORK" --port "${PORT[smtp]}" \
        --pid "$SERVER_PID" --messages "$MESSAGES" --conns "$CONNS" \
        --label "sealpost-port25-sender-auth-$enabled" | tee -a "$WORK/sender_auth.jsonl"
    bench_stop
}
run false
run true
kill "$DNS_PID" 2>/dev/null || true
python3 - "$WORK/sender_auth.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {r.get("label"): r for r in rows}
on, off = by.get("sealpost-port25-sender-auth-true"), by.get("sealpost-port25-sender-auth-false")
if on and off:
    print(json.dumps({"bench": "sender_auth_added_cpu",
                      "added_server_cpu_us_per_message":
                          round(on["server_cpu_us_per_message"] - off["server_cpu_us_per_message"], 1),
                      "with": on["server_cpu_us_per_message"], "without": off["server_cpu_us_per_message"]}))
PY
