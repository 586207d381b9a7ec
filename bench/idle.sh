#!/usr/bin/env bash
# The agent at rest: FILES protocol files, each its own `watch` entry (one thread each),
# nothing written for SECONDS_. Reports the CPU time it used (user+sys, from
# /proc/PID/stat), its peak RSS (VmHWM) and its wake-ups: voluntary context switches of
# each thread over the window (/proc/PID/task/*/status), so one sees which thread wakes
# and how often. MODE is notify (default) or poll.
#
# PARTS names the parts configured beside the files, each against a loopback server this
# script starts: `mail` (aiosmtpd), `telegram` (bench/fake_telegram.py, with operators: the
# long poll runs), `bec` (redis-server, the link subscribed), `http` (a webhook, SciLog and
# Signal: clients made, nothing sent at rest). PARTS=all is all of them; without PARTS,
# a Telegram chat that is never reached, as before.
#
# Usage: bash bench/idle.sh          (FILES, SECONDS_, MODE, PARTS can be set in the environment)
#        PARTS=all bash bench/idle.sh
#        PROTOWATCH_BIN=path/to/protowatch PARTS=all bash bench/idle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-10}
SECONDS_=${SECONDS_:-60}
MODE=${MODE:-notify}
PARTS=${PARTS:-}
[ "$PARTS" = all ] && PARTS="mail telegram bec http"
has() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

py=/usr/bin/python3; [ -x "$py" ] || py=python3
# PROTOWATCH_BIN: another build to measure (a profile being tried) instead of this tree's release.
if [ -z "${PROTOWATCH_BIN:-}" ]; then cargo build --release --locked -q; fi
bin=${PROTOWATCH_BIN:-$PWD/target/release/protowatch}
work=$(mktemp -d)
agent=
helpers=()
cleanup() {
  [ -n "$agent" ] && { kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; }
  for h in "${helpers[@]}"; do kill "$h" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/p"
watch=""
for i in $(seq "$FILES"); do
  echo "2026-11-21 14:03:12 INFO [bench] file $i opened" > "$work/p/det$i.log"
  watch+="${watch:+, }{\"path\": \"p/det$i.log\", \"mode\": \"$MODE\"}"
done
free() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
parts=""
if has mail; then
  smtp=$(free)
  "$py" -m aiosmtpd -n -l "127.0.0.1:$smtp" >/dev/null 2>&1 & helpers+=($!)
  parts+='"mail": {"server": "127.0.0.1", "port": '$smtp', "tls": "none", "recipients": ["ops@example.org"]},'
fi
if has telegram; then
  # Its standard input held open by this script: it ends when the script does.
  mkfifo "$work/tg.in"
  "$py" bench/fake_telegram.py --log "$work/tg.log" < "$work/tg.in" > "$work/tg.ready" & helpers+=($!)
  exec {tgfd}>"$work/tg.in"
  for _ in $(seq 50); do grep -q READY "$work/tg.ready" 2>/dev/null && break; sleep 0.1; done
  tg=$(awk '/READY/{print $2}' "$work/tg.ready")
  parts+='"telegram": {"bot-id": "123456:BENCH-token", "channel-id": "-100", "api-url": "http://127.0.0.1:'$tg'", "operators": [42]},'
else
  parts+='"telegram": {"bot-id": "123456:BENCH-token", "channel-id": "-100", "api-url": "http://127.0.0.1:9"},'
fi
if has bec; then
  rport=$(free)
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --timeout 30 --dir "$work" >/dev/null & helpers+=($!)
  sleep 0.5
  parts+='"bec": {"redis": "127.0.0.1:'$rport'"},'
fi
if has http; then
  parts+='"webhook": {"scopes": {"default": {"url": "http://127.0.0.1:9/hook"}}},'
  parts+='"scilog": {"url": "http://127.0.0.1:9/api/v1", "user": "ops", "password": "bench", "scopes": {"default": {"logbook": "lb-1"}}},'
  parts+='"signal": {"url": "http://127.0.0.1:9", "number": "+41790000001", "scopes": {"ops": {"recipients": ["+41790000002"]}}, "default_scope": "ops"},'
fi
cat > "$work/config.json" <<JSON
{
  "instrument": "BENCH",
  $parts
  "watch": [$watch],
  "api": {"listen": "127.0.0.1:$port"}
}
JSON
"$bin" --config "$work/config.json" --log-level warn run 2> "$work/agent.err" &
agent=$!
sleep 5   # start-up: threads spawned, files opened, first scans done

# Per thread "name/tid voluntary nonvoluntary cpu_ns" (the CPU time from schedstat, in
# nanoseconds: the clock ticks of /proc/PID/stat are 10 ms, too coarse for a minute at
# rest). Kept per thread so that the busiest thread of a name shows, not only the sum.
threads() {
  for t in /proc/"$agent"/task/*; do
    printf '%s/%s %s %s %s\n' "$(tr ' ' _ < "$t/comm")" "${t##*/}" \
      "$(awk '/^voluntary_ctxt/{print $2}' "$t/status")" \
      "$(awk '/^nonvoluntary_ctxt/{print $2}' "$t/status")" \
      "$(awk '{print $1}' "$t/schedstat")"
  done | sort
}
ticks() { awk '{print $14 + $15}' /proc/"$agent"/stat; }
threads > "$work/before"; t0=$(ticks)
sleep "$SECONDS_"
threads > "$work/after"; t1=$(ticks)
hz=$(getconf CLK_TCK)
echo "== $FILES files, $MODE mode, parts: ${PARTS:-none}, ${SECONDS_} s idle; load: $(uptime | sed 's/.*load/load/')"
echo "CPU (user+sys): $(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN{printf "%.2f s", (b-a)/hz}')"
echo "peak RSS: $(awk '/^VmHWM/{print $2, $3}' /proc/"$agent"/status); RSS now: $(awk '/^VmRSS/{print $2, $3}' /proc/"$agent"/status)"
# Where the resident pages are: the executable's own (file-backed, shared with the page
# cache), the libraries', and the agent's anonymous memory (heap, stacks).
echo "RSS by mapping: $(awk '
  /^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "") ? "anon" : ($6 ~ /protowatch$/ ? "executable" : ($6 ~ /^\// ? "libraries" : "anon")) }
  /^Rss:/ { kb[name] += $2 }
  END { printf "executable %.1f MB, libraries %.1f MB, anonymous %.1f MB", kb["executable"] / 1024, kb["libraries"] / 1024, kb["anon"] / 1024 }' /proc/"$agent"/smaps)"
# A wake-up is a voluntary context switch (the thread slept and was woken); the
# involuntary ones are the scheduler taking the core away, which says how loaded the
# machine was, not how often the thread wakes.
echo "per thread name over the window: threads, wake-ups (voluntary switches; all, and the busiest thread's), preemptions, CPU:"
join "$work/before" "$work/after" | awk -v s="$SECONDS_" '
  { split($1, id, "/"); k = id[1]; w = $5 - $2; p = $6 - $3; c = ($7 - $4) / 1e6 * 60 / s
    n[k]++; W[k] += w; P[k] += p; C[k] += c; if (w > M[k]) M[k] = w
    tw += w; tp += p; tc += c; if (w > tm) tm = w }
  END {
    for (k in n) printf "  %-18s x%-3d %6d wake-ups (%.1f/s, busiest %.1f/s) %4d preempted %6.1f ms CPU/min\n", k, n[k], W[k], W[k] / s, M[k] / s, P[k], C[k]
    printf "  %-23s %6d wake-ups (%.1f/s, busiest %.1f/s) %4d preempted %6.1f ms CPU/min\n", "~total", tw, tw / s, tm / s, tp, tc
  }' | sort
