#!/usr/bin/env bash
# What a local caller can make the agent hold through its API: N idle connections (half
# of them with a request head that never ends), and what the agent does with them.
# Reports the agent's open descriptors and RSS (VmRSS) before, while the connections
# are held and after; how long until the agent dropped them (the header timeout); how
# long an authorised request took while they were held; and that a protocol line was
# still delivered (to a loopback Bot API) meanwhile.
#
# Usage: bash bench/api_limits.sh        (N can be set in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}

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
# The fake Bot API stops when its stdin closes: keep it open.
# The fake ends when its stdin closes; the keeper holds it open (and nothing of ours).
exec {keep}< <(exec sleep 100000 2> /dev/null)
keeper=$!
"$py" bench/fake_telegram.py --port "$tgport" --log "$work/tg.log" <&"$keep" > /dev/null &
tg=$!
mkdir -p "$work/p"
: > "$work/p/a.log"
cat > "$work/config.json" <<JSON
{
  "instrument": "BENCH",
  "telegram": {"bot-id": "123456:BENCH-token", "channel-id": "-100", "api-url": "http://127.0.0.1:$tgport"},
  "watch": [{"path": "p/*.log"}],
  "api": {"listen": "127.0.0.1:$port"}
}
JSON
prlimit --nofile=1024:1024 -- "$bin" --config "$work/config.json" run 2> "$work/agent.log" &
agent=$!
for _ in $(seq 100); do [ -s "$work/.protowatch/api.addr" ] && break; sleep 0.1; done
sleep 1
fds() { ls "/proc/$agent/fd" | wc -l; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$agent/status"; }
echo "agent under prlimit --nofile=1024; $N connections"
echo "before:  fds $(fds), RSS $(rss) KiB"
token=$(cat "$work/.protowatch/api-token")
AGENT=$agent "$py" - "$port" "$N" "$token" "$work/p/a.log" "$work/tg.log" <<'PY'
import http.client, os, socket, sys, time
port, n, token, log, tglog = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
agent = os.environ["AGENT"]
socks = []
t0 = time.monotonic()
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    if i % 2 == 0:
        s.sendall(b"GET /api/alerts HTTP/1.1\r\nHost: local")
    socks.append(s)
time.sleep(1)
held_fds = len(os.listdir(f"/proc/{agent}/fd"))
rss = [l.split()[1] for l in open(f"/proc/{agent}/status") if l.startswith("VmRSS")][0]
print(f"held:    fds {held_fds}, RSS {rss} KiB")
with open(log, "a") as f:
    f.write("2026-11-20 14:03:12 ERROR [detector] HV trip while the API is flooded\n")
t_line = time.monotonic()
delivered = None
while time.monotonic() - t_line < 30:
    if "HV trip" in open(tglog, errors="replace").read():
        delivered = time.monotonic() - t_line
        break
    time.sleep(0.01)
print(f"a protocol line meanwhile: delivered after {delivered:.3f} s" if delivered else "a protocol line meanwhile: NOT delivered within 30 s")
t_req = time.monotonic()
ok = None
while time.monotonic() - t_req < 60:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/api/alerts", headers={"Authorization": "Bearer " + token})
        ok = c.getresponse().status
        break
    except OSError:
        time.sleep(0.1)
print(f"an authorised GET /api/alerts: {ok} after {time.monotonic() - t_req:.2f} s")
for s in socks:
    s.settimeout(60)
closed = []
for s in socks:
    try:
        s.recv(1)
    except OSError:
        pass
    closed.append(time.monotonic() - t0)
closed.sort()
print(f"dropped by the agent: median {closed[len(closed)//2]:.1f} s, last {closed[-1]:.1f} s after opening")
for s in socks:
    s.close()
PY
sleep 1
echo "after:   fds $(fds), RSS $(rss) KiB"
