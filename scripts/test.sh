#!/usr/bin/env bash
# The project's test command (README, .ci/run): builds everything in release
# mode (the integration tests spawn the real binaries) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
cargo test --release --workspace
