#!/usr/bin/env bash
# Floods from a neighbour: what a local user of the instrument PC (one who may write the
# protocol folder and reach the API's port, but is not in the group protowatch, or one
# who is and holds the token) can make the agent spend. One release agent with its API
# on; for each flood in turn, while it runs:
#   - the agent's RSS: the peak during the flood (VmHWM, reset before each) and VmRSS
#     AFTER (3) seconds after it ended;
#   - GET /healthz latency: median, p99 and max over H (200) sequential curl requests,
#     GAP (0.05) s apart so that they span the flood's turns (curl -w '%{time_total}',
#     10 s at most each; a timeout counts as 10 s);
# and what the flood itself did. The floods:
#   idle     no flood: the reference
#   sparse   a sparse 20 GB file and a link to /proc/self/pagemap in the watched folder,
#            and an ERROR line in another file meanwhile (its delivery time)
#   slow     300 connections to POST /signin sending one byte of the body every 5 s,
#            opened again whenever the agent drops one
#   tokens   wrong tokens as fast as 8 connections can send them for 20 s (the audit
#            log's bytes written)
#   idle_conns  1,000 connections that send nothing or half a request head, opened
#            again when dropped (bench/api_limits.sh measures the descriptors and the
#            drop times of the same flood)
#   notify   24 parallel POST /api/notify of 13 MB each (two 4.85 MB files as base64,
#            under the 10 MB per request), in rounds, with the token
#   metrics  GET /metrics from 4 loops with 10,000 active alerts in the store (made
#            with PUT /api/alerts beforehand)
#
# Usage: bash bench/floods.sh [FLOOD…]     (all by default; H and GAP can be set in the
# environment)
# Needs root for /proc/<agent>/clear_refs (the peak's reset); without it the peak is
# the process's whole life so far.
set -euo pipefail
cd "$(dirname "$0")/.."
H=${H:-200}
GAP=${GAP:-0.05}
AFTER=${AFTER:-3}
floods=("$@")
[ ${#floods[@]} -gt 0 ] || floods=(idle sparse slow tokens idle_conns notify metrics)

py=/usr/bin/python3; [ -x "$py" ] || py=python3
cargo build --release --locked -q
# PROTOWATCH_BIN: another build to compare (say, of the commit before a change).
bin=${PROTOWATCH_BIN:-$PWD/target/release/protowatch}
work=$(mktemp -d)
agent=; tg=; keeper=; flood=
cleanup() {
  for p in $flood $agent $tg $keeper; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tgport=$(free_port)
# The fake Bot API ends when its stdin closes; the keeper holds it open.
exec {keep}< <(exec sleep 100000 2> /dev/null)
keeper=$!
"$py" bench/fake_telegram.py --port "$tgport" --log "$work/tg.log" <&"$keep" > /dev/null &
tg=$!
mkdir -p "$work/p"

# A fresh agent for each flood, so that what one flood left behind (a store of queued
# files, memory not given back) is not counted against the next.
start_agent() {
  port=$(free_port)
  url=http://127.0.0.1:$port
  rm -rf "$work/.protowatch" "$work/p"/*
  : > "$work/p/a.log"
  cat > "$work/config.json" <<JSON
{
  "instrument": "BENCH",
  "telegram": {"bot-id": "123456:BENCH-token", "channel-id": "-100", "api-url": "http://127.0.0.1:$tgport"},
  "watch": [{"path": "p/*.log"}],
  "throttle": {"per_minute": {"telegram": 10000}},
  "api": {"listen": "127.0.0.1:$port", "max_alerts": 20000}
}
JSON
  chmod 600 "$work/config.json"
  "$bin" --config "$work/config.json" run 2> "$work/agent.log" &
  agent=$!
  for _ in $(seq 100); do [ -s "$work/.protowatch/api.addr" ] && break; sleep 0.1; done
  sleep 1
  token=$(cat "$work/.protowatch/api-token")
}
stop_agent() {
  kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; agent=
}

kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$agent/status"; }
reset_peak() { echo 5 > "/proc/$agent/clear_refs" 2>/dev/null || true; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# H sequential GET /healthz: "median p99 max non-200" in ms.
health() {
  for _ in $(seq "$H"); do
    curl -s -o /dev/null -m 10 -w '%{time_total} %{http_code}\n' "$url/healthz" || echo "10 000"
    sleep "$GAP"
  done | "$py" -c '
import sys
rows = [l.split() for l in sys.stdin if l.strip()]
t = sorted(float(r[0]) * 1000 for r in rows)
bad = sum(1 for r in rows if r[1] != "200")
p = lambda q: t[min(len(t) - 1, int(q * len(t)))]
print(f"{p(0.5):.1f} {p(0.99):.1f} {t[-1]:.1f} {bad}")'
}

# Starts a flood in the background (a Python program, then its arguments); returns once
# it printed READY on its stdout.
start_flood() {
  local prog=$1; shift
  "$py" -c "$prog" "$@" > "$work/flood.out" 2> "$work/flood.err" &
  flood=$!
  for _ in $(seq 600); do grep -q READY "$work/flood.out" 2>/dev/null && return; sleep 0.1; done
  echo "the flood did not start: $(cat "$work/flood.err")" >&2; exit 1
}
stop_flood() {
  kill "$flood" 2>/dev/null || true; wait "$flood" 2>/dev/null || true; flood=
}

printf '%-11s | %9s | %9s | %18s | %s\n' flood "peak RSS" "RSS after" "healthz p50/p99/max" "what the flood did"
row() { # name, healthz figures, note
  read -r p50 p99 max bad <<<"$2"
  local extra=
  [ "$bad" = 0 ] || extra=" ($bad not 200)"
  sleep "$AFTER"
  printf '%-11s | %6s MB | %6s MB | %5s/%5s/%5s ms | %s%s\n' "$1" "$(mb "$(kib VmHWM)")" "$(mb "$(kib VmRSS)")" "$p50" "$p99" "$max" "$3" "$extra"
}

# The floods' own programs, each printing READY once it is in full swing.
SLOW=$(cat <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
head = (f"POST /signin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n").encode()
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(head)
    return s
socks = [conn() for _ in range(n)]
opened = n
print("READY", flush=True)
while True:
    for i, s in enumerate(socks):
        try:
            s.sendall(b"x")
        except OSError:
            s.close()
            try:
                socks[i] = conn(); opened += 1
            except OSError:
                pass
    print(f"OPENED {opened}", flush=True)
    time.sleep(5)
PY
)
TOKENS=$(cat <<'PY'
import http.client, sys, threading, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
count = [0]
lock = threading.Lock()
def run(end):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while time.monotonic() < end:
        try:
            c.request("GET", "/api/alerts", headers={"Authorization": "Bearer " + "0" * 64})
            c.getresponse().read()
            with lock:
                count[0] += 1
        except (OSError, http.client.HTTPException):
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
end = time.monotonic() + seconds
threads = [threading.Thread(target=run, args=(end,)) for _ in range(8)]
for t in threads:
    t.start()
print("READY", flush=True)
for t in threads:
    t.join()
print(f"REQUESTS {count[0]}", flush=True)
PY
)
IDLE=$(cat <<'PY'
import resource, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, max(n + 100, resource.getrlimit(resource.RLIMIT_NOFILE)[1])))
def conn(i):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if i % 2 == 0:
        s.sendall(b"GET /api/alerts HTTP/1.1\r\nHost: local")
    s.setblocking(False)
    return s
socks = [conn(i) for i in range(n)]
opened = n
print("READY", flush=True)
while True:
    time.sleep(1)
    for i, s in enumerate(socks):
        try:
            if s.recv(1) == b"":
                raise ConnectionResetError
        except BlockingIOError:
            continue
        except OSError:
            pass
        s.close()
        try:
            socks[i] = conn(i); opened += 1
        except OSError:
            pass
PY
)
NOTIFY=$(cat <<'PY'
import base64, http.client, json, os, sys, threading, time
port, token, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
# Two files of 4.85 MB (one may be 5 MiB at most): 12.9 MB of JSON a request.
data = base64.b64encode(os.urandom(4_850_000)).decode()
codes, lock = [], threading.Lock()
def run(i):
    body = json.dumps({"event": "message", "message": {"text": [{"text": f"plot {i}"}],
                       "attachments": [{"filename": f"plot{i}{part}.bin", "data_base64": data}
                                       for part in "ab"]}}).encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        c.request("POST", "/api/notify", body=body,
                  headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        code = c.getresponse().status
    except (OSError, http.client.HTTPException) as e:
        code = type(e).__name__
    with lock:
        codes.append(code)
print(f"READY {2 * len(data) / 1e6:.1f} MB each", flush=True)
rounds = 0
while True:
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rounds += 1
    print(f"ROUND {rounds} " + " ".join(sorted(set(map(str, codes)))), flush=True)
PY
)
METRICS=$(cat <<'PY'
import http.client, sys, threading, time
port = int(sys.argv[1])
count, sizes, lock = [0], [0], threading.Lock()
def run():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while True:
        try:
            c.request("GET", "/metrics")
            body = c.getresponse().read()
            with lock:
                count[0] += 1; sizes[0] = len(body)
        except (OSError, http.client.HTTPException):
            c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for _ in range(4):
    threading.Thread(target=run, daemon=True).start()
print("READY", flush=True)
t0 = time.monotonic()
while True:
    time.sleep(1)
    print(f"RATE {count[0] / (time.monotonic() - t0):.0f} {sizes[0]}", flush=True)
PY
)

for f in "${floods[@]}"; do
  start_agent
  case $f in
    idle)
      row idle "$(health)" "nothing"
      ;;
    sparse)
      truncate -s 20G "$work/p/sparse.log"
      ln -s /proc/self/pagemap "$work/p/pagemap.log"
      sleep 2
      t0=$(date +%s.%N)
      echo "2026-11-20 14:03:12 ERROR [detector] HV trip beside a sparse file" >> "$work/p/a.log"
      h=$(health)
      for _ in $(seq 300); do grep -q "HV trip" "$work/tg.log" && break; sleep 0.1; done
      delivered=$("$py" -c '
import json, sys
t0 = float(sys.argv[1])
at = [json.loads(l)["at"] for l in open(sys.argv[2]) if "HV trip" in l]
print(f"{at[0] - t0:.2f} s" if at else "not within 30 s")' "$t0" "$work/tg.log")
      # rchar: bytes through read(), holes included (a sparse file costs no disk reads).
      rchar=$(awk '/^rchar/ {print $2}' "/proc/$agent/io" 2>/dev/null || echo 0)
      row sparse "$h" "an ERROR line in another file delivered after $delivered; the agent had read $(mb $((rchar / 1024))) MB in all"
      ;;
    slow)
      start_flood "$SLOW" "$port" 300
      # Past the body timeout (10 s): the agent drops them, the flood opens them again.
      sleep 12
      h=$(health)
      opened=$(awk '/^OPENED/ {n=$2} END {print n}' "$work/flood.out")
      stop_flood
      row slow "$h" "300 slow bodies held; ${opened:-300} connections opened in all (dropped ones again)"
      ;;
    tokens)
      before=$(stat -c %s "$work/agent.log")
      start_flood "$TOKENS" "$port" 20
      h=$(health)
      wait "$flood" || true; flood=
      after=$(stat -c %s "$work/agent.log")
      reqs=$(awk '/^REQUESTS/ {print $2}' "$work/flood.out")
      row tokens "$h" "$reqs wrong tokens in 20 s ($((reqs / 20))/s); audit log $((after - before)) bytes"
      ;;
    idle_conns)
      start_flood "$IDLE" "$port" 1000
      h=$(health)
      stop_flood
      row idle_conns "$h" "1,000 idle connections held, opened again when dropped"
      ;;
    notify)
      start_flood "$NOTIFY" "$port" "$token" 24
      h=$(health)
      for _ in $(seq 1200); do grep -q '^ROUND' "$work/flood.out" && break; sleep 0.1; done
      rounds=$(grep -c '^ROUND' "$work/flood.out" || true)
      codes=$(awk '/^ROUND/ {$1=""; $2=""; print}' "$work/flood.out" | tr -s ' ' '\n' | sort -u | tr '\n' ' ')
      stop_flood
      row notify "$h" "$rounds round(s) of 24 × $(awk '/READY/ {print $2}' "$work/flood.out") MB; answers: ${codes% }"
      ;;
    metrics)
      "$py" - "$port" "$token" 10000 <<'PY'
import http.client, json, sys
port, token, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for i in range(n):
    c.request("PUT", "/api/alerts", body=json.dumps({"key": f"flood-{i}", "message": f"alert {i}"}),
              headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status in (200, 201), r.status
PY
      reset_peak
      start_flood "$METRICS" "$port"
      h=$(health)
      rate=$(awk '/^RATE/ {r=$2; s=$3} END {print r " req/s, " s " bytes each"}' "$work/flood.out")
      stop_flood
      row metrics "$h" "10,000 active alerts; GET /metrics at $rate"
      ;;
    *) echo "unknown flood $f" >&2; exit 2 ;;
  esac
  kill -0 "$agent" 2>/dev/null || { echo "the agent died in the flood $f" >&2; exit 1; }
  stop_agent
done
