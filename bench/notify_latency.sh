#!/usr/bin/env bash
# A script's message through the agent: POST /api/notify (what `send-message` and the
# Python shim do) → the request at a loopback Bot API. N messages at RATE per second,
# each with its own text; reports p50, p99 and the largest latency.
#
# Usage: bash bench/notify_latency.sh        (N, RATE can be set in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-300}
RATE=${RATE:-20}

py=/usr/bin/python3; [ -x "$py" ] || py=python3
cargo build --release --locked -q
bin=$PWD/target/release/protowatch
work=$(mktemp -d)
agent=; tg=; keeper=
cleanup() {
  for p in $agent $tg $keeper; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tgport=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The fake ends when its stdin closes; the keeper holds it open (and nothing of ours).
exec {keep}< <(exec sleep 100000 2> /dev/null)
keeper=$!
"$py" bench/fake_telegram.py --port "$tgport" --log "$work/tg.log" <&"$keep" > /dev/null &
tg=$!
# Every message is news (no repeats to count) and the pace is no limit here.
cat > "$work/config.json" <<JSON
{
  "instrument": "BENCH",
  "telegram": {"bot-id": "123456:BENCH-token", "channel-id": "-100", "api-url": "http://127.0.0.1:$tgport"},
  "throttle": {"per_minute": {"telegram": 10000}},
  "api": {"listen": "127.0.0.1:$port"}
}
JSON
"$bin" --config "$work/config.json" run 2> "$work/agent.log" &
agent=$!
for _ in $(seq 100); do [ -s "$work/.protowatch/api.addr" ] && break; sleep 0.1; done
sleep 1
"$py" - "$port" "$N" "$RATE" "$(cat "$work/.protowatch/api-token")" "$work/tg.log" <<'PY'
import http.client, json, sys, time
port, n, rate, token, log = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
sent = {}
c = http.client.HTTPConnection("127.0.0.1", port)
for i in range(n):
    body = json.dumps({"event": "message", "message": f"bench message {i} of the run"})
    sent[i] = time.time()
    c.request("POST", "/api/notify", body, {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 202, r.status
    time.sleep(1 / rate)
deadline = time.time() + 30
seen = {}
while time.time() < deadline and len(seen) < n:
    for line in open(log):
        rec = json.loads(line)
        for i in range(n):
            if i not in seen and f"bench message {i} of" in rec["text"]:
                seen[i] = rec["at"]
                break
    time.sleep(0.2)
lat = sorted((seen[i] - sent[i]) * 1000 for i in seen)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"{len(lat)} of {n} messages at {rate:g}/s: p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, max {lat[-1]:.1f} ms")
PY
