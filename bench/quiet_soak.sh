#!/usr/bin/env bash
# The quiet soak for an hour (beside the fault soak, bench/soak.sh): the release agent with
# every part configured against loopback servers — aiosmtpd dropping idle connections
# after 30 s, the fake Bot API holding each poll for the default 25 s, a webhook, SciLog
# whose tokens expire after 10 min, Signal, and redis-server with `timeout 30` for the
# BEC link — one error every 5–15 minutes, and an operator's press after another
# silence. It is tests/quiet_soak.rs, which the suite runs for 3 minutes, run longer.
#
# Prints: events delivered once each, presses handled (p50/p99 press → dismissed),
# WARN/ERROR lines after start-up (goal 0), CPU a minute and RSS at rest.
#
# Usage: bash bench/quiet_soak.sh          (SOAK_S, default 3600)
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK_S=${SOAK_S:-3600}
echo "== quiet soak, ${SOAK_S} s; load: $(uptime | sed 's/.*load/load/')"
PROTOWATCH_SOAK_S=$SOAK_S cargo test --release --locked -q --test quiet_soak -- --nocapture 2>&1 \
  | grep -E "quiet soak|test result|panicked|assert"
