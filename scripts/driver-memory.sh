#!/usr/bin/env bash
# Peak resident memory of one `raft-driver run`: the driver's own (VmHWM
# of its process, not of its children) and the raft-checker child's that
# judges the run, sampled every 0.2 s. The driver's figure should not grow
# with the run's length (issue 14: a 30-minute run under 500 MB).
#
#   scripts/driver-memory.sh SECONDS [more run options]
#   scripts/driver-memory.sh 180                       # default nemesis
#
# Uses target/release (or $CARGO_TARGET_DIR/release); the run goes to a
# temporary results folder, removed afterwards unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/release"
secs="${1:?usage: scripts/driver-memory.sh SECONDS [run options]}"
shift
results="$(mktemp -d)"
"$bin/raft-driver" run --time-limit "$secs" --results "$results" "$@" \
  >"$results/stdout" 2>"$results/stderr" &
pid=$!
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }
driver=0
checker=0
while kill -0 "$pid" 2>/dev/null; do
  d="$(hwm "$pid")"
  [ -n "$d" ] && [ "$d" -gt "$driver" ] && driver="$d"
  for c in $(pgrep -P "$pid" -x raft-checker || true); do
    k="$(hwm "$c")"
    [ -n "$k" ] && [ "$k" -gt "$checker" ] && checker="$k"
  done
  sleep 0.2
done
code=0
wait "$pid" || code=$?
echo "run of ${secs} s: exit ${code}; driver peak RSS $((driver / 1024)) MiB; raft-checker child peak RSS $((checker / 1024)) MiB"
grep -E '^(ops|verdict|workload):' "$results/stdout" || tail -5 "$results/stderr"
if [ "${KEEP:-0}" = 1 ]; then
  echo "kept: $results"
else
  rm -rf "$results"
fi
