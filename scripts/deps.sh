#!/bin/sh
# deps.sh - install the Debian packages posta needs, for the named groups.
#
#   scripts/deps.sh build [test] [bench]
#
# Installs only what is missing. As root it runs apt-get itself; otherwise
# it prints the exact command to run and fails.
set -eu

pkgs_build="build-essential pkg-config libssl-dev libc-ares-dev libsasl2-dev libsystemd-dev libdb-dev libpcre2-dev liblmdb-dev libcdb-dev"
# bsd-mailx and dovecot-imapd: the end-to-end delivery tests ("mail" on
# the host, IMAP through Dovecot); both are started by the tests only.
# postfix is listed so that bsd-mailx's need for an MTA package is met by it
# (installed unconfigured, never started) rather than by exim4.
pkgs_test="libcmocka-dev python3-pytest swaks clang libclang-rt-14-dev iproute2 openssl bsd-mailx dovecot-imapd postfix dnsmasq-base python3-aiosmtpd python3-dkim python3-spf opendkim-tools pflogsumm fail2ban lmdb-utils postfix-lmdb postfix-cdb postfix-pcre sasl2-bin libsasl2-modules testssl.sh curl dovecot-core python3-dnspython publicsuffix libnet-ssleay-perl libio-socket-ssl-perl groff-base postgrey"
pkgs_bench="postfix"

want=""
for group in "$@"; do
    case "$group" in
    build) want="$want $pkgs_build" ;;
    test) want="$want $pkgs_test" ;;
    bench) want="$want $pkgs_bench" ;;
    *) echo "deps.sh: unknown group '$group' (build, test, bench)" >&2; exit 2 ;;
    esac
done

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages:$missing" >&2
    echo "deps.sh: run as root: apt-get update && $cmd" >&2
    exit 1
fi

# Never let a package's maintainer scripts start a system daemon here
# (Debian's postfix would take port 25, dovecot ports 143 and 993): a
# temporary policy-rc.d says no.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=yes
fi
# (an if, not &&: the status of an EXIT trap becomes the exit status)
cleanup() { if [ -n "$made_policy" ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
$cmd
