# Shared set-up for the sealpost benchmarks (sourced, not run).
#
# bench_setup   -> $WORK with sealpost.toml, cert.pem/key.pem and free loopback ports in PORT[service]
# bench_start   -> starts `sealpost serve` in the background ($SERVER_PID), waits until the ports accept
# bench_stop    -> SIGTERM, waits, prints the exit code
#
# Environment: SEALPOST_BIN (default target/release/sealpost), WORK (default: a new /tmp folder),
# PEERS_CERTS (default /tmp/peers/certs: the RSA-2048 certificate the Postfix/Dovecot baseline uses).

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
: "${SEALPOST_BIN:=$REPO_DIR/target/release/sealpost}"
: "${PEERS_CERTS:=/tmp/peers/certs}"
: "${PEERS_BENCH:=/work/shared/bench/peers}"
: "${BENCH_HOSTNAME:=mail.bench.test}"
SERVICES=(smtp submissions imaps pop3s)
declare -A PORT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A certificate for $BENCH_HOSTNAME: the baseline's RSA-2048 leaf if present, else a fresh one.
bench_cert() {
    if [ -s "$PEERS_CERTS/server.crt" ] && [ -s "$PEERS_CERTS/server.key" ]; then
        cp "$PEERS_CERTS/server.crt" "$WORK/cert.pem"
        cp "$PEERS_CERTS/server.key" "$WORK/key.pem"
        echo "certificate: $PEERS_CERTS/server.crt (RSA, shared with the baseline)" >&2
    else
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -sha256 -subj "/CN=$BENCH_HOSTNAME" \
            -addext "subjectAltName=DNS:$BENCH_HOSTNAME,DNS:localhost,IP:127.0.0.1" \
            -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
        echo "certificate: generated RSA-2048 self-signed for $BENCH_HOSTNAME" >&2
    fi
    chmod 600 "$WORK/key.pem"
}

bench_setup() {
    if [ ! -x "$SEALPOST_BIN" ]; then
        echo "no sealpost binary at $SEALPOST_BIN (cargo build --release)" >&2
        exit 1
    fi
    : "${WORK:=$(mktemp -d /tmp/sealpost-bench.XXXXXX)}"
    mkdir -p "$WORK"
    bench_cert
    {
        echo "hostname = \"$BENCH_HOSTNAME\""
        echo 'data_dir = "data"'
        echo
        echo '[tls]'
        echo 'cert = "cert.pem"'
        echo 'key = "key.pem"'
        echo
        echo '[listen]'
        for s in "${SERVICES[@]}"; do
            PORT[$s]=$(free_port)
            echo "$s = [\"127.0.0.1:${PORT[$s]}\"]"
        done
        echo
        echo '[log]'
        echo 'level = "warn"'
    } > "$WORK/sealpost.toml"
    echo "work folder: $WORK" >&2
}

bench_start() {
    "$SEALPOST_BIN" --config "$WORK/sealpost.toml" serve >"$WORK/serve.log" 2>&1 &
    SERVER_PID=$!
    trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT
    python3 - "$SERVER_PID" "${PORT[@]}" <<'PY'
import os, socket, sys, time
pid, ports = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
deadline = time.monotonic() + 10
while ports:
    if time.monotonic() > deadline or not os.path.exists(f"/proc/{pid}"):
        sys.exit(f"sealpost did not start (ports {ports} not accepting)")
    def accepts(p):
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", p)) == 0
    ports = [p for p in ports if not accepts(p)]
    time.sleep(0.02)
PY
}

bench_stop() {
    kill -TERM "$SERVER_PID"
    local code=0
    wait "$SERVER_PID" || code=$?
    trap - EXIT
    echo "sealpost serve exited with $code" >&2
}
