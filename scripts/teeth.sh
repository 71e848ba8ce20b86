#!/usr/bin/env bash
# What cron calls once a week: build, then `raft-driver teeth` re-confirms
# that the harness still catches every bug raft-node can switch on, and
# rewrites TODO.md's teeth table from the report. Exit code: teeth's own
# (0 every bug caught within its budget, 1 a bug was missed, 2 bad usage or
# a failed build, 3 cut short).
#
# Environment (all optional):
#   TEETH_BUDGET_MINUTES  campaign minutes per bug (default 10)
#   TEETH_REPLAY_TRIES    replays of each catching run (default 3)
#   TEETH_RESULTS         results folder (default results)
#   TEETH_ARGS            extra teeth options, e.g. "--bugs stale-read,early-ack"
#
# crontab:  0 3 * * 0  cd /srv/raft-ralph && scripts/teeth.sh >> logs/teeth.log 2>&1
set -uo pipefail
cd "$(dirname "$0")/.."

echo "teeth: $(date -u +%Y-%m-%dT%H:%M:%SZ) building"
if ! cargo build --release --workspace --bins; then
  echo "teeth: the build failed" >&2
  exit 2
fi
# TEETH_ARGS is split on spaces on purpose: it is a list of options.
# shellcheck disable=SC2086
./target/release/raft-driver teeth \
  --budget-minutes "${TEETH_BUDGET_MINUTES:-10}" \
  --replay-tries "${TEETH_REPLAY_TRIES:-3}" \
  --results "${TEETH_RESULTS:-results}" \
  --update-todo TODO.md ${TEETH_ARGS:-}
code=$?
echo "teeth: $(date -u +%Y-%m-%dT%H:%M:%SZ) done, exit $code"
exit $code
