#!/bin/sh
# deps.sh - install the Debian packages posta needs, for the named groups.
#
#   scripts/deps.sh build [test] [bench]
#
# Installs only what is missing. As root it runs apt-get itself; otherwise
# it prints the exact command to run and fails.
set -eu

pkgs_build="build-essential pkg-config libssl-dev libc-ares-dev libsasl2-dev libsystemd-dev libdb-dev"
pkgs_test="libcmocka-dev python3-pytest swaks clang libclang-rt-14-dev iproute2 openssl"
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

# Never let a package's maintainer scripts start a system mail server here
# (Debian's postfix would take port 25): a temporary policy-rc.d says no.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=yes
fi
cleanup() { [ -n "$made_policy" ] && rm -f "$policy"; }
trap cleanup EXIT

echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
$cmd
