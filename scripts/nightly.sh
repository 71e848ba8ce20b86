#!/usr/bin/env bash
# What cron or CI calls every night: build, run ralph for a time budget over
# campaign slices with fresh seeds, and exit with the gate's code:
#   0 every run valid, 1 a run was invalid (a violation), 3 inconclusive
#   (unknown runs, none invalid), 2 bad usage or a failed build.
#
# Environment (all optional):
#   NIGHTLY_BUDGET   seconds for the loop (default 21600 = 6 h)
#   NIGHTLY_SLICES   campaign slices, one per iteration (default 7)
#   NIGHTLY_RESULTS  results folder (default results)
#   NIGHTLY_LOGS     iteration logs folder (default logs)
#   NIGHTLY_ARGS     extra campaign options, e.g. "--nodes 3,5 --time-limit 60"
#   NIGHTLY_KEEP_GOING=1  do not stop at the first invalid run
#   NIGHTLY_KEEP_DAYS  after the loop, delete valid folders started more than
#                      this many days ago (default 14)
#   NIGHTLY_MAX_GB     then delete the oldest valid folders until the results
#                      folder holds at most this many GB (default 20); invalid
#                      and unknown runs are never deleted (raft-driver prune)
#
# crontab:  0 1 * * *  cd /srv/raft-ralph && scripts/nightly.sh >> logs/nightly.log 2>&1
set -uo pipefail
cd "$(dirname "$0")/.."

budget="${NIGHTLY_BUDGET:-21600}"
slices="${NIGHTLY_SLICES:-7}"
results="${NIGHTLY_RESULTS:-results}"
logs="${NIGHTLY_LOGS:-logs}"

echo "nightly: $(date -u +%Y-%m-%dT%H:%M:%SZ) building"
if ! cargo build --release --workspace --bins; then
  echo "nightly: the build failed" >&2
  exit 2
fi

keep=()
if [ "${NIGHTLY_KEEP_GOING:-0}" = 1 ]; then
  keep=(--keep-going)
fi
# NIGHTLY_ARGS is split on spaces on purpose: it is a list of options.
# shellcheck disable=SC2086
python3 ralph.py --time-budget "$budget" --slices "$slices" \
  --results "$results" --logs "$logs" "${keep[@]}" -- ${NIGHTLY_ARGS:-}
code=$?
# Pruning never changes the gate's verdict: a failure here is only reported.
# It rewrites results/index.html itself when it deletes anything.
if ! ./target/release/raft-driver prune --results "$results" \
  --keep-days "${NIGHTLY_KEEP_DAYS:-14}" --max-gb "${NIGHTLY_MAX_GB:-20}"; then
  echo "nightly: prune failed (results kept)" >&2
fi
./target/release/raft-driver index --results "$results" >/dev/null 2>&1 || true
case $code in
  0) echo "nightly: every run valid" ;;
  1) echo "nightly: INVALID run found (see the replay and check commands above)" ;;
  3) echo "nightly: inconclusive (unknown runs, no violation)" ;;
  *) echo "nightly: ralph failed with exit $code" ;;
esac
echo "nightly: results index: $results/index.html"
exit $code
