#!/usr/bin/env bash
# The project's test command (README, .ci/run): builds everything in release
# mode (the integration tests spawn the real binaries) and runs every test.
# One build of the binaries and the tests together, then the tests: the
# second command compiles nothing more (see Cargo.toml's resolver note).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins --tests
cargo test --release --workspace
