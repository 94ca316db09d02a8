#!/usr/bin/env bash
# Interop with Postfix both ways (issue 6), against the Postfix + Dovecot peers of
# ../shared/bench/peers (started here when they are not running, stopped again after):
#   1. sealpost -> Postfix: a message submitted to sealpost for sink1@bench.test goes to
#      Postfix on 127.0.0.1:10025 as bench.test's MX (a dnslib server answers the MX), over
#      STARTTLS, DKIM-signed; it must land in sink1's Maildir under Dovecot.
#   2. Postfix -> sealpost: Postfix relays src.test (a transport map entry added for the run,
#      removed after) to sealpost's port 25; the message must land in alice@src.test's INBOX.
# Prints PASS/FAIL per direction; exit 1 on a failure. Env: SEALPOST_BIN.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS_SRC:-$REPO/../shared/bench/peers}
. "$PEERS/env.sh"
BIN=${SEALPOST_BIN:-$REPO/target/release/sealpost}
WORK=$(mktemp -d /tmp/pfinterop.XXXXXX)
MAIN_CF=$PEERS_DIR/etc/postfix/main.cf
started_peers=0
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -f "$WORK/main.cf.orig" ]; then
        cp "$WORK/main.cf.orig" "$MAIN_CF"
        postfix -c "$PEERS_DIR/etc/postfix" reload >/dev/null 2>&1 || true
    fi
    [ "$started_peers" = 1 ] && "$PEERS/stop.sh" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if ! (exec 3<>/dev/tcp/127.0.0.1/"$SMTP_PORT") 2>/dev/null; then
    echo "+ starting the Postfix/Dovecot peers" >&2
    "$PEERS/gen_config.sh" >/dev/null
    "$PEERS/start.sh" >/dev/null
    started_peers=1
fi

# DNS: bench.test's MX is Postfix's host (127.0.0.1; the port is [outbound] remote_port).
DNS_PORT=$(free_port)
python3 - "$DNS_PORT" >"$WORK/dns.log" 2>&1 <<'EOF' &
import sys
from dnslib import A, MX, QTYPE, RR, DNSRecord
import socketserver, threading
port = int(sys.argv[1])
records = {("bench.test.", "MX"): MX("mail.bench.test."), ("mail.bench.test.", "A"): A("127.0.0.1")}
class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        request = DNSRecord.parse(data)
        reply = request.reply()
        q = request.q
        rdata = records.get((str(q.qname).lower(), QTYPE[q.qtype]))
        if rdata is not None:
            reply.add_answer(RR(q.qname, q.qtype, rdata=rdata, ttl=60))
        elif not any(k[0] == str(q.qname).lower() for k in records):
            reply.header.rcode = 3
        sock.sendto(reply.pack(), self.client_address)
socketserver.UDPServer(("127.0.0.1", port), Handler).serve_forever()
EOF
pids+=($!)

# sealpost: src.test with alice; MX role on P25, submissions on P465, IMAPS on P993.
P25=$(free_port); P465=$(free_port); P993=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
    -days 2 -subj "/CN=mail.src.test" -addext "subjectAltName=DNS:mail.src.test" >/dev/null 2>&1
cat >"$WORK/sealpost.toml" <<EOF
hostname = "mail.src.test"
data_dir = "data"

[tls]
cert = "cert.pem"
key = "key.pem"

[listen]
smtp = ["127.0.0.1:$P25"]
submissions = ["127.0.0.1:$P465"]
imaps = ["127.0.0.1:$P993"]

[dns]
nameservers = ["127.0.0.1:$DNS_PORT"]

[outbound]
remote_port = $SMTP_PORT
EOF
SP=("$BIN" --config "$WORK/sealpost.toml")
"${SP[@]}" domain add src.test >/dev/null
echo "alice-pass-1" | "${SP[@]}" user add alice@src.test --password-stdin >/dev/null
"${SP[@]}" serve >"$WORK/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$P465") 2>/dev/null && break; sleep 0.1; done

failures=0
marker1="pfinterop-out-$RANDOM$RANDOM"
swaks --silent 2 --server 127.0.0.1:"$P465" --tlsc --auth PLAIN --auth-user alice@src.test \
    --auth-password alice-pass-1 --from alice@src.test --to sink1@"$BENCH_DOMAIN" \
    --header "Subject: $marker1" --body "sealpost to Postfix" >"$WORK/swaks1.log" 2>&1 || true
found=""
for _ in $(seq 100); do
    found=$(grep -rl "$marker1" "$PEERS_DIR"/mail/sink1/Maildir/{new,cur} 2>/dev/null | head -1 || true)
    [ -n "$found" ] && break
    sleep 0.2
done
if [ -n "$found" ] && grep -q "^DKIM-Signature: v=1; a=ed25519-sha256" "$found" \
    && grep -q "^DKIM-Signature: v=1; a=rsa-sha256" "$found" && grep -qi "with ESMTPS" "$found"; then
    echo "PASS sealpost -> Postfix: delivered over STARTTLS (Postfix's Received says ESMTPS), both DKIM signatures"
else
    echo "FAIL sealpost -> Postfix (message file: ${found:-none})"
    "${SP[@]}" queue list || true
    tail -20 "$WORK/serve.log"
    failures=$((failures + 1))
fi

# Postfix relays src.test to sealpost's port 25 for this run.
cp "$MAIN_CF" "$WORK/main.cf.orig"
printf 'src.test smtp:[127.0.0.1]:%s\n' "$P25" >"$WORK/transport"
postconf -c "$PEERS_DIR/etc/postfix" -e "relay_domains = src.test" \
    "transport_maps = texthash:$WORK/transport" "smtp_tls_security_level = may"
postfix -c "$PEERS_DIR/etc/postfix" reload >/dev/null 2>&1
sleep 1
marker2="pfinterop-in-$RANDOM$RANDOM"
swaks --silent 2 --server 127.0.0.1:"$SMTP_PORT" --from someone@"$BENCH_DOMAIN" --to alice@src.test \
    --header "Subject: $marker2" --body "Postfix to sealpost" >"$WORK/swaks2.log" 2>&1 || true
hits=""
for _ in $(seq 100); do
    hits=$(curl -sk --user alice@src.test:alice-pass-1 \
        "imaps://127.0.0.1:$P993/INBOX?SUBJECT%20$marker2" 2>/dev/null | tr -d '\r' || true)
    [[ "$hits" =~ SEARCH\ [0-9] ]] && break
    sleep 0.2
done
if [[ "$hits" =~ SEARCH\ [0-9] ]]; then
    echo "PASS Postfix -> sealpost: relayed by Postfix, stored in alice@src.test's INBOX ($hits)"
else
    echo "FAIL Postfix -> sealpost (IMAP search: ${hits:-nothing})"
    tail -20 "$WORK/serve.log"
    failures=$((failures + 1))
fi
exit $((failures > 0))
