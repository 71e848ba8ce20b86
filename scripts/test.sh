#!/usr/bin/env bash
# The project's test command (README, .ci/run): builds everything in release
# mode (the integration tests spawn the real binaries) and runs every test.
#
# One build of the binaries and the tests together; the listing after it
# compiles nothing more (see Cargo.toml's resolver note). The test
# executables then run as `cargo test` would run them (each in its
# package's folder, each with its own threads), in two lanes at once
# (TEST_LANES=1: one after another). Why lanes: the end-to-end tests spend
# most of their time waiting on clusters (faults, heals, op timeouts), one
# cluster at a time within an executable (tests/common's `serial()`), so a
# second lane nearly halves the wall time on 2 cores (issue 14). A cargo
# command cannot be the second lane: cargo holds the build folder's lock
# until its tests end.
#
#   scripts/test.sh                  # two lanes (about 210 s of tests instead of 370 s)
#   TEST_LANES=1 scripts/test.sh     # one executable at a time
#   scripts/test.sh -- --nocapture   # arguments after -- go to every test executable
#
# The tests that once failed with a second lane beside them were made to
# hold with it (the checker's memory budget under two searching threads,
# a node test's redirect to a killed leader, the message-fault run's
# length, the FUSE lifecycle tests' forks, the replay test's offsets),
# each for its own reason.
set -euo pipefail
cd "$(dirname "$0")/.."
lanes=${TEST_LANES:-2}
case $lanes in
  1 | 2) ;;
  *) echo "test.sh: TEST_LANES must be 1 or 2, not '$lanes'" >&2; exit 2 ;;
esac
test_args=()
if [ "${1:-}" = "--" ]; then
  shift
  test_args=("$@")
fi

cargo build --release --workspace --bins --tests

# The second lane: the longest end-to-end executables of the driver, about
# half of the end-to-end time (the other lane starts with the short, CPU-
# bound unit and in-process tests, then the rest of the end-to-end ones).
# Every executable that mounts FUSE (faultfs's, the driver's power_cut) is
# in this lane, so no two mount at once.
second_lane=" driver/run_cluster driver/vote_crash driver/etcd driver/power_cut driver/bench faultfs/raft_faultfs faultfs/lifecycle faultfs/power_cut faultfs/raft_node faultfs/etcd faultfs/differential "

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$work/lane1" && : >"$work/lane2"
# Listed into a file first, so that a failing cargo stops the script (a
# pipe's reader would go on with a partial list).
cargo test --release --workspace --no-run --message-format=json >"$work/list.json"
while IFS= read -r line; do
  case $line in *'"executable":"/'*) ;; *) continue ;; esac
  profile=$(sed -E 's/.*"profile":\{([^}]*)\}.*/\1/' <<<"$line")
  case $profile in *'"test":true'*) ;; *) continue ;; esac
  manifest=$(sed -E 's/.*"manifest_path":"([^"]*)".*/\1/' <<<"$line")
  name=$(sed -E 's/.*"target":\{[^}]*"name":"([^"]*)".*/\1/' <<<"$line")
  exe=$(sed -E 's/.*"executable":"([^"]*)".*/\1/' <<<"$line")
  dir=$(dirname "$manifest")
  label="$(basename "$dir")/$name"
  lane=1
  if [ "$lanes" = 2 ] && [[ $second_lane == *" $label "* ]]; then
    lane=2
  fi
  printf '%s\t%s\t%s\n' "$dir" "$label" "$exe" >>"$work/lane$lane"
done <"$work/list.json"
if [ ! -s "$work/lane1" ]; then
  echo "test.sh: cargo listed no test executables" >&2
  exit 1
fi

# Runs one lane's executables in order; each one's output is printed whole
# when it ends (under a lock, so the lanes' outputs never interleave), and a
# failure is noted and the lane goes on, as `cargo test --no-fail-fast`.
run_lane() {
  local n=$1 dir label exe status out="$work/out$1"
  while IFS=$'\t' read -r dir label exe; do
    status=0
    # exec: the executable is the lane's own child, which a signal reaches.
    (cd "$dir" && exec "$exe" ${test_args[@]+"${test_args[@]}"}) >"$out" 2>&1 </dev/null || status=$?
    if [ "$status" != 0 ]; then
      echo "$label (exit $status)" >>"$work/failed"
    fi
    {
      flock 9
      echo "     Running $label [lane $n]"
      cat "$out"
    } 9>"$work/print.lock"
  done <"$work/lane$n"
}

# Every process below the given pids (parents are read before any dies:
# a killed test's clusters would be orphaned and out of reach).
descendants() {
  local frontier=("$@") next p c
  while [ "${#frontier[@]}" -gt 0 ]; do
    next=()
    for p in "${frontier[@]}"; do
      while read -r c; do
        next+=("$c")
      done < <(pgrep -P "$p" || true)
    done
    [ "${#next[@]}" -gt 0 ] && echo "${next[@]}"
    frontier=(${next[@]+"${next[@]}"})
  done
}

# ctrl-c or SIGTERM: the lanes, the test executables and everything they
# started (drivers, nodes, mounts' owners) get SIGTERM, then SIGKILL what
# is left two seconds later (a paused node only goes that way).
pids=()
on_signal() {
  trap - INT TERM
  local tree
  tree=$(descendants "${pids[@]}")
  # shellcheck disable=SC2086 # a list of pids
  kill -TERM ${tree} "${pids[@]}" 2>/dev/null || true
  sleep 2
  # shellcheck disable=SC2086
  kill -KILL ${tree} 2>/dev/null || true
  wait || true
  exit 130
}
trap on_signal INT TERM

# The node's documentation examples are compiled by cargo (rustdoc).
cargo test --release --workspace --doc -- ${test_args[@]+"${test_args[@]}"}

for n in $(seq 1 "$lanes"); do
  run_lane "$n" &
  pids+=($!)
done
for p in "${pids[@]}"; do
  wait "$p" || echo "a test lane ended with status $? (see above)" >>"$work/failed"
done

if [ -s "$work/failed" ]; then
  echo "test.sh: these test executables failed:" >&2
  sed 's/^/  /' "$work/failed" >&2
  exit 1
fi
echo "test.sh: every test executable passed ($(cat "$work"/lane* | wc -l) executables, $lanes lane(s))"
