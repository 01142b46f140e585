#!/bin/bash
# bench/run.sh - Postfix and posta side by side: receiving, delivering, relaying
#
#   bench/run.sh            (as root; `make bench` builds first)
#
# Three tables (BENCH_MODE = receive, deliver, relay, or all, the default),
# and three more on request (BENCH_MODE = sign or verify, posta only;
# BENCH_MODE = tls):
#
# receive: for each session count (1, 10, 50) smtp-source sends
#   BENCH_MESSAGES (10,000) messages of 4 KiB to a Postfix instance and then
#   to a posta instance, both on 127.0.0.1, and the wall time of the
#   smtp-source run gives messages/s. Both servers discard the mail
#   (default_transport = local_transport = discard), so this measures
#   receiving: the 250 reply means the message is on disk (fsync).
#   A posta built without qmgr keeps its messages in incoming/; the
#   script then empties incoming/ between runs (not timed).
# deliver: the same messages go to one test user (created for the run,
#   removed at the end) and are delivered by local into ~/Maildir
#   (home_mailbox = Maildir/, mydestination = localhost); a run is timed
#   from the start of smtp-source until the last message is in
#   Maildir/new/. Both servers fsync the queue and the delivered file as
#   they always do. Maildir/new/ is emptied between runs (not timed).
# relay: the same messages go to a non-local recipient (user@example.net;
#   mydestination = localhost) and both servers send them with their smtp
#   client to relayhost = [127.0.0.1]:PORT, where Postfix's smtp-sink (one
#   process started by the script, 127.0.0.1 only, counting with -c)
#   accepts and throws them away. A run is timed from the start of
#   smtp-source until the server's queue is empty (incoming, active,
#   deferred, and maildrop for Postfix; polled every 50 ms), and fails
#   unless the sink counted exactly BENCH_MESSAGES new messages. Each
#   session count is also run with smtp-source straight into smtp-sink
#   ("smtp-sink alone", the ceiling of the load generator and the sink).
#   A posta built without the smtp client gets "-" in its columns.
# sign: posta's receive run (accept, fsync, discard) from a mynetworks
#   client, at BENCH_SESSIONS (default 50 in this mode) sessions, without
#   DKIM signing, then with dkim_signing_table naming a 2048-bit RSA key,
#   then an Ed25519 key (both made by `posta dkim keygen`) for the From
#   domain smtp-source writes (localhost); each configuration is run
#   BENCH_REPEAT (2) times and the best figures kept. Three figures per
#   run: accept msg/s (the smtp-source run), drained msg/s (from the start
#   of smtp-source until posta's queue is empty: every message signed and
#   delivered, here discarded) and CPU us per message (user + system time
#   of posta's whole process tree over the same span, from /proc); the
#   table gives the overhead of signing for each. Postfix has no built-in
#   signing. Each run gets posta's queue on a new ext4 file system (an
#   image file in the temporary folder, loop-mounted over the queue
#   directory; BENCH_FRESH_SPOOL=0 turns that off): ext4 makes file
#   creation several times dearer for a minute or more after many
#   deletions, which would otherwise favour whichever run comes first.
# verify (on request too, posta only): posta's DKIM verifier, the code
#   smtpd runs (bench/dkim_verify_bench.c, built here with cc against
#   POSTA_BUILD/libposta.a): BENCH_MESSAGES (default 2000 in this mode)
#   verifications of one signed message (BENCH_SIZE body, relaxed/relaxed,
#   signed with `posta dkim sign` by keys from `posta dkim keygen`) for
#   rsa-sha256 (2048) and ed25519-sha256 with the key in posta's caches
#   (CPU time per message), and as many TXT lookups of the key through
#   posta's c-ares layer with its DNS cache flushed before each (wall time
#   per round trip) to a dnsmasq started by the script on 127.0.0.1:PORT
#   that publishes both keys; medians, p90s and the ratio verify/DNS.
# tls (on request too): submission over STARTTLS + AUTH PLAIN, which
#   smtp-source cannot do: bench/tls_client.py (N sessions in parallel,
#   each EHLO, STARTTLS, EHLO, AUTH PLAIN, its share of BENCH_MESSAGES
#   (default 2000 in this mode) messages of BENCH_SIZE to user@example.net,
#   QUIT) against a submission service of each server on 127.0.0.1
#   (smtpd_tls_security_level = encrypt, smtpd_sasl_type = dovecot,
#   smtpd_sasl_path = private/auth, smtpd_relay_restrictions =
#   permit_sasl_authenticated, reject; the self-signed certificate
#   mkinstance.sh made, used by both), at BENCH_SESSIONS (default "10 50")
#   sessions. One Dovecot (dovecot -F, auth service only, passwd-file with
#   one test user) started by the script serves both: one unix_listener
#   in each server's private/. Both discard the mail, as in receive.
#   The client's wall time (first connect to last QUIT) gives messages/s.
#
# Both instances live in a temporary folder (own configuration, queue and
# data): Postfix with smtpd on 127.0.0.1 only and the other services as
# in the stock master.cf; posta made by scripts/mkinstance.sh.
# Environment: BENCH_MODE (all), BENCH_MESSAGES (10000; 2000 for tls and
# verify), BENCH_SESSIONS ("1 10 50"), BENCH_REPEAT (2), BENCH_SIZE
# (4096), POSTA_BUILD (./build), BENCH_TMPDIR (/tmp: where both instances
# live; keep it on the disk you want to measure), BENCH_KEEP=1 keeps the
# temporary folder; CC, BENCH_CFLAGS, BENCH_LDFLAGS for building
# bench/dkim_verify_bench.c (verify).
#
# DIAGNOSTICS: exit 1 when an instance does not start or a run fails;
# the logs of the instance are printed then (a relay run that makes no
# progress for stall_wait seconds fails with the queue's state and the
# log's deferrals; a sign run that does not sign every message fails;
# a verify run fails unless every verification passes and every lookup
# finds the key). Every wait is bounded and cleanup stops both
# instances, smtp-sink, Dovecot and dnsmasq, kills what remains by PID
# and removes the test user.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
mode=${BENCH_MODE:-all}
messages=${BENCH_MESSAGES:-10000}
sessions_list=${BENCH_SESSIONS:-1 10 50}
size=${BENCH_SIZE:-4096}
build=${POSTA_BUILD:-$repo/build}
sender=sender@localhost
rcpt=root@localhost
relay_rcpt=user@example.net  # not local: goes to relayhost
start_wait=30      # seconds for an instance to answer
drain_wait=600     # seconds for Postfix to empty its queue between runs
run_timeout=1800   # seconds for one smtp-source run
deliver_wait=1800  # seconds for the last message to reach Maildir/new
stop_wait=30       # seconds for an instance to stop
poll=0.05          # seconds between two looks at Maildir/new or a queue
relay_wait=1800    # seconds for a relay run's queue to empty
stall_wait=120     # seconds a relay run may go without progress
sink_wait=5        # seconds for smtp-sink's counter to catch up
sink_backlog=1000  # listen(2) backlog of smtp-sink

die() {
    echo "bench: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (Postfix needs it to start its daemons)"
for tool in /usr/sbin/smtp-source /usr/sbin/smtp-sink /usr/sbin/postfix /usr/sbin/postconf; do
    [ -x "$tool" ] || die "$tool missing: scripts/deps.sh build bench"
done
[ -x "$build/bin/posta" ] || die "no $build/bin/posta: run make first"
case "$messages" in '' | *[!0-9]*) die "BENCH_MESSAGES must be a number" ;; esac
case "$mode" in
receive | deliver | relay | all) ;;
sign) sessions_list=${BENCH_SESSIONS:-50} ;;
verify)
    messages=${BENCH_MESSAGES:-2000}
    [ -x /usr/sbin/dnsmasq ] || die "/usr/sbin/dnsmasq missing (dnsmasq-base): needed by BENCH_MODE=verify"
    [ -f "$build/libposta.a" ] || die "no $build/libposta.a: run make first"
    ;;
tls)
    sessions_list=${BENCH_SESSIONS:-10 50}
    messages=${BENCH_MESSAGES:-2000}
    [ -x /usr/sbin/dovecot ] || die "/usr/sbin/dovecot missing (dovecot-core): needed by BENCH_MODE=tls"
    [ -x /usr/bin/python3 ] || die "/usr/bin/python3 missing: needed by BENCH_MODE=tls"
    ;;
*) die "BENCH_MODE must be receive, deliver, relay, sign, verify, tls or all" ;;
esac
repeat=${BENCH_REPEAT:-2}
case "$repeat" in '' | *[!0-9]* | 0) die "BENCH_REPEAT must be a positive number" ;; esac
for s in $sessions_list; do
    case "$s" in '' | *[!0-9]*) die "BENCH_SESSIONS must be numbers" ;; esac
done

work=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/posta-bench.XXXXXX")
chmod 0755 "$work"
pf=$work/postfix
po=$work/posta
spool_mounted=no
pf_etc=$pf/etc
pf_queue=$pf/spool

# free_port - a TCP port of 127.0.0.1 nobody listens on now
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# pid_tree ROOT - ROOT and its descendants, from /proc
pid_tree() {
    local root=$1
    [ -n "$root" ] && [ -d "/proc/$root" ] || return 0
    local todo=("$root") pid stat ppid line rest out=()
    declare -A kids=()
    for stat in /proc/[0-9]*/stat; do
        # the command name may contain spaces: take the text after ") "
        { read -r line <"$stat"; } 2>/dev/null || continue
        pid=${stat#/proc/}; pid=${pid%/stat}
        rest=${line##*) }
        read -r _ ppid _ <<<"$rest"
        kids[$ppid]="${kids[$ppid]:-} $pid"
    done
    while [ ${#todo[@]} -gt 0 ]; do
        pid=${todo[0]}
        todo=("${todo[@]:1}")
        out+=("$pid")
        for k in ${kids[$pid]:-}; do todo+=("$k"); done
    done
    echo "${out[@]}"
}

# master_pid FILE - the PID in a master.pid file, or nothing
master_pid() {
    [ -f "$1" ] && tr -dc '0-9' <"$1" || true
}

pf_pids=""
po_pids=""
sink_pid=""
bench_user=""
dovecot_pid=""
dovecot_pids=""
dnsmasq_pid=""
cleanup() {
    set +e
    if [ -n "$dnsmasq_pid" ] && [ -d "/proc/$dnsmasq_pid" ]; then
        kill "$dnsmasq_pid" 2>/dev/null
    fi
    if [ -n "$sink_pid" ] && [ -d "/proc/$sink_pid" ]; then
        kill "$sink_pid" 2>/dev/null
    fi
    if [ -n "$dovecot_pid" ] && [ -d "/proc/$dovecot_pid" ]; then
        dovecot_pids="$dovecot_pids $(pid_tree "$dovecot_pid")"
        kill "$dovecot_pid" 2>/dev/null
    fi
    pf_pids="$pf_pids $(pid_tree "$(master_pid "$pf_queue/pid/master.pid")")"
    po_pids="$po_pids $(pid_tree "$(master_pid "$po/spool/pid/master.pid")")"
    if [ -f "$pf_etc/main.cf" ]; then
        timeout 60 /usr/sbin/postfix -c "$pf_etc" stop >/dev/null 2>&1
    fi
    if [ -f "$po/etc/main.cf" ]; then
        timeout 60 "$build/bin/posta" -c "$po/etc" stop >/dev/null 2>&1
    fi
    sleep 1
    for pid in $pf_pids $po_pids $sink_pid $dovecot_pids $dnsmasq_pid; do
        [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null
    done
    if [ "$spool_mounted" = yes ]; then
        umount "$po/spool" 2>/dev/null || umount -l "$po/spool"
    fi
    if [ -n "$bench_user" ] && id "$bench_user" >/dev/null 2>&1; then
        userdel -r "$bench_user" >/dev/null 2>&1
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "bench: kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_banner PORT - until a connection gets "220", bounded
wait_banner() {
    local port=$1 i
    for ((i = 0; i < start_wait * 10; i++)); do
        if /usr/bin/python3 - "$port" <<'EOF' 2>/dev/null; then
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
ok = s.recv(512).startswith(b"220")
s.sendall(b"QUIT\r\n")
sys.exit(0 if ok else 1)
EOF
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# ---- Postfix instance -----------------------------------------------------
pf_port=$(free_port)
mkdir -p "$pf_etc" "$pf_queue" "$pf/data"
chown postfix "$pf/data"
cat >"$pf/main.cf.base" <<EOF
# Postfix instance of the posta benchmark.
compatibility_level = 3.6
config_directory = $pf_etc
queue_directory = $pf_queue
data_directory = $pf/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-bench
maillog_file = $pf/maillog
maillog_file_prefixes = $pf
myhostname = localhost
mydomain = localdomain
myorigin = localhost
mydestination = localhost
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
alias_maps =
alias_database =
local_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
EOF
# master.cf: the stock one, with smtpd on 127.0.0.1:PORT only, no chroot
# (the private queue has no chroot files) and without the pipe(8) examples.
awk -v listen="127.0.0.1:$pf_port" '
    /^#/ || /^[ \t]*$/ { next }
    /^[ \t]/ { if (!skip) print; next }
    {
        skip = ($8 == "pipe")
        if (skip) next
        if ($1 == "smtp" && $2 == "inet") $1 = listen
        $5 = "n"
        print
    }' /etc/postfix/master.cf >"$pf_etc/master.cf"

# pf_start MODE - write main.cf for MODE (receive: discard; deliver: local
# into Maildir; relay: smtp to the sink), start Postfix, wait for its banner
pf_start() {
    {
        cat "$pf/main.cf.base"
        case "$1" in
        deliver)
            echo "default_transport = discard"
            echo "relay_transport = discard"
            echo "local_transport = local"
            echo "home_mailbox = Maildir/"
            ;;
        relay)
            echo "relayhost = [127.0.0.1]:$sink_port"
            echo "local_transport = discard"
            ;;
        *)
            echo "default_transport = discard"
            echo "relay_transport = discard"
            echo "local_transport = discard"
            ;;
        esac
        [ -n "${pf_extra:-}" ] && echo "$pf_extra"
    } >"$pf_etc/main.cf"
    /usr/sbin/postfix -c "$pf_etc" check >"$work/postfix-check.log" 2>&1 ||
        { cat "$work/postfix-check.log" >&2; die "postfix check failed"; }
    /usr/sbin/postfix -c "$pf_etc" start >"$work/postfix-start.log" 2>&1 ||
        { cat "$work/postfix-start.log" "$pf/maillog" >&2 2>/dev/null; die "postfix start failed"; }
    wait_banner "$pf_port" || { cat "$pf/maillog" >&2; die "Postfix does not answer on $pf_port"; }
    pf_pids="$pf_pids $(pid_tree "$(master_pid "$pf_queue/pid/master.pid")")"
}

# ---- posta instance -------------------------------------------------------
po_port=$(free_port)
"$repo/scripts/mkinstance.sh" "$po" "$po_port" "$build" >/dev/null
touch "$po/maillog"
chmod 0666 "$po/maillog"
sed -i "s|^maillog_file *=.*|maillog_file = $po/maillog|" "$po/etc/main.cf"
cp "$po/etc/main.cf" "$po/main.cf.base"
# A posta built without qmgr and local cannot deliver: keep it receiving
# only (its master.cf then must not name the missing programs).
po_delivers=no
if [ -x "$build/libexec/qmgr" ] && [ -x "$build/libexec/local" ]; then
    po_delivers=yes
    grep -q '^qmgr[[:space:]]' "$po/etc/master.cf" ||
        echo "qmgr                unix  n       -       n       300     1       qmgr" >>"$po/etc/master.cf"
    grep -q '^local[[:space:]]' "$po/etc/master.cf" ||
        echo "local               unix  -       n       n       -       -       local" >>"$po/etc/master.cf"
else
    sed -i '/^\(qmgr\|local\|pickup\|smtp\|relay\|lmtp\)[[:space:]]/d' "$po/etc/master.cf"
fi
# The relay table needs posta's smtp client as well (mkinstance.sh adds its
# smtp and relay services when it is built).
po_relays=no
if [ "$po_delivers" = yes ] && [ -x "$build/libexec/smtp" ]; then
    po_relays=yes
    grep -q '^smtp[[:space:]]\+unix' "$po/etc/master.cf" ||
        echo "smtp                unix  -       -       n       -       -       smtp" >>"$po/etc/master.cf"
    grep -q '^relay[[:space:]]' "$po/etc/master.cf" ||
        echo "relay               unix  -       -       n       -       -       smtp" >>"$po/etc/master.cf"
fi

# po_start MODE - main.cf for MODE (receive: discard when posta has a
# qmgr; deliver: local into Maildir; relay: smtp to the sink), start
# posta, wait for its banner
po_start() {
    {
        cat "$po/main.cf.base"
        if [ "$1" = deliver ]; then
            echo "home_mailbox = Maildir/"
        elif [ "$1" = relay ]; then
            echo "relayhost = [127.0.0.1]:$sink_port"
            echo "local_transport = discard"
        elif [ "$po_delivers" = yes ]; then
            echo "local_transport = discard"
            echo "default_transport = discard"
            echo "relay_transport = discard"
        fi
        [ -n "${po_extra:-}" ] && echo "$po_extra"
    } >"$po/etc/main.cf"
    "$build/bin/posta" -c "$po/etc" start >"$work/posta-start.log" 2>&1 ||
        { cat "$work/posta-start.log" "$po/maillog" >&2; die "posta start failed"; }
    wait_banner "$po_port" || { cat "$po/maillog" >&2; die "posta does not answer on $po_port"; }
    po_pids="$po_pids $(pid_tree "$(master_pid "$po/spool/pid/master.pid")")"
}

# stop_instance NAME PIDFILE CMD... - CMD stop, bounded wait, kill -9 leftovers
stop_instance() {
    local name=$1 pidfile=$2 i pids
    shift 2
    pids=$(pid_tree "$(master_pid "$pidfile")")
    timeout "$stop_wait" "$@" stop >/dev/null 2>&1 || echo "bench: $name stop failed" >&2
    for ((i = 0; i < stop_wait * 10; i++)); do
        local left=""
        for pid in $pids; do [ -d "/proc/$pid" ] && left="$left $pid"; done
        [ -z "$left" ] && return 0
        sleep 0.1
    done
    for pid in $pids; do [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null; done
    return 0
}
pf_stop() { stop_instance Postfix "$pf_queue/pid/master.pid" /usr/sbin/postfix -c "$pf_etc"; }
po_stop() { stop_instance posta "$po/spool/pid/master.pid" "$build/bin/posta" -c "$po/etc"; }

# pf_queue_count - messages still in Postfix's queue
pf_queue_count() {
    find "$pf_queue/incoming" "$pf_queue/active" "$pf_queue/deferred" \
        "$pf_queue/maildrop" -type f 2>/dev/null | wc -l
}

# po_queue_count - messages still in posta's queue
po_queue_count() {
    find "$po/spool/incoming" "$po/spool/active" "$po/spool/deferred" \
        -type f 2>/dev/null | wc -l
}

# drain NAME COUNTER - wait (bounded) until COUNTER says the queue is empty
drain() {
    local name=$1 counter=$2 i
    for ((i = 0; i < drain_wait * 10; i++)); do
        [ "$($counter)" -eq 0 ] && return 0
        sleep 0.1
    done
    echo "bench: warning: $name queue not empty after ${drain_wait}s" >&2
}

# po_clear - empty posta's incoming/ (a posta without qmgr only)
po_clear() {
    find "$po/spool/incoming" -type f -delete 2>/dev/null || true
}

# source_run PORT SESSIONS RCPT LOG - run smtp-source (bounded)
source_run() {
    timeout "$run_timeout" /usr/sbin/smtp-source -s "$2" -m "$messages" \
        -l "$size" -f "$sender" -t "$3" "127.0.0.1:$1" >"$4" 2>&1 ||
        { cat "$4" >&2; return 1; }
}

# rate NS - messages/s for $messages messages in NS nanoseconds
rate() {
    awk -v n="$messages" -v ns="$1" 'BEGIN { printf "%.0f\n", n / (ns / 1e9) }'
}

# receive_run PORT SESSIONS - messages/s of one smtp-source run (stdout)
receive_run() {
    local t0 t1
    t0=$(date +%s%N)
    source_run "$1" "$2" "$rcpt" "$work/source-$1-$2.log" || return 1
    t1=$(date +%s%N)
    rate $((t1 - t0))
}

# count_new DIR - files in DIR (a Maildir's new/)
count_new() {
    find "$1" -maxdepth 1 -type f -printf . 2>/dev/null | wc -c
}

# deliver_run PORT SESSIONS - messages/s until all are in Maildir/new (stdout)
deliver_run() {
    local port=$1 sessions=$2 t0 t1 n=0 deadline
    t0=$(date +%s%N)
    source_run "$port" "$sessions" "$bench_user@localhost" \
        "$work/deliver-$port-$sessions.log" || return 1
    deadline=$(($(date +%s) + deliver_wait))
    while :; do
        n=$(count_new "$maildir/new")
        [ "$n" -ge "$messages" ] && break
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "bench: only $n of $messages messages delivered after ${deliver_wait}s" >&2
            return 1
        fi
        sleep "$poll"
    done
    t1=$(date +%s%N)
    [ "$n" -eq "$messages" ] ||
        echo "bench: warning: $n files in Maildir/new for $messages messages" >&2
    rate $((t1 - t0))
}

# clear_maildir - empty the test user's Maildir (not timed)
clear_maildir() {
    find "$maildir/new" "$maildir/cur" "$maildir/tmp" -type f -delete 2>/dev/null || true
}

# ---- relay: smtp-sink as the relayhost --------------------------------------
sink_out=$work/smtp-sink.out

# sink_start - start smtp-sink on 127.0.0.1:$sink_port, counting (-c) into
# $sink_out, and wait for its banner
sink_start() {
    sink_port=$(free_port)
    : >"$sink_out"
    /usr/sbin/smtp-sink -c -u nobody "127.0.0.1:$sink_port" "$sink_backlog" \
        >"$sink_out" 2>&1 &
    sink_pid=$!
    wait_banner "$sink_port" || { cat "$sink_out" >&2; die "smtp-sink does not answer on $sink_port"; }
}

# sink_count - messages smtp-sink has received so far (its last complete
# "sess=N quit=N mesg=N" counter line; each ends with a carriage return)
sink_count() {
    local tail_text line
    tail_text=$(tail -c 512 "$sink_out" 2>/dev/null) || true
    tail_text=${tail_text%$'\r'*}
    line=${tail_text##*$'\r'}
    case "$line" in
    *mesg=[0-9]*) line=${line##*mesg=}; echo "${line%%[!0-9]*}" ;;
    *) echo 0 ;;
    esac
}

# sink_check BEFORE - fail unless smtp-sink got exactly $messages messages
# since its counter said BEFORE (waits up to sink_wait s for the counter)
sink_check() {
    local before=$1 got i
    for ((i = 0; i <= sink_wait * 10; i++)); do
        got=$(($(sink_count) - before))
        [ "$got" -ge "$messages" ] && break
        sleep 0.1
    done
    [ "$got" -eq "$messages" ] && return 0
    echo "bench: smtp-sink received $got messages, not $messages" >&2
    return 1
}

# queue_state DIR NAME... - "NAME=COUNT" for each queue folder NAME of DIR
queue_state() {
    local dir=$1 q state=""
    shift
    for q in "$@"; do
        state="$state $q=$(find "$dir/$q" -type f 2>/dev/null | wc -l)"
    done
    echo "${state# }"
}

# queue_wait COUNTER - poll (every $poll s) until COUNTER says the queue
# is empty; fails when it makes no progress for stall_wait s or is not
# empty after relay_wait s
queue_wait() {
    local counter=$1 n last=-1 last_change deadline now
    deadline=$(($(date +%s) + relay_wait))
    last_change=$(date +%s)
    while :; do
        n=$($counter)
        [ "$n" -eq 0 ] && return 0
        now=$(date +%s)
        if [ "$n" -ne "$last" ]; then
            last=$n
            last_change=$now
        elif [ $((now - last_change)) -ge "$stall_wait" ]; then
            echo "bench: $n messages stuck in the queue for ${stall_wait}s" >&2
            return 1
        fi
        if [ "$now" -ge "$deadline" ]; then
            echo "bench: $n messages still queued after ${relay_wait}s" >&2
            return 1
        fi
        sleep "$poll"
    done
}

# relay_run PORT SESSIONS COUNTER - messages/s from the start of smtp-source
# until COUNTER says the queue is empty; fails on a stalled queue, after
# relay_wait s, or when smtp-sink did not count exactly $messages (stdout)
relay_run() {
    local port=$1 sessions=$2 counter=$3 before t0 t1
    before=$(sink_count)
    t0=$(date +%s%N)
    source_run "$port" "$sessions" "$relay_rcpt" "$work/relay-$port-$sessions.log" || return 1
    queue_wait "$counter" || {
        echo "bench: smtp-sink got $(($(sink_count) - before)) of $messages" >&2
        return 1
    }
    t1=$(date +%s%N)
    sink_check "$before" || return 1
    rate $((t1 - t0))
}

# sink_run SESSIONS - messages/s of smtp-source straight into smtp-sink
sink_run() {
    local before t0 t1
    before=$(sink_count)
    t0=$(date +%s%N)
    source_run "$sink_port" "$1" "$relay_rcpt" "$work/sink-$1.log" || return 1
    t1=$(date +%s%N)
    sink_check "$before" || return 1
    rate $((t1 - t0))
}

# relay_failed NAME DIR LOG QUEUES... - print why a relay run failed, exit 1
relay_failed() {
    local name=$1 dir=$2 log=$3
    shift 3
    echo "bench: $name queue: $(queue_state "$dir" "$@")" >&2
    echo "bench: $name log, first deferrals:" >&2
    grep -m 5 'status=\(deferred\|bounced\)\|warning\|fatal\|panic' "$log" >&2 || true
    echo "bench: $name log, last lines:" >&2
    tail -n 20 "$log" >&2
    die "$name relay run with $sessions sessions failed"
}

# print_table TITLE RESULT... - "sessions postfix posta ratio" rows; a
# posta figure "-" (not measured) prints "-" for posta and the ratio
print_table() {
    local title=$1 r
    shift
    echo
    echo "$title"
    printf '%-10s %14s %14s %14s\n' sessions "postfix msg/s" "posta msg/s" "posta/postfix"
    for r in "$@"; do
        set -- $r
        awk -v s="$1" -v a="$2" -v b="$3" 'BEGIN {
            if (b == "-")
                printf "%-10s %14d %14s %14s\n", s, a, "-", "-"
            else
                printf "%-10s %14d %14d %14.2f\n", s, a, b, (a > 0 ? b / a : 0) }'
    done
}

case "$mode" in
tls) load_client=bench/tls_client.py ;;
verify) load_client=bench/dkim_verify_bench.c ;;
*) load_client=smtp-source ;;
esac
echo "posta benchmark: $messages messages of $size bytes per run ($load_client)"
echo "Postfix $(/usr/sbin/postconf -h mail_version) on 127.0.0.1:$pf_port"
echo "posta $("$build/bin/posta" -c "$po/etc" conf mail_version 2>/dev/null | sed "s/^.*= *//" ||
    echo '?') on 127.0.0.1:$po_port"
echo "machine: $(nproc) CPUs, $(uname -r)"

receive_results=()
deliver_results=()
relay_results=()
sink_results=()

# ---- receive: accept, fsync, discard ---------------------------------------
if [ "$mode" = receive ] || [ "$mode" = all ]; then
    pf_start receive
    po_start receive
    for sessions in $sessions_list; do
        drain Postfix pf_queue_count
        pf_rate=$(receive_run "$pf_port" "$sessions") || die "Postfix run with $sessions sessions failed"
        if [ "$po_delivers" = yes ]; then
            drain posta po_queue_count
        else
            po_clear
        fi
        po_rate=$(receive_run "$po_port" "$sessions") || {
            tail -n 20 "$po/maillog" >&2
            die "posta run with $sessions sessions failed"
        }
        if [ "$po_delivers" = no ]; then
            queued=$(find "$po/spool/incoming" -type f | wc -l)
            [ "$queued" -eq "$messages" ] ||
                echo "bench: warning: posta queued $queued of $messages messages" >&2
            po_clear
        fi
        receive_results+=("$sessions $pf_rate $po_rate")
        echo "  receive, $sessions sessions: Postfix $pf_rate msg/s, posta $po_rate msg/s" >&2
    done
    drain Postfix pf_queue_count
    [ "$po_delivers" = yes ] && drain posta po_queue_count
    pf_stop
    po_stop
fi

# ---- deliver: accept, fsync, local delivery into one Maildir ---------------
if [ "$mode" = deliver ] && [ "$po_delivers" = no ]; then
    die "this posta has no qmgr and local: no delivery benchmark"
fi
if [ "$mode" = all ] && [ "$po_delivers" = no ]; then
    echo "bench: this posta has no qmgr and local: delivery table skipped" >&2
elif [ "$mode" = deliver ] || [ "$mode" = all ]; then
    bench_user=ptbench$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
    useradd -m -d "$work/home" -s /bin/sh -U "$bench_user" ||
        die "useradd $bench_user failed"
    maildir=$work/home/Maildir
    # the Maildir exists before the first run, owned by the user, so that
    # neither server pays for creating it in a timed run
    install -d -o "$bench_user" -g "$bench_user" -m 0700 \
        "$maildir" "$maildir/new" "$maildir/cur" "$maildir/tmp"
    pf_start deliver
    po_start deliver
    for sessions in $sessions_list; do
        drain Postfix pf_queue_count
        clear_maildir
        pf_rate=$(deliver_run "$pf_port" "$sessions") || {
            tail -n 20 "$pf/maillog" >&2
            die "Postfix delivery run with $sessions sessions failed"
        }
        drain Postfix pf_queue_count
        drain posta po_queue_count
        clear_maildir
        po_rate=$(deliver_run "$po_port" "$sessions") || {
            tail -n 20 "$po/maillog" >&2
            die "posta delivery run with $sessions sessions failed"
        }
        drain posta po_queue_count
        clear_maildir
        deliver_results+=("$sessions $pf_rate $po_rate")
        echo "  deliver, $sessions sessions: Postfix $pf_rate msg/s, posta $po_rate msg/s" >&2
    done
    pf_stop
    po_stop
fi

# ---- relay: accept, fsync, smtp client to relayhost = smtp-sink -----------
if [ "$mode" = relay ] || [ "$mode" = all ]; then
    [ "$po_relays" = yes ] ||
        echo "bench: this posta has no smtp client: relay table without posta" >&2
    sink_start
    pf_start relay
    [ "$po_relays" = yes ] && po_start relay
    for sessions in $sessions_list; do
        sink_rate=$(sink_run "$sessions") || die "smtp-sink run with $sessions sessions failed"
        drain Postfix pf_queue_count
        pf_rate=$(relay_run "$pf_port" "$sessions" pf_queue_count) ||
            relay_failed Postfix "$pf_queue" "$pf/maillog" incoming active deferred maildrop
        po_rate=-
        if [ "$po_relays" = yes ]; then
            drain posta po_queue_count
            po_rate=$(relay_run "$po_port" "$sessions" po_queue_count) ||
                relay_failed posta "$po/spool" "$po/maillog" incoming active deferred
        fi
        relay_results+=("$sessions $pf_rate $po_rate")
        sink_results+=("$sessions $sink_rate")
        echo "  relay, $sessions sessions: Postfix $pf_rate msg/s, posta $po_rate msg/s," \
            "smtp-sink alone $sink_rate msg/s" >&2
    done
    pf_stop
    [ "$po_relays" = yes ] && po_stop
fi

# ---- sign: posta's receive run with and without DKIM signing -----------------
clk_tck=$(getconf CLK_TCK)

# tree_cpu ROOT - CPU clock ticks (user + system) that ROOT's process tree
# has used so far, one "NAME TICKS" line per program name (the live
# processes' own time) and "reaped TICKS" (what the processes of the tree
# have collected from children they reaped: cutime, cstime), from
# /proc/PID/stat
tree_cpu() {
    local pid line rest name f
    declare -A by=([reaped]=0)
    for pid in $(pid_tree "$1"); do
        { read -r line <"/proc/$pid/stat"; } 2>/dev/null || continue
        # "PID (NAME) state ppid ... utime stime cutime cstime ..."
        name=${line#*\(}
        name=${name%)*}
        name=${name//[[:space:]]/_}
        rest=${line##*) }
        read -r -a f <<<"$rest"
        by[$name]=$((${by[$name]:-0} + f[11] + f[12]))
        by[reaped]=$((by[reaped] + f[13] + f[14]))
    done
    for name in "${!by[@]}"; do echo "$name ${by[$name]}"; done
}

# cpu_delta BEFORE AFTER - "TOTAL NAME=TICKS..." between two tree_cpu outputs
cpu_delta() {
    awk 'FNR == NR { before[$1] = $2; next }
         { d = $2 - before[$1]; total += d; if (d != 0) parts = parts " " $1 "=" d }
         END { print total + 0 parts }' <(echo "$1") <(echo "$2")
}

# signed_count - messages the maillog says were signed
signed_count() {
    grep -c "DKIM-Signature added" "$po/maillog" 2>/dev/null || true
}

# sign_run SESSIONS VARIANT - one run: "ACCEPT DRAINED CPU" (stdout):
# messages/s of the smtp-source run, messages/s from its start until the
# queue is empty ("-" for a posta without qmgr), and microseconds of
# posta's CPU per message over that span (the split by program, in clock
# ticks, goes to stderr); fails unless every message of a signing variant
# was signed (the log may lag the queue by up to sink_wait s)
sign_run() {
    local sessions=$1 variant=$2 root t0 t1 c0 c1 delta drained=- i n
    root=$(master_pid "$po/spool/pid/master.pid")
    [ -n "$root" ] || { echo "bench: no posta master.pid" >&2; return 1; }
    c0=$(tree_cpu "$root")
    t0=$(date +%s%N)
    source_run "$po_port" "$sessions" "$rcpt" "$work/sign-$sessions.log" || return 1
    t1=$(date +%s%N)
    if [ "$po_delivers" = yes ]; then
        queue_wait po_queue_count || return 1
        drained=$(rate $(($(date +%s%N) - t0)))
    fi
    c1=$(tree_cpu "$root")
    if [ "$variant" != none ]; then
        for ((i = 0; i <= sink_wait * 10; i++)); do
            n=$(signed_count)
            [ "$n" -ge "$messages" ] && break
            sleep 0.1
        done
        [ "$n" -ge "$messages" ] || {
            echo "bench: posta signed $n messages, expected at least $messages ($variant)" >&2
            return 1
        }
    fi
    delta=$(cpu_delta "$c0" "$c1")
    echo "  sign, $sessions sessions, $variant: CPU ticks of $clk_tck/s: $delta" >&2
    echo "$(rate $((t1 - t0))) $drained" \
        "$(awk -v t="${delta%% *}" -v hz="$clk_tck" -v n="$messages" \
            'BEGIN { printf "%.0f", t * 1e6 / hz / n }')"
}

# fresh_spool - posta's queue on a new ext4 file system (no journal, as
# the machine's disk), in an image file under $work, mounted over
# $po/spool; master makes the queue folders when it starts. ext4 skips
# inodes freed in the last minute or more when it allocates new ones
# (recently_deleted), so a run that follows one that deleted thousands of
# queue files pays several times the kernel time per file: without a
# fresh file system, the order of the runs decides the table.
fresh_spool() {
    if [ "$spool_mounted" = yes ]; then
        umount "$po/spool" || die "cannot unmount $po/spool"
        spool_mounted=no
    fi
    rm -f "$work/spool.img"
    truncate -s "$spool_image_size" "$work/spool.img"
    mkfs.ext4 -q -F -O ^has_journal "$work/spool.img" || die "mkfs.ext4 failed"
    mount -o loop "$work/spool.img" "$po/spool" || die "cannot mount the spool image"
    spool_mounted=yes
}

sign_results=()
if [ "$mode" = sign ]; then
    fresh=${BENCH_FRESH_SPOOL:-1}
    spool_image_size=2G
    if [ "$fresh" = 1 ] && ! command -v mkfs.ext4 >/dev/null; then
        echo "bench: no mkfs.ext4: runs share one spool (BENCH_FRESH_SPOOL=0)" >&2
        fresh=0
    fi
    [ "$po_delivers" = yes ] || echo "bench: posta without qmgr: incoming/ emptied between runs" >&2
    keys=$work/dkim
    mkdir -p "$keys"
    "$build/bin/posta" dkim keygen localhost rsa --type rsa --bits 2048 --dir "$keys" >/dev/null ||
        die "posta dkim keygen (rsa) failed"
    "$build/bin/posta" dkim keygen localhost ed --type ed25519 --dir "$keys" >/dev/null ||
        die "posta dkim keygen (ed25519) failed"
    echo "localhost rsa:$keys/localhost.rsa.key" >"$work/sign-rsa"
    echo "localhost ed:$keys/localhost.ed.key" >"$work/sign-ed25519"
    for sessions in $sessions_list; do
        # best of the repeats, per figure: highest rates, lowest CPU
        declare -A acc=() drn=() cpu=()
        # the configurations take turns, so that a slow spell of the
        # machine does not fall on one of them only
        for ((i = 0; i < repeat; i++)); do
            for variant in none rsa ed25519; do
                po_extra=""
                [ "$variant" != none ] && po_extra="dkim_signing_table = texthash:$work/sign-$variant"
                [ "$fresh" = 1 ] && fresh_spool
                po_start receive
                if [ "$po_delivers" = yes ]; then drain posta po_queue_count; else po_clear; fi
                run_out=$(sign_run "$sessions" "$variant") || {
                    tail -n 20 "$po/maillog" >&2
                    die "posta sign run ($variant, $sessions sessions) failed"
                }
                read -r r d c <<<"$run_out"
                [ "$po_delivers" = yes ] || po_clear
                po_stop
                : >"$po/maillog"
                [ "$r" -gt "${acc[$variant]:-0}" ] && acc[$variant]=$r
                [ "$d" != - ] && [ "$d" -gt "${drn[$variant]:-0}" ] && drn[$variant]=$d
                [ -z "${cpu[$variant]:-}" ] || [ "$c" -lt "${cpu[$variant]}" ] && cpu[$variant]=$c
                echo "  sign, $sessions sessions, $variant: accept $r msg/s, drained $d msg/s," \
                    "$c us CPU/msg" >&2
            done
        done
        for variant in none rsa ed25519; do
            sign_results+=("$sessions $variant ${acc[$variant]} ${drn[$variant]:--} ${cpu[$variant]}")
        done
        unset acc drn cpu
    done
fi

# ---- verify: posta's DKIM verifier with cached keys, and a DNS round trip ----
verify_out=""
verify_ref=""
dnsmasq_wait=10  # seconds for dnsmasq to answer

# free_udp_port - a port of 127.0.0.1 free for both UDP and TCP (DNS uses both)
free_udp_port() {
    /usr/bin/python3 -c '
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break'
}

# txt_record_arg SELECTOR DOMAIN KEYGEN_OUTPUT - dnsmasq's --txt-record for
# the record `posta dkim keygen` printed (its quoted strings, in order)
txt_record_arg() {
    local strs
    strs=$(grep -o '"[^"]*"' "$3" | tr -d '"' | paste -sd, -)
    [ -n "$strs" ] || return 1
    echo "--txt-record=$1._domainkey.$2,$strs"
}

# verify_message FILE - a message from sender@bench.example with a body of
# BENCH_SIZE bytes (text lines of 72 characters)
verify_message() {
    {
        printf 'From: Bench Sender <sender@bench.example>\n'
        printf 'To: <root@localhost>\n'
        printf 'Subject: posta DKIM verification benchmark\n'
        printf 'Date: %s\n' "$(date -R)"
        printf 'Message-ID: <verify.%s@bench.example>\n' "$(date +%s)"
        printf 'MIME-Version: 1.0\n'
        printf 'Content-Type: text/plain; charset=us-ascii\n'
        printf '\n'
        awk -v size="$size" 'BEGIN {
            line = "The quick brown fox jumps over the lazy dog; the dog does not mind."
            while (n + length(line) + 1 <= size) { print line; n += length(line) + 1 }
            if (size - n > 1) { s = ""; while (length(s) < size - n - 1) s = s "x"; print s }
        }'
    } >"$1"
}

# openssl_verify_us - "rsa2048 US ed25519 US": the signature check alone,
# from `openssl speed` (1 s each), for reference
openssl_verify_us() {
    command -v openssl >/dev/null || return 1
    openssl speed -seconds 1 rsa2048 ed25519 2>/dev/null | awk '
        /^rsa 2048 bits/ { rsa = 1e6 / $NF }
        /Ed25519/ && $NF ~ /^[0-9.]+$/ { ed = 1e6 / $NF }
        END { printf "%.1f %.1f\n", rsa, ed }'
}

if [ "$mode" = verify ]; then
    vdir=$work/verify
    mkdir -p "$vdir"
    vtool=$vdir/dkim_verify_bench
    pkgs=$(sed -n 's/^PKGS *:= *//p' "$repo/Makefile")
    # shellcheck disable=SC2046,SC2086
    ${CC:-cc} -std=c17 -O2 -g -I"$repo/src" -I"$build/gen" $(pkg-config --cflags $pkgs) \
        ${BENCH_CFLAGS:-} -o "$vtool" "$repo/bench/dkim_verify_bench.c" "$build/libposta.a" \
        $(pkg-config --libs $pkgs) -ldb ${BENCH_LDFLAGS:-} ||
        die "cannot build bench/dkim_verify_bench.c against $build/libposta.a"
    vdomain=bench.example
    verify_message "$vdir/message"
    for sel in rsa ed; do
        if [ "$sel" = rsa ]; then ktype=(--type rsa --bits 2048); else ktype=(--type ed25519); fi
        "$build/bin/posta" dkim keygen "$vdomain" "$sel" "${ktype[@]}" --dir "$vdir" \
            >"$vdir/$sel.record" || die "posta dkim keygen ($sel) failed"
        "$build/bin/posta" dkim sign --key "$vdir/$vdomain.$sel.key" --domain "$vdomain" \
            --selector "$sel" --canon relaxed/relaxed <"$vdir/message" >"$vdir/signed-$sel" ||
            die "posta dkim sign ($sel) failed"
    done
    dns_port=$(free_udp_port)
    # --local-ttl: the TXT answers carry a TTL, so posta's DNS cache keeps them
    /usr/sbin/dnsmasq -k -p "$dns_port" --listen-address=127.0.0.1 --bind-interfaces \
        --no-resolv --no-hosts --pid-file= --local-ttl=300 --log-facility=- \
        "$(txt_record_arg rsa "$vdomain" "$vdir/rsa.record")" \
        "$(txt_record_arg ed "$vdomain" "$vdir/ed.record")" \
        </dev/null >"$vdir/dnsmasq.log" 2>&1 &
    dnsmasq_pid=$!
    # ready when posta's own verifier finds the key there
    for ((i = 0; i < dnsmasq_wait * 10; i++)); do
        [ -d "/proc/$dnsmasq_pid" ] || break
        "$build/bin/posta" dkim verify --dns-servers "127.0.0.1:$dns_port" \
            <"$vdir/signed-rsa" >/dev/null 2>&1 && break
        sleep 0.1
    done
    "$build/bin/posta" dkim verify --dns-servers "127.0.0.1:$dns_port" <"$vdir/signed-rsa" \
        >/dev/null 2>&1 || { cat "$vdir/dnsmasq.log" >&2; die "dnsmasq on 127.0.0.1:$dns_port does not serve the key"; }
    echo "verify: dnsmasq on 127.0.0.1:$dns_port, $messages verifications and lookups each"
    verify_out=$(timeout "$run_timeout" "$vtool" --dns-server "127.0.0.1:$dns_port" \
        --count "$messages" "$vdir/signed-rsa" "$vdir/signed-ed") ||
        { cat "$vdir/dnsmasq.log" >&2; die "dkim_verify_bench failed"; }
    kill "$dnsmasq_pid" 2>/dev/null || true
    wait "$dnsmasq_pid" 2>/dev/null || true
    dnsmasq_pid=""
    verify_ref=$(openssl_verify_us) || verify_ref=""
fi

# ---- tls: submission over STARTTLS + AUTH PLAIN (bench/tls_client.py) -------
tls_results=()
tls_user=bench
dovecot_dir=$work/dovecot
dovecot_wait=20  # seconds for Dovecot's auth sockets to answer

# dovecot_start - one Dovecot serving only its auth service, with one
# unix_listener in Postfix's and one in posta's private/ (both made
# here, before either server starts); waits (bounded) until both answer
dovecot_start() {
    local i
    mkdir -p "$dovecot_dir/run" "$dovecot_dir/state"
    chmod 0755 "$dovecot_dir" "$dovecot_dir/run" "$dovecot_dir/state"
    touch "$dovecot_dir/dovecot.log"
    chmod 0666 "$dovecot_dir/dovecot.log"
    tls_password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    echo "$tls_user:{PLAIN}$tls_password" >"$dovecot_dir/passwd"
    chmod 0644 "$dovecot_dir/passwd"   # the auth process runs as "dovecot"
    install -d -o postfix -g postfix -m 0700 "$pf_queue/private"
    install -d -o "$(stat -c %u "$po/data")" -g "$(stat -c %g "$po/data")" -m 0700 \
        "$po/spool/private"
    cat >"$dovecot_dir/dovecot.conf" <<EOF
# dovecot.conf of the posta benchmark: the auth service only
protocols =
listen = 127.0.0.1
base_dir = $dovecot_dir/run
state_dir = $dovecot_dir/state
log_path = $dovecot_dir/dovecot.log
info_log_path = $dovecot_dir/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dovecot_dir/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$dovecot_dir
}
service auth {
  unix_listener $pf_queue/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
  unix_listener $po/spool/private/auth {
    mode = 0666
  }
}
EOF
    /usr/sbin/dovecot -F -c "$dovecot_dir/dovecot.conf" >"$dovecot_dir/dovecot.out" 2>&1 </dev/null &
    dovecot_pid=$!
    for ((i = 0; i < dovecot_wait * 10; i++)); do
        [ -d "/proc/$dovecot_pid" ] || break
        if /usr/bin/python3 - "$pf_queue/private/auth" "$po/spool/private/auth" <<'EOF' 2>/dev/null; then
import socket, sys
for path in sys.argv[1:]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(path)
        if not s.recv(256).startswith(b"VERSION"):
            sys.exit(1)
EOF
            dovecot_pids="$dovecot_pids $(pid_tree "$dovecot_pid")"
            return 0
        fi
        sleep 0.1
    done
    cat "$dovecot_dir/dovecot.out" "$dovecot_dir/dovecot.log" >&2
    die "Dovecot's auth sockets do not answer"
}

# dovecot_stop - SIGTERM Dovecot, bounded wait, kill -9 what is left
dovecot_stop() {
    local i pids left
    [ -n "$dovecot_pid" ] || return 0
    pids="$dovecot_pids $(pid_tree "$dovecot_pid")"
    kill "$dovecot_pid" 2>/dev/null || true
    for ((i = 0; i < stop_wait * 10; i++)); do
        left=""
        for pid in $pids; do [ -d "/proc/$pid" ] && left="$left $pid"; done
        [ -z "$left" ] && break
        sleep 0.1
    done
    for pid in $pids; do [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null; done
    wait "$dovecot_pid" 2>/dev/null || true
    dovecot_pid=""
    dovecot_pids=""
}

# submission_stanza LISTEN - a master.cf submission service on LISTEN: the
# course's 587 stanza, relaying for authenticated clients only
submission_stanza() {
    cat <<EOF
$1 inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=private/auth
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
EOF
}

# sasl_count LOG - messages LOG says were submitted by the test user
sasl_count() {
    grep -c "sasl_username=$tls_user\$" "$1" 2>/dev/null || true
}

# tls_run PORT SESSIONS LOG - messages/s of one tls_client.py run (stdout),
# then (bounded) until LOG names the test user for every message
tls_run() {
    local port=$1 sessions=$2 log=$3 before out i n
    before=$(sasl_count "$log")
    out=$(timeout "$run_timeout" /usr/bin/python3 "$repo/bench/tls_client.py" \
        --port "$port" --sessions "$sessions" --messages "$messages" --size "$size" \
        --user "$tls_user" --password "$tls_password" --from "$tls_user@localhost" \
        --to "$relay_rcpt" --run-timeout "$run_timeout" 2>"$work/tls-$port-$sessions.err") ||
        { cat "$work/tls-$port-$sessions.err" >&2; return 1; }
    for ((i = 0; i <= sink_wait * 10; i++)); do
        n=$(($(sasl_count "$log") - before))
        [ "$n" -ge "$messages" ] && break
        sleep 0.1
    done
    [ "$n" -eq "$messages" ] ||
        echo "bench: warning: $log names $tls_user for $n of $messages messages" >&2
    echo "  tls_client.py, port $port, $sessions sessions: $out" >&2
    out=${out##*rate=}
    echo "${out%%[!0-9]*}"
}

if [ "$mode" = tls ]; then
    [ "$po_delivers" = yes ] || echo "bench: posta without qmgr: incoming/ emptied between runs" >&2
    pf_sub_port=$(free_port)
    po_sub_port=$(free_port)
    [ "$pf_sub_port" != "$po_sub_port" ] || po_sub_port=$(free_port)
    submission_stanza "127.0.0.1:$pf_sub_port" >>"$pf_etc/master.cf"
    submission_stanza "127.0.0.1:$po_sub_port" >>"$po/etc/master.cf"
    # the same self-signed pair (made by mkinstance.sh with openssl) for both
    pf_extra="smtpd_tls_cert_file = $po/etc/tls/cert.pem
smtpd_tls_key_file = $po/etc/tls/key.pem"
    dovecot_start
    pf_start receive
    wait_banner "$pf_sub_port" || { cat "$pf/maillog" >&2; die "Postfix submission does not answer on $pf_sub_port"; }
    po_start receive
    wait_banner "$po_sub_port" || { cat "$po/maillog" >&2; die "posta submission does not answer on $po_sub_port"; }
    echo "tls: Postfix submission on 127.0.0.1:$pf_sub_port, posta on 127.0.0.1:$po_sub_port," \
        "$messages messages per run (bench/tls_client.py)"
    for sessions in $sessions_list; do
        drain Postfix pf_queue_count
        pf_rate=$(tls_run "$pf_sub_port" "$sessions" "$pf/maillog") || {
            tail -n 20 "$pf/maillog" >&2
            tail -n 5 "$dovecot_dir/dovecot.log" >&2
            die "Postfix tls run with $sessions sessions failed"
        }
        if [ "$po_delivers" = yes ]; then drain posta po_queue_count; else po_clear; fi
        po_rate=$(tls_run "$po_sub_port" "$sessions" "$po/maillog") || {
            tail -n 20 "$po/maillog" >&2
            tail -n 5 "$dovecot_dir/dovecot.log" >&2
            die "posta tls run with $sessions sessions failed"
        }
        [ "$po_delivers" = yes ] || po_clear
        tls_results+=("$sessions $pf_rate $po_rate")
        echo "  tls, $sessions sessions: Postfix $pf_rate msg/s, posta $po_rate msg/s" >&2
    done
    drain Postfix pf_queue_count
    [ "$po_delivers" = yes ] && drain posta po_queue_count
    pf_stop
    po_stop
    dovecot_stop
    pf_extra=""
fi

if [ ${#sign_results[@]} -gt 0 ]; then
    echo
    echo "sign (posta from a mynetworks client, without and with DKIM signing, best of $repeat;"
    echo "accept: smtp-source run; drained: until the queue is empty, all signed and discarded;"
    echo "cpu: user+system of all posta processes per message over the drained span):"
    printf '%-9s %-8s %12s %13s %11s %12s %13s %10s\n' sessions variant "accept msg/s" \
        "drained msg/s" "cpu us/msg" "accept ovh." "drained ovh." "cpu extra"
    for r in "${sign_results[@]}"; do
        set -- $r
        [ "$2" = none ] && { base_a=$3; base_d=$4; base_c=$5; }
        awk -v s="$1" -v v="$2" -v a="$3" -v d="$4" -v c="$5" \
            -v ba="$base_a" -v bd="$base_d" -v bc="$base_c" 'BEGIN {
            ao = (ba > 0 ? sprintf("%.1f%%", (ba - a) * 100 / ba) : "-")
            do_ = (d != "-" && bd != "-" && bd > 0 ? sprintf("%.1f%%", (bd - d) * 100 / bd) : "-")
            co = (bc > 0 ? sprintf("%+.0f us", c - bc) : "-")
            if (v == "none") { ao = "-"; do_ = "-"; co = "-" }
            printf "%-9s %-8s %12s %13s %11s %12s %13s %10s\n", s, v, a, d, c, ao, do_, co }'
    done
fi
if [ -n "$verify_out" ]; then
    echo
    echo "verify (posta's DKIM verifier as smtpd runs it, $size-byte body, relaxed/relaxed, key in"
    echo "posta's caches; DNS: TXT of the key through posta's c-ares layer, cache flushed before"
    echo "each, to dnsmasq on 127.0.0.1; $messages runs each; microseconds):"
    printf '%-34s %9s %9s %9s %9s\n' "" "cpu med" "cpu p90" "wall med" "wall p90"
    awk -v ref="$verify_ref" '
        $1 == "verify" {
            name = ($2 ~ /^rsa/ ? "verify rsa-sha256 (" $3 " bits)" : "verify ed25519-sha256")
            key = ($2 ~ /^rsa/ ? "rsa" : "ed25519")
            printf "%-34s %9.1f %9.1f %9.1f %9.1f\n", name, $5, $6, $7, $8
            vcpu[key] = $5; first[key] = $9; order[++nv] = key
        }
        $1 == "dns" {
            key = ($2 ~ /^rsa\./ ? "rsa" : "ed25519")
            printf "%-34s %9.1f %9.1f %9.1f %9.1f\n", "DNS round trip (" key " key)", $3, $4, $5, $6
            dns[key] = $5
        }
        END {
            printf "\nratio verify/DNS (verify cpu median / DNS wall median):"
            for (i = 1; i <= nv; i++)
                printf " %s %.2f%s", order[i], (dns[order[i]] > 0 ? vcpu[order[i]] / dns[order[i]] : 0),
                    (i < nv ? "," : "\n")
            printf "first verification, keys not cached (lookup + key decode, wall):"
            for (i = 1; i <= nv; i++)
                printf " %s %.0f us%s", order[i], first[order[i]], (i < nv ? "," : "\n")
            if (split(ref, r, " ") == 2 && r[1] > 0 && r[2] > 0)
                printf "signature check alone (openssl speed): rsa2048 %.1f us, ed25519 %.1f us\n",
                    r[1], r[2]
        }' <<<"$verify_out"
fi
if [ ${#receive_results[@]} -gt 0 ]; then
    print_table "receive (accept, fsync'd queue, discard):" "${receive_results[@]}"
fi
if [ ${#deliver_results[@]} -gt 0 ]; then
    print_table "deliver (accept, fsync'd queue, local into one Maildir, until the last is in new/):" \
        "${deliver_results[@]}"
fi
if [ ${#tls_results[@]} -gt 0 ]; then
    print_table "tls (submission: STARTTLS, AUTH PLAIN via Dovecot, $size-byte messages, discard; bench/tls_client.py):" \
        "${tls_results[@]}"
fi
if [ ${#relay_results[@]} -gt 0 ]; then
    print_table "relay (accept, fsync'd queue, smtp client to relayhost smtp-sink, until the queue is empty):" \
        "${relay_results[@]}"
    echo
    echo "smtp-sink alone (smtp-source straight into smtp-sink):"
    printf '%-10s %14s\n' sessions "msg/s"
    for r in "${sink_results[@]}"; do
        printf '%-10s %14s\n' "${r% *}" "${r#* }"
    done
fi
