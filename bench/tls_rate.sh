#!/usr/bin/env bash
# Full TLS handshake rate (no session resumption) against sealpost's implicit-TLS ports,
# with the peers' tls_rate.py and the same RSA-2048 certificate as the Postfix/Dovecot baseline.
#   bench/tls_rate.sh                  # 16 concurrent connections, 10 s per port
#   CONNS=32 DURATION=20 PROCS=2 bench/tls_rate.sh
# Results: one JSON line per port on stdout and appended to $WORK/tls_rate.jsonl.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-16}
DURATION=${DURATION:-10}
PROCS=${PROCS:-1}

bench_setup
bench_start
for service in submissions imaps pop3s; do
    python3 "$PEERS_BENCH/tls_rate.py" --host 127.0.0.1 --port "${PORT[$service]}" \
        --conns "$CONNS" --procs "$PROCS" --duration "$DURATION" \
        --servername "$BENCH_HOSTNAME" --label "sealpost-$service" --json "$WORK/tls_rate.jsonl" \
        || echo "tls_rate.py reported errors on $service" >&2
done
bench_stop
