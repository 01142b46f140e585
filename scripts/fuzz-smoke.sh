#!/bin/bash
# fuzz-smoke.sh - run every libFuzzer target briefly on its seed corpus
#
#   scripts/fuzz-smoke.sh DIR SECONDS
#
# For each DIR/fuzz_NAME binary: copy fuzz/corpus/NAME (if any) into a
# temporary folder (the repository is never written to), run the target
# for SECONDS (-max_total_time) on that copy, and fail if it reports a
# crash, a leak or a sanitizer error. Crash inputs are kept in the
# temporary artifact folder and its path is printed.
#
# DIAGNOSTICS: exit 0 when every target ran clean, 1 when any failed,
# 2 on a usage error or when DIR holds no targets.
set -euo pipefail

usage() {
    echo "usage: $0 DIR SECONDS" >&2
    exit 2
}
[ $# -eq 2 ] || usage
dir=$1
seconds=$2
case "$seconds" in
'' | *[!0-9]*) usage ;;
esac
[ -d "$dir" ] || { echo "$0: no such folder: $dir" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
# Grace beyond -max_total_time before the run is called hung.
grace=60
rss_limit_mb=2048

shopt -s nullglob
targets=("$dir"/fuzz_*)
if [ ${#targets[@]} -eq 0 ]; then
    echo "$0: no fuzz_* targets in $dir" >&2
    exit 2
fi

work=$(mktemp -d /tmp/posta-fuzz.XXXXXX)
cleanup() {
    # keep the folder when something failed, so the crash input is there
    if [ "${failed:-0}" -eq 0 ]; then
        rm -rf "$work"
    fi
}
trap cleanup EXIT

failed=0
for bin in "${targets[@]}"; do
    [ -x "$bin" ] && [ -f "$bin" ] || continue
    base=$(basename "$bin")
    name=${base#fuzz_}
    corpus=$work/$name/corpus
    artifacts=$work/$name/artifacts
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$repo/fuzz/corpus/$name" ]; then
        cp -R "$repo/fuzz/corpus/$name/." "$corpus/"
    else
        echo "fuzz-smoke: warning: no seed corpus fuzz/corpus/$name" >&2
    fi
    echo "== $base (${seconds}s)"
    log=$work/$name/log
    status=0
    timeout --kill-after=10 $((seconds + grace)) \
        "$bin" -max_total_time="$seconds" -rss_limit_mb="$rss_limit_mb" \
        -timeout=25 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || status=$?
    tail -n 3 "$log"
    found=("$artifacts"/*)   # crash-*, leak-*, timeout-*, oom-* inputs
    if [ "$status" -ne 0 ] || [ ${#found[@]} -gt 0 ]; then
        echo "fuzz-smoke: $base FAILED (exit $status); log and inputs in $work/$name" >&2
        grep -E 'ERROR|SUMMARY|panic|Assertion' "$log" | head -n 20 >&2 || true
        failed=1
    fi
done

if [ "$failed" -ne 0 ]; then
    echo "fuzz-smoke: failures; see $work" >&2
    exit 1
fi
echo "fuzz-smoke: all ${#targets[@]} targets ran ${seconds}s each without a crash"
