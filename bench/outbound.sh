#!/usr/bin/env bash
# Outbound delivery throughput (issue 6): MESSAGES queued messages of SIZE bytes delivered to one
# local receiving SMTP server, by sealpost and by Postfix, same machine, same run, same receiver.
#
#   bench/outbound.sh                          # 10,000 messages, 3 runs, Postfix too
#   MESSAGES=2000 RUNS=1 PEER=0 bench/outbound.sh
#
# Receiver: Postfix's smtp-sink (plaintext, PIPELINING announced, nothing stored, `-c` counters:
# sessions and messages), restarted for every measurement on the same port. No STARTTLS (the
# sink offers none), so both senders deliver in plaintext.
#
# Senders (each measurement starts with MESSAGES messages queued, untimed fill):
#   sealpost         `serve` with `[outbound] remote_port` = the sink's port and
#                    `max_connections_per_domain = CONNS`; MX routing through a tiny DNS server
#                    (outbound_tool.py dns: dest.bench MX mx.dest.bench, A 127.0.0.1). Filled
#                    once over 465 (implicit TLS, AUTH PLAIN as bench@src.bench, smtp_load.py)
#                    while the sink is down (every recipient deferred), then stopped, `queue
#                    flush`ed and the store copied; every measurement restores that copy and
#                    starts `serve`: its scheduler finds MESSAGES due messages at once. From is
#                    bench@src.bench, a local domain: every message is DKIM-signed (Ed25519 +
#                    RSA-2048).
#   sealpost-nodkim  the same store with the DKIM keys deleted (no signatures): what signing costs.
#   sealpost-analyze, sealpost-nodkim-analyze  (diagnostics, not in the default VARIANTS) the
#                    same stores after `ANALYZE`: SQLite's planner then reads a queue entry's
#                    recipients by primary key instead of scanning every waiting recipient.
#   postfix          (PEER=1; PEER=0 leaves it out of the default VARIANTS) a private Postfix instance under the temp folder (its own
#                    main.cf/master.cf, queue and ports; the /tmp/peers one is not touched):
#                    `transport_maps`: dest.bench -> smtp:[127.0.0.1]:SINK,
#                    `smtp_destination_concurrency_limit = CONNS`, connection caching and
#                    pipelining at their defaults. Filled before every measurement over plain
#                    SMTP (smtp_load.py, permit_mynetworks) with `defer_transports = smtp`, which
#                    is then removed (`postfix reload`); the release is `postqueue -f`.
# Timed: from the release (serve started / postqueue -f) until the sink has all MESSAGES and the
# sender's queue is empty; see outbound_tool.py measure for what is reported.
#
# Environment: MESSAGES=10000 RUNS=3 PEER=1 CONNS=10 (connections per destination, both senders)
# SIZE=4096 FILL_CONNS=20 VARIANTS="postfix sealpost sealpost-nodkim" (the order rotates from run
# to run) LOG_LEVEL=info (sealpost's [log] level; Postfix logs every delivery to its maillog
# file) OUT=FILE (append the JSON lines there too) KEEP=1 (keep the temp folder: logs, the
# sinks' output, timeline-LABEL-RUN.txt with the sink's message and session counts every 10 ms)
# BENCH_PRIORITY=-19 (raise the nice and, as the kernel groups processes by session
# (sched_autogroup), the autogroup nice of this script and of the Postfix instance, like the
# peers' run_all.sh: other jobs on a shared machine then disturb less)
# PROFILE_DIR=DIR (run sealpost's serve under `perf record`, PERF_FREQ=999 samples/s,
# PERF_CALLGRAPH=dwarf,16384; DIR/LABEL-RUN.perf.data; perf's own CPU is then counted too).
# Other jobs on the machine: each measurement first waits up to QUIET_WAIT=60 s for a second in
# which the machine is busy less than FOREIGN_MAX=0.15 cores, and is repeated (up to TRIES=3
# attempts in all, keeping the least disturbed) while other processes used more than
# FOREIGN_MAX cores during it (`foreign_cores`).
# Results: one JSON line per measurement on stdout, then a Markdown summary (median and range).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MESSAGES=${MESSAGES:-10000}
RUNS=${RUNS:-3}
PEER=${PEER:-1}
CONNS=${CONNS:-10}
SIZE=${SIZE:-4096}
FILL_CONNS=${FILL_CONNS:-20}
TRIES=${TRIES:-3}
FOREIGN_MAX=${FOREIGN_MAX:-0.15}
QUIET_WAIT=${QUIET_WAIT:-60}
LOG_LEVEL=${LOG_LEVEL:-info}
KEEP=${KEEP:-0}
OUT=${OUT:-}
if [ "$PEER" = 1 ]; then
    VARIANTS=${VARIANTS:-postfix sealpost sealpost-nodkim}
else
    VARIANTS=${VARIANTS:-sealpost sealpost-nodkim}
fi
for v in $VARIANTS; do
    case "$v" in
        postfix|sealpost|sealpost-nodkim|sealpost-analyze|sealpost-nodkim-analyze) ;;
        *) echo "unknown variant $v (postfix sealpost sealpost-nodkim sealpost-analyze sealpost-nodkim-analyze)" >&2; exit 2 ;;
    esac
done
SRC_DOMAIN=src.bench
DEST_DOMAIN=dest.bench
SENDER=bench@$SRC_DOMAIN
RCPT=sink@$DEST_DOMAIN
BENCH_PASS=benchpass
TOOL="$BENCH_DIR/outbound_tool.py"

for tool in smtp-sink postfix postconf postqueue; do
    if [ "$tool" = smtp-sink ] || [[ " $VARIANTS " == *" postfix "* ]]; then
        command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install postfix)" >&2; exit 1; }
    fi
done
python3 -c 'import dnslib' 2>/dev/null || { echo "python3 dnslib missing (pip install dnslib)" >&2; exit 1; }

# raise_priority PID: nice of the processes of PID's session, and the session's autogroup nice.
raise_priority() {
    [ -n "${BENCH_PRIORITY:-}" ] || return 0
    local pid
    for pid in $(ps -o pid= -s "$(ps -o sid= -p "$1" | tr -d ' ')"); do
        renice -n "$BENCH_PRIORITY" -p "$pid" >/dev/null 2>&1 || true
    done
    [ -w "/proc/$1/autogroup" ] && echo "$BENCH_PRIORITY" >"/proc/$1/autogroup" 2>/dev/null || true
}
# The autogroup is the whole session's (the caller's shell too): restored on exit.
AUTOGROUP_NICE=
if [ -n "${BENCH_PRIORITY:-}" ]; then
    renice -n "$BENCH_PRIORITY" -p $$ >/dev/null
    if [ -w /proc/$$/autogroup ]; then
        AUTOGROUP_NICE=$(sed -n 's/.* nice //p' /proc/$$/autogroup)
        echo "$BENCH_PRIORITY" >/proc/$$/autogroup 2>/dev/null || AUTOGROUP_NICE=
    fi
fi

ROOT=$(mktemp -d /tmp/outbench.XXXXXX)
chmod 755 "$ROOT" # the Postfix daemons (user postfix) must reach their queue and data folders
JSONL="$ROOT/outbound.jsonl"
: >"$JSONL"
DNS_PID= SINK_PID= SERVER_PID= PF_STARTED=0
PFC="$ROOT/postfix/etc"
PFQ="$ROOT/postfix/spool"

cleanup() {
    set +e
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
    [ -n "$DNS_PID" ] && kill "$DNS_PID" 2>/dev/null && wait "$DNS_PID" 2>/dev/null
    if [ "$PF_STARTED" = 1 ]; then
        postfix -c "$PFC" stop >/dev/null 2>&1
        # The master waits for its children; give it a moment before removing its queue.
        for _ in $(seq 1 50); do
            [ -s "$PFQ/pid/master.pid" ] && kill -0 "$(tr -d ' ' <"$PFQ/pid/master.pid")" 2>/dev/null || break
            sleep 0.1
        done
    fi
    [ -n "$AUTOGROUP_NICE" ] && echo "$AUTOGROUP_NICE" >/proc/$$/autogroup 2>/dev/null
    if [ "$KEEP" = 1 ]; then
        echo "kept $ROOT" >&2
    else
        rm -rf "$ROOT"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() { # port [seconds]
    python3 - "$1" "${2:-10}" <<'PY'
import socket, sys, time
port, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while True:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            break
    if time.monotonic() > deadline:
        sys.exit(f"port {port} is not accepting")
    time.sleep(0.02)
PY
}

SINK_PORT=$(free_port)
start_sink() { # output file
    # -a -C -F: no AUTH, XCLIENT, XFORWARD in the EHLO reply (neither sender uses them);
    # PIPELINING, 8BITMIME, DSN, ENHANCEDSTATUSCODES stay. -c: counters on stdout.
    smtp-sink -c -a -C -F -u postfix "127.0.0.1:$SINK_PORT" 1024 >"$1" 2>&1 &
    SINK_PID=$!
    wait_port "$SINK_PORT"
}
stop_sink() {
    kill "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    SINK_PID=
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)" >&2
echo "settings: MESSAGES=$MESSAGES SIZE=$SIZE CONNS=$CONNS RUNS=$RUNS VARIANTS=\"$VARIANTS\" LOG_LEVEL=$LOG_LEVEL BENCH_PRIORITY=${BENCH_PRIORITY:-} sink 127.0.0.1:$SINK_PORT" >&2

# ------------------------------------------------------------------------------ DNS
python3 "$TOOL" dns --port-file "$ROOT/dns.port" --domain "$DEST_DOMAIN" >"$ROOT/dns.log" 2>&1 &
DNS_PID=$!
for _ in $(seq 1 100); do [ -s "$ROOT/dns.port" ] && break; sleep 0.05; done
DNS_PORT=$(cat "$ROOT/dns.port")

# ------------------------------------------------------------------------------ sealpost
need_sealpost=0
for v in $VARIANTS; do case "$v" in sealpost*) need_sealpost=1 ;; esac; done
if [ "$need_sealpost" = 1 ]; then
    WORK="$ROOT/sealpost"
    SERVICES=(submissions)
    bench_setup
    sed -i "s/^level = .*/level = \"$LOG_LEVEL\"/" "$WORK/sealpost.toml"
    cat >>"$WORK/sealpost.toml" <<EOF

[dns]
nameservers = ["127.0.0.1:$DNS_PORT"]

[outbound]
remote_port = $SINK_PORT
max_connections_per_domain = $CONNS
EOF
    CLI=("$SEALPOST_BIN" --config "$WORK/sealpost.toml")
    "${CLI[@]}" domain add "$SRC_DOMAIN" >/dev/null
    printf '%s\n' "$BENCH_PASS" | "${CLI[@]}" user add "$SENDER" --password-stdin >/dev/null
    # Fill: the sink is down, so every delivery attempt fails to connect and is deferred.
    "${CLI[@]}" serve >"$WORK/fill.log" 2>&1 &
    SERVER_PID=$!
    wait_port "${PORT[submissions]}"
    echo "sealpost fill: $MESSAGES messages over 465 ..." >&2
    t=$(date +%s.%N)
    python3 "$PEERS_BENCH/smtp_load.py" --host 127.0.0.1 --port "${PORT[submissions]}" --tls implicit \
        --auth "$SENDER:$BENCH_PASS" --mail-from "$SENDER" --servername "$BENCH_HOSTNAME" \
        --rcpt-template "$RCPT" --rcpt-count 1 --conns "$FILL_CONNS" --messages "$MESSAGES" \
        --size "$SIZE" --label sealpost-fill >"$WORK/fill.out" 2>&1 \
        || { tail -5 "$WORK/fill.out" >&2; echo "sealpost fill failed" >&2; exit 1; }
    sleep 2 # let the last delivery attempts end (deferred)
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
    flushed=$("${CLI[@]}" queue flush)
    echo "sealpost fill done in $(python3 -c "import sys; print(round($(date +%s.%N) - $t, 1))") s; queue flush: $flushed" >&2
    case "$flushed" in
        "$MESSAGES recipient"*) ;;
        *) echo "expected $MESSAGES waiting recipients" >&2; exit 1 ;;
    esac
    # One copy of the filled store per sealpost variant, changed as its name says.
    for v in $VARIANTS; do
        [ "$v" = postfix ] && continue
        cp -a "$WORK/data" "$ROOT/snapshot-$v"
        python3 - "$ROOT/snapshot-$v/sealpost.db" "$v" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
if "-nodkim" in sys.argv[2]:
    # No DKIM keys: the scheduler finds no signer for src.bench and sends the messages unsigned.
    n = db.execute("DELETE FROM dkim_keys").rowcount
    print(f"{sys.argv[2]}: deleted {n} DKIM keys", file=sys.stderr)
if "-analyze" in sys.argv[2]:
    # Diagnostic: with ANALYZE's statistics SQLite reads the recipients of one queue entry
    # through the primary key (queue_id, address) instead of the queue_recipients_due index,
    # whose (status = 'queued', next_attempt <= now) prefix matches every waiting recipient
    # (see bench/RESULTS.md, "Outbound delivery").
    db.execute("ANALYZE")
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
PY
    done
fi

run_sealpost() { # label snapshot run
    local label=$1 snap=$2 run=$3 status=0
    rm -rf "$WORK/data"
    cp -a "$snap" "$WORK/data"
    start_sink "$ROOT/sink-$label-$run.out"
    python3 "$TOOL" measure --label "$label" --messages "$MESSAGES" \
        --sink-out "$ROOT/sink-$label-$run.out" --sink-pid "$SINK_PID" \
        --sealpost-cmd "$SEALPOST_BIN --config $WORK/sealpost.toml" \
        --sealpost-log "$WORK/serve-$label-$run.log" --json "$ROOT/attempt.json" \
        --timeline "$ROOT/timeline-$label-$run.txt" \
        --quiet-wait "$QUIET_WAIT" --quiet-max "$FOREIGN_MAX" \
        ${PROFILE_DIR:+--wrap "perf record -q -F ${PERF_FREQ:-999} --call-graph ${PERF_CALLGRAPH:-dwarf,16384} -o $PROFILE_DIR/$label-$run.perf.data --"} \
        || status=1
    stop_sink
    if [ "$status" != 0 ]; then tail -5 "$WORK/serve-$label-$run.log" >&2; fi
    return $status
}

# ------------------------------------------------------------------------------ Postfix
if [[ " $VARIANTS " == *" postfix "* ]]; then
    PF_SMTP=$(free_port)
    mkdir -p "$PFC" "$PFQ" "$ROOT/postfix/data"
    printf '%s smtp:[127.0.0.1]:%s\n' "$DEST_DOMAIN" "$SINK_PORT" >"$PFC/transport"
    cat >"$PFC/main.cf" <<EOF
# written by bench/outbound.sh: a private instance, relays $DEST_DOMAIN to the sink
compatibility_level = 3.6
queue_directory = $PFQ
data_directory = $ROOT/postfix/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.outbench.test
mydomain = outbench.test
myorigin = \$mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
biff = no
append_dot_mydomain = no
alias_maps =
alias_database =
local_recipient_maps =
maillog_file_prefixes = /tmp
maillog_file = $ROOT/postfix/maillog
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_client_event_limit_exceptions = 127.0.0.0/8
smtpd_client_connection_count_limit = 0
transport_maps = texthash:$PFC/transport
smtp_destination_concurrency_limit = $CONNS
defer_transports = smtp
EOF
    cat >"$PFC/master.cf" <<EOF
# written by bench/outbound.sh (no chroot)
127.0.0.1:$PF_SMTP inet n - n - - smtpd
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
tlsmgr     unix  -       -       n       1000?   1       tlsmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
smtp       unix  -       -       n       -       -       smtp
relay      unix  -       -       n       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
EOF
    chown postfix:postfix "$ROOT/postfix/data"
    # `postfix check` creates the queue tree with its owners and modes.
    postfix -c "$PFC" check </dev/null 2>&1 | grep -v '^$' >&2 || true
    postfix -c "$PFC" start </dev/null >"$ROOT/postfix/start.log" 2>&1 || {
        cat "$ROOT/postfix/start.log" >&2
        tail -5 "$ROOT/postfix/maillog" >&2
        exit 1
    }
    PF_STARTED=1
    wait_port "$PF_SMTP"
    raise_priority "$(tr -d ' ' <"$PFQ/pid/master.pid")"
    echo "postfix $(postconf -c "$PFC" -h mail_version): private instance in $ROOT/postfix, smtpd 127.0.0.1:$PF_SMTP" >&2
fi

pf_queue_count() { # subdirs...
    local n=0 d
    for d in "$@"; do n=$((n + $(find "$PFQ/$d" -type f 2>/dev/null | wc -l))); done
    echo "$n"
}

run_postfix() { # label run
    local label=$1 run=$2 status=0 t
    postconf -c "$PFC" -e "defer_transports = smtp"
    postfix -c "$PFC" reload >/dev/null 2>&1
    sleep 1
    echo "postfix fill: $MESSAGES messages over plain SMTP ..." >&2
    t=$(date +%s.%N)
    python3 "$PEERS_BENCH/smtp_load.py" --host 127.0.0.1 --port "$PF_SMTP" --tls none \
        --mail-from "$SENDER" --rcpt-template "$RCPT" --rcpt-count 1 --conns "$FILL_CONNS" \
        --messages "$MESSAGES" --size "$SIZE" --label postfix-fill >"$ROOT/postfix/fill-$run.out" 2>&1 \
        || { tail -5 "$ROOT/postfix/fill-$run.out" >&2; echo "postfix fill failed" >&2; return 1; }
    for _ in $(seq 1 600); do
        [ "$(pf_queue_count incoming active maildrop)" = 0 ] && [ "$(pf_queue_count deferred)" = "$MESSAGES" ] && break
        sleep 0.2
    done
    echo "postfix fill done in $(python3 -c "print(round($(date +%s.%N) - $t, 1))") s: $(pf_queue_count deferred) deferred, $(pf_queue_count incoming active maildrop) elsewhere" >&2
    [ "$(pf_queue_count deferred)" = "$MESSAGES" ] || { echo "postfix: expected $MESSAGES deferred" >&2; return 1; }
    # The sink runs before the reload: a delivery before the release would show in its counter.
    start_sink "$ROOT/sink-$label-$run.out"
    postconf -c "$PFC" -e "defer_transports ="
    postfix -c "$PFC" reload >/dev/null 2>&1
    sleep 2
    python3 "$TOOL" measure --label "$label" --messages "$MESSAGES" \
        --sink-out "$ROOT/sink-$label-$run.out" --sink-pid "$SINK_PID" \
        --postfix-config "$PFC" --postfix-queue "$PFQ" --json "$ROOT/attempt.json" \
        --timeline "$ROOT/timeline-$label-$run.txt" \
        --quiet-wait "$QUIET_WAIT" --quiet-max "$FOREIGN_MAX" || status=1
    stop_sink
    return $status
}

# ------------------------------------------------------------------------------ runs
# measure VARIANT RUN: up to TRIES attempts while other jobs use more than FOREIGN_MAX cores
# during the timed phase; the least disturbed attempt is kept.
measure() {
    local v=$1 run=$2 try best_f= f status=0
    rm -f "$ROOT/best.json"
    for try in $(seq 1 "$TRIES"); do
        rm -f "$ROOT/attempt.json"
        case "$v" in
            postfix) run_postfix postfix "$run" >/dev/null || status=1 ;;
            sealpost*) run_sealpost "$v" "$ROOT/snapshot-$v" "$run" >/dev/null || status=1 ;;
        esac
        [ -s "$ROOT/attempt.json" ] || { echo "run $run $v: no result" >&2; return 1; }
        f=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["foreign_cores"])' "$ROOT/attempt.json")
        if [ -z "$best_f" ] || python3 -c "import sys; sys.exit(0 if $f < $best_f else 1)"; then
            best_f=$f
            python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); r["attempt"] = int(sys.argv[2]); print(json.dumps(r))' \
                "$ROOT/attempt.json" "$try" >"$ROOT/best.json"
        fi
        [ "$status" = 0 ] || break
        python3 -c "import sys; sys.exit(0 if $f <= $FOREIGN_MAX else 1)" && break
        echo "run $run $v: other jobs used $f cores (> $FOREIGN_MAX) during attempt $try" >&2
    done
    cat "$ROOT/best.json"
    cat "$ROOT/best.json" >>"$JSONL"
    return $status
}

read -r -a order <<<"$VARIANTS"
status=0
for run in $(seq 1 "$RUNS"); do
    for i in "${!order[@]}"; do
        v=${order[$(((i + run - 1) % ${#order[@]}))]}
        echo "run $run: $v" >&2
        measure "$v" "$run" || status=1
    done
done

echo >&2
python3 "$TOOL" summary "$JSONL"
[ -z "$OUT" ] || cat "$JSONL" >>"$OUT"
exit $status
