#!/bin/bash
# bench/run.sh - Postfix and posta side by side, receiving with smtp-source
#
#   bench/run.sh            (as root; `make bench` builds first)
#
# For each session count (1, 10, 50) smtp-source sends BENCH_MESSAGES
# (10,000) messages of 4 KiB to a Postfix instance and then to a posta
# instance, both on 127.0.0.1, and the wall time gives messages/s.
#   Postfix: a private instance in a temporary folder (own config, queue
#     and data directories), smtpd on 127.0.0.1 only, everything else as
#     stock, the queue fsync'd as always, every message discarded
#     (default_transport = local_transport = discard).
#   posta: an instance made by scripts/mkinstance.sh. posta does not
#     deliver yet, so its messages stay in incoming/; the script empties
#     incoming/ between runs (not timed).
# Environment: BENCH_MESSAGES (10000), BENCH_SESSIONS ("1 10 50"),
# BENCH_SIZE (4096), POSTA_BUILD (./build), BENCH_TMPDIR (/tmp: where
# both instances live; keep it on the disk you want to measure),
# BENCH_KEEP=1 keeps the temporary folder.
#
# DIAGNOSTICS: exit 1 when an instance does not start or a run fails;
# the logs of both instances are printed then. Every wait is bounded and
# cleanup stops both instances and kills what remains by PID.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
messages=${BENCH_MESSAGES:-10000}
sessions_list=${BENCH_SESSIONS:-1 10 50}
size=${BENCH_SIZE:-4096}
build=${POSTA_BUILD:-$repo/build}
sender=sender@localhost
rcpt=root@localhost
start_wait=30      # seconds for an instance to answer
drain_wait=600     # seconds for Postfix to empty its queue between runs
run_timeout=1800   # seconds for one smtp-source run

die() {
    echo "bench: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (Postfix needs it to start its daemons)"
for tool in /usr/sbin/smtp-source /usr/sbin/postfix /usr/sbin/postconf; do
    [ -x "$tool" ] || die "$tool missing: scripts/deps.sh build bench"
done
[ -x "$build/bin/posta" ] || die "no $build/bin/posta: run make first"
case "$messages" in '' | *[!0-9]*) die "BENCH_MESSAGES must be a number" ;; esac
for s in $sessions_list; do
    case "$s" in '' | *[!0-9]*) die "BENCH_SESSIONS must be numbers" ;; esac
done

work=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/posta-bench.XXXXXX")
chmod 0755 "$work"
pf=$work/postfix
po=$work/posta
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
cleanup() {
    set +e
    pf_pids="$pf_pids $(pid_tree "$(master_pid "$pf_queue/pid/master.pid")")"
    po_pids="$po_pids $(pid_tree "$(master_pid "$po/spool/pid/master.pid")")"
    if [ -f "$pf_etc/main.cf" ]; then
        timeout 60 /usr/sbin/postfix -c "$pf_etc" stop >/dev/null 2>&1
    fi
    if [ -f "$po/etc/main.cf" ]; then
        timeout 60 "$build/bin/posta" -c "$po/etc" stop >/dev/null 2>&1
    fi
    sleep 1
    for pid in $pf_pids $po_pids; do
        [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null
    done
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
cat >"$pf_etc/main.cf" <<EOF
# Postfix instance of the posta benchmark: accept, queue (fsync), discard.
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
default_transport = discard
local_transport = discard
relay_transport = discard
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
/usr/sbin/postfix -c "$pf_etc" check >"$work/postfix-check.log" 2>&1 ||
    { cat "$work/postfix-check.log" >&2; die "postfix check failed"; }
/usr/sbin/postfix -c "$pf_etc" start >"$work/postfix-start.log" 2>&1 ||
    { cat "$work/postfix-start.log" "$pf/maillog" >&2 2>/dev/null; die "postfix start failed"; }
wait_banner "$pf_port" || { cat "$pf/maillog" >&2; die "Postfix does not answer on $pf_port"; }
pf_pids=$(pid_tree "$(master_pid "$pf_queue/pid/master.pid")")

# ---- posta instance -------------------------------------------------------
po_port=$(free_port)
"$repo/scripts/mkinstance.sh" "$po" "$po_port" "$build" >/dev/null
touch "$po/maillog"
chmod 0666 "$po/maillog"
sed -i "s|^maillog_file *=.*|maillog_file = $po/maillog|" "$po/etc/main.cf"
"$build/bin/posta" -c "$po/etc" start >"$work/posta-start.log" 2>&1 ||
    { cat "$work/posta-start.log" "$po/maillog" >&2; die "posta start failed"; }
wait_banner "$po_port" || { cat "$po/maillog" >&2; die "posta does not answer on $po_port"; }
po_pids=$(pid_tree "$(master_pid "$po/spool/pid/master.pid")")

# pf_queue_count - messages still in Postfix's queue
pf_queue_count() {
    find "$pf_queue/incoming" "$pf_queue/active" "$pf_queue/deferred" \
        "$pf_queue/maildrop" -type f 2>/dev/null | wc -l
}

# pf_drain - wait (bounded) until Postfix has discarded everything
pf_drain() {
    local i
    for ((i = 0; i < drain_wait * 10; i++)); do
        [ "$(pf_queue_count)" -eq 0 ] && return 0
        sleep 0.1
    done
    echo "bench: warning: Postfix queue not empty after ${drain_wait}s" >&2
}

# po_clear - empty posta's incoming/ (no delivery yet)
po_clear() {
    find "$po/spool/incoming" -type f -delete
}

# run_source PORT SESSIONS - messages/s of one smtp-source run (stdout)
run_source() {
    local port=$1 sessions=$2 t0 t1 log=$work/source-$1-$2.log
    t0=$(date +%s%N)
    if ! timeout "$run_timeout" /usr/sbin/smtp-source -s "$sessions" -m "$messages" \
        -l "$size" -f "$sender" -t "$rcpt" "127.0.0.1:$port" >"$log" 2>&1; then
        cat "$log" >&2
        return 1
    fi
    t1=$(date +%s%N)
    awk -v n="$messages" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f\n", n / (ns / 1e9) }'
}

echo "posta benchmark: $messages messages of $size bytes per run (smtp-source)"
echo "Postfix $(/usr/sbin/postconf -h mail_version) on 127.0.0.1:$pf_port (accept, fsync'd queue, discard)"
echo "posta $("$build/bin/posta" -c "$po/etc" conf mail_version 2>/dev/null | sed "s/^.*= *//" ||
    echo '?') on 127.0.0.1:$po_port (accept into the queue; incoming/ is emptied between runs, not timed)"
echo "machine: $(nproc) CPUs, $(uname -r)"
echo
results=()
for sessions in $sessions_list; do
    pf_drain
    pf_rate=$(run_source "$pf_port" "$sessions") || die "Postfix run with $sessions sessions failed"
    po_clear
    po_rate=$(run_source "$po_port" "$sessions") || {
        tail -n 20 "$po/maillog" >&2
        die "posta run with $sessions sessions failed"
    }
    queued=$(find "$po/spool/incoming" -type f | wc -l)
    if [ "$queued" -ne "$messages" ]; then
        echo "bench: warning: posta queued $queued of $messages messages" >&2
    fi
    po_clear
    results+=("$sessions $pf_rate $po_rate")
    echo "  $sessions sessions: Postfix $pf_rate msg/s, posta $po_rate msg/s" >&2
done

printf '%-10s %14s %14s %14s\n' sessions "postfix msg/s" "posta msg/s" "posta/postfix"
for r in "${results[@]}"; do
    set -- $r
    awk -v s="$1" -v a="$2" -v b="$3" 'BEGIN {
        printf "%-10s %14d %14d %14.2f\n", s, a, b, (a > 0 ? b / a : 0) }'
done
