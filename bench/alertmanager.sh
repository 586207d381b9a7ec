#!/usr/bin/env bash
# Append-to-Alertmanager latency: a protocol line appended until its alert is listed by
# both members of a two-member Alertmanager (Debian's prometheus-alertmanager, started
# here on loopback without gossip, so each member only knows what the agent posted).
# Two series of N lines each, a new failure per line:
#   - one line every 1.5 s: the latency of an alert that comes alone;
#   - lines back to back: posts are at least a second apart, so changes that come close
#     together are one post.
# Prints p50 and max of each series.
#
# Usage: bash bench/alertmanager.sh        (N can be set in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
py=/usr/bin/python3; [ -x "$py" ] || py=python3
if ! command -v prometheus-alertmanager >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null
fi
cargo build --release --locked -q
bin=${PROTOWATCH_BIN:-$PWD/target/release/protowatch}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

printf 'route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n' > "$work/am.yml"
ports=()
for m in 1 2; do
  port=$(free_port); ports+=("$port")
  prometheus-alertmanager --config.file="$work/am.yml" --storage.path="$work/am$m" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address= --log.level=warn 2>"$work/am$m.log" &
  pids+=($!)
done
d=$work/agent; mkdir -p "$d/p"; : > "$d/p/run.log"
cat > "$d/config.json" <<JSON
{
  "instrument": "BENCH",
  "alertmanager": {"urls": ["http://127.0.0.1:${ports[0]}", "http://127.0.0.1:${ports[1]}"]},
  "watch": [{"path": "p/*.log"}],
  "api": {"listen": "127.0.0.1:$(free_port)"}
}
JSON
"$bin" --config "$d/config.json" --log-level warn run 2>"$work/agent.log" &
pids+=($!)
sleep 2
echo "== load: $(uptime | sed 's/.*load/load/')"
for gap in 1.5 0; do
  "$py" - "$d/p/run.log" "$gap" "$N" "${ports[@]}" <<'PY'
import json, statistics, sys, time, urllib.request
log, gap, n, ports = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
lat = []
for i in range(n):
    time.sleep(gap)
    source = f"det{i}g{gap}"
    t0 = time.monotonic()
    with open(log, "a") as f:
        f.write(f"2026-11-20 14:03:12 ERROR 1 [{source}] HV trip on channel {i}\n")
    while True:
        seen = 0
        for p in ports:
            alerts = json.load(urllib.request.urlopen(f"http://127.0.0.1:{p}/api/v2/alerts"))
            seen += any(a["labels"].get("source") == source for a in alerts)
        if seen == len(ports):
            break
        time.sleep(0.002)
    lat.append((time.monotonic() - t0) * 1000)
lat.sort()
label = "one line every %.1f s" % gap if gap else "lines back to back"
print(f"{label}: n={n} p50={statistics.median(lat):.1f} ms max={lat[-1]:.1f} ms")
PY
done
