#!/usr/bin/env bash
# The fault soak of issue "Speed and stamina": the release binary, against a local SMTP
# server (Debian's python3-aiosmtpd) and a fake Bot API on loopback, for DURATION seconds
# of steady error lines with every kind of rotation, SIGKILLs and restarts every 30-60 s,
# each server down for a minute, and config edits; then checks that every line reached
# each destination, duplicates are no more than the kills, no delivery is dead, and the
# agent's memory stayed flat. Exits non-zero when a check fails. The timeline and the
# checks are in bench/soak.py; its header says what happens when.
#
# Usage: bash bench/soak.sh
#   DURATION (600 s), RATE (4 lines/s), OUTAGE (60 s), EDIT_EVERY (100 s), DRAIN (most
#   seconds to wait for delivery after the writer stops, 360), SEED (random; printed,
#   give it again to repeat a timeline).
# The run's files (config, protocol, what the servers received, the agent's log) stay in
# target/soak/<time>/ for a look after a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's Python, where python3-aiosmtpd is installed (not one a version manager puts first).
py=/usr/bin/python3
if ! "$py" -c 'import aiosmtpd' 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q python3-aiosmtpd >/dev/null
  else
    echo "needs python3-aiosmtpd (apt-get install python3-aiosmtpd)" >&2; exit 2
  fi
fi
cargo build --release --locked -q
work=$PWD/target/soak/$(date +%Y%m%d-%H%M%S)
mkdir -p "$work"
echo "files of this run: $work"

# The soak and everything it starts (agent, servers, commands) run in a process group of
# their own, so that an interrupted run leaves no process behind.
pid=
cleanup() { [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
setsid "$py" bench/soak.py "$PWD/target/release/protowatch" "$work" &
pid=$!
status=0
wait "$pid" || status=$?
exit "$status"
