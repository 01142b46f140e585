#!/bin/sh
# mkinstance.sh - create a self-contained posta instance in a folder
#
#   scripts/mkinstance.sh DIR PORT BUILDDIR [MYHOSTNAME]
#
# Creates, when absent:
#   DIR/etc/main.cf      parameters pointing every path inside DIR
#   DIR/etc/master.cf    one smtpd listening on 127.0.0.1:PORT, the queue
#                        manager, and local and pickup when BUILDDIR/libexec
#                        has them
#   DIR/etc/aliases      texthash aliases ("name target" lines)
#   DIR/spool            queue_directory
#   DIR/mail             mail_spool_directory (mailboxes)
#   DIR/data             data_directory
#   DIR/etc/tls          a self-signed certificate for MYHOSTNAME (EC P-256,
#                        openssl req -x509), used by smtpd for STARTTLS
#                        (smtpd_tls_security_level = may)
# The programs are run from BUILDDIR/libexec (daemon_directory).
# MYHOSTNAME (default "localhost", or $POSTA_MYHOSTNAME) sets myhostname.
#
# Idempotent: an existing file or folder is never overwritten; the script
# prints what it created. Start the instance with
#   BUILDDIR/bin/posta -c DIR/etc start-fg
#
# DIAGNOSTICS: usage errors exit 2; other failures exit 1.
set -eu

usage() {
    echo "usage: $0 DIR PORT BUILDDIR [MYHOSTNAME]" >&2
    exit 2
}

[ $# -ge 3 ] && [ $# -le 4 ] || usage
dir=$1
port=$2
builddir=$3
myhostname=${4:-${POSTA_MYHOSTNAME:-localhost}}

case "$port" in
'' | *[!0-9]*) echo "$0: bad port '$port'" >&2; exit 2 ;;
esac
if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    echo "$0: port out of range: $port" >&2
    exit 2
fi
case "$myhostname" in
'' | *[!A-Za-z0-9.-]*) echo "$0: bad hostname '$myhostname'" >&2; exit 2 ;;
esac

# Absolute paths: the instance must work from any current directory.
abspath() {
    case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$(pwd)" "$1" ;;
    esac
}
dir=$(abspath "$dir")
builddir=$(abspath "$builddir")
case "$dir$builddir" in
*[[:space:]\$]*) echo "$0: paths must not contain white space or '\$'" >&2; exit 2 ;;
esac

created() {
    echo "mkinstance: created $1"
}

for d in "$dir" "$dir/etc" "$dir/spool" "$dir/mail" "$dir/data"; do
    if [ ! -d "$d" ]; then
        mkdir -p "$d"
        created "$d/"
    fi
done
# Mailboxes are created by local delivery; like /var/mail it is sticky
# and group-writable is not needed for an instance owned by one user.
chmod 0755 "$dir/mail"

# An instance run as root must not need a new system user: the daemons
# run as "nobody" and the postdrop group is "nogroup", both present on
# every Debian system. Run as an ordinary user, everything runs as that
# user (the daemons cannot change user anyway).
if [ "$(id -u)" -eq 0 ]; then
    # data_directory belongs to mail_owner (caches, TLS session data).
    chown nobody:nogroup "$dir/data"
    owner_lines="# Started as root: daemons drop privileges to nobody; a test or
# development instance must not need a dedicated system user (a real
# installation uses its own 'posta' user and 'postdrop' group).
mail_owner = nobody
setgid_group = nogroup"
else
    user=$(id -un)
    group=$(id -gn)
    owner_lines="# Started as an ordinary user: everything runs as that user.
mail_owner = $user
setgid_group = $group"
fi

# As root the daemons run as nobody and must be able to reach the
# instance: warn about an ancestor folder that others cannot enter
# (pytest's /tmp/pytest-of-root is 0700, for example).
if [ "$(id -u)" -eq 0 ]; then
    p=$dir
    while [ "$p" != "/" ] && [ -n "$p" ]; do
        if [ -z "$(find "$p" -maxdepth 0 -perm -o+x 2>/dev/null)" ]; then
            echo "mkinstance: warning: $p is not searchable by others;" \
                "daemons running as nobody cannot reach $dir" >&2
        fi
        p=$(dirname "$p")
    done
fi

# TLS out of the box: a self-signed certificate for the instance.
tls_dir=$dir/etc/tls
if [ ! -e "$tls_dir/cert.pem" ] || [ ! -e "$tls_dir/key.pem" ]; then
    mkdir -p "$tls_dir"
    chmod 0755 "$tls_dir"
    rm -f "$tls_dir/cert.pem" "$tls_dir/key.pem"
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.pem" -days 3650 -sha256 \
        -subj "/CN=$myhostname" -addext "subjectAltName=DNS:$myhostname" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -addext "extendedKeyUsage=serverAuth" >/dev/null 2>&1) || {
        echo "$0: openssl req failed" >&2
        exit 1
    }
    chmod 0644 "$tls_dir/cert.pem"
    created "$tls_dir/cert.pem"
fi

main_cf=$dir/etc/main.cf
if [ ! -e "$main_cf" ]; then
    cat > "$main_cf" <<EOF
# main.cf of a self-contained posta instance (made by mkinstance.sh).
# Every path lives under $dir.

queue_directory = $dir/spool
data_directory = $dir/data
daemon_directory = $builddir/libexec
config_directory = $dir/etc
mail_spool_directory = $dir/mail

myhostname = $myhostname
mydestination = \$myhostname, localhost.\$mydomain, localhost

# Loopback only, IPv4 only: simple and safe for tests. For IPv6 as well,
# use "inet_interfaces = 127.0.0.1, [::1]" and "inet_protocols = ipv4, ipv6"
# and add [::1]/128 to mynetworks.
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8

# Logs go to the standard error of "posta start-fg".
maillog_file = /dev/stderr

$owner_lines

smtpd_peername_lookup = yes

alias_maps = texthash:$dir/etc/aliases

# STARTTLS with the instance's self-signed certificate (etc/tls).
smtpd_tls_cert_file = $dir/etc/tls/cert.pem
smtpd_tls_key_file = $dir/etc/tls/key.pem
smtpd_tls_security_level = may
EOF
    created "$main_cf"
fi

master_cf=$dir/etc/master.cf
if [ ! -e "$master_cf" ]; then
    cat > "$master_cf" <<EOF
# master.cf of a self-contained posta instance (made by mkinstance.sh).
# service           type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$port     inet  n       -       n       -       -       smtpd
qmgr                unix  n       -       n       300     1       qmgr
EOF
    # Delivery and submission services only when their programs are built.
    if [ -x "$builddir/libexec/local" ]; then
        echo "local               unix  -       n       n       -       -       local" \
            >> "$master_cf"
    fi
    if [ -x "$builddir/libexec/pickup" ]; then
        echo "pickup              unix  n       -       n       60      1       pickup" \
            >> "$master_cf"
    fi
    if [ -x "$builddir/libexec/smtp" ]; then
        cat >> "$master_cf" <<EOF
smtp                unix  -       -       n       -       -       smtp
relay               unix  -       -       n       -       -       smtp
EOF
    fi
    if [ -x "$builddir/libexec/lmtp" ]; then
        echo "lmtp                unix  -       -       n       -       -       lmtp" \
            >> "$master_cf"
    fi
    created "$master_cf"
fi

aliases=$dir/etc/aliases
if [ ! -e "$aliases" ]; then
    cat > "$aliases" <<EOF
# aliases of a posta instance: "name target[, target...]" per line
# (texthash format; no newaliases needed).
postmaster root
mailer-daemon postmaster
abuse postmaster
EOF
    created "$aliases"
fi

exit 0
