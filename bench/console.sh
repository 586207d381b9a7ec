#!/usr/bin/env bash
# The console in a real headless Chromium (Debian's chromium and chromium-driver):
# first paint of the alerts with 2,000 and 10,000 active alerts (the page's
# `alerts-shown` performance mark, 5 loads each), and the live update's latency from a
# line appended to a protocol file until it is on the page (10 probes).
#
# Usage: bash bench/console.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PROTOWATCH_REQUIRE_BROWSER=1
cargo test --release --locked --test console -- --ignored --nocapture console_benchmark 2>&1 \
  | grep -E "active alerts|append"
