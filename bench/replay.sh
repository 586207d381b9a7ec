#!/usr/bin/env bash
# Replay throughput against public tools, in one hyperfine run:
#
#   protowatch replay   on a generated protocol of SIZE_MB (1 GiB) and on its first SLICE_MB
#   grep -cE            the same alarm patterns, on the whole file
#   fail2ban-regex      a generated filter with the same patterns, on the slice
#   swatchdog --examine a generated config with the same patterns, on the slice
#
# fail2ban and swatch read at a few MB/s, so they get the slice (64 MiB, the same seed: the
# slice is the big file's beginning); compare MB/s, not seconds. The protocol comes from
# bench/make_protocol.py (seeded) and the files live in a temporary folder removed at the
# end. Debian's hyperfine, fail2ban, swatch and python3 are installed if missing.
#
# Usage: bash bench/replay.sh        (SIZE_MB, SLICE_MB, RUNS can be set in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1074}   # 1 GiB in decimal megabytes, as make_protocol.py counts
SLICE_MB=${SLICE_MB:-67}   # 64 MiB
RUNS=${RUNS:-3}

need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v fail2ban-regex >/dev/null || need+=(fail2ban)
command -v swatchdog >/dev/null || need+=(swatch)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked -q
bin=$PWD/target/release/protowatch
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A config of no rules and no services: the default grammar alone.
echo "{}" > "$work/config.json"
python3 bench/make_protocol.py "$SIZE_MB" > "$work/protocol.log"
python3 bench/make_protocol.py "$SLICE_MB" > "$work/slice.log"

# The default grammar's events, as one extended regex each tool understands: ERROR
# lines, WARNING level 1 (both languages), interlocks, scan start and end, tracebacks.
alarm='(ERROR|ERR|ОШИБКА)[ |]'
warn='(WARNING|WARN|ПРЕДУПРЕЖДЕНИЕ) \| 1 \|'
scan='measurement (started|start|finished|completed|done)|начало измерения|конец измерения'
other='[Ii]nterlock|Traceback \(most recent call last\)'
pattern="$alarm|$warn|$scan|$other"

# fail2ban wants a time on every line it counts and an id in every failregex; the id is
# the source or the message. `%%` is the filter file's escape for `%`.
cat > "$work/filter.conf" <<CONF
[Definition]
datepattern = ^%%Y-%%m-%%d %%H:%%M:%%S(?:\.%%f)?
failregex = (?:ERROR|ERR|ОШИБКА)[ |].*?\[<F-ID>[^\]]+</F-ID>\]
            (?:WARNING|WARN|ПРЕДУПРЕЖДЕНИЕ) \| 1 \| \[<F-ID>[^\]]+</F-ID>\]
            <F-ID>(?:$scan).*</F-ID>
            <F-ID>(?:$other).*</F-ID>
CONF
# swatch: one watchfor per pattern, each echoing the line (to /dev/null here).
{
  for p in "$alarm" "$warn" "$scan" "$other"; do
    printf 'watchfor /%s/\n  echo normal\n\n' "${p//\//\\/}"
  done
} > "$work/swatch.conf"

# What each tool counts, so the comparison is seen to be fair.
echo "== lines matched"
echo "protowatch events: $("$bin" --config "$work/config.json" replay --json "$work/slice.log" 2>/dev/null \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(e["count"] for e in d["events"].values()))' 2>/dev/null || echo '?') (slice)"
echo "grep -cE:          $(grep -cE "$pattern" "$work/slice.log") (slice)"
echo "fail2ban-regex:    $(fail2ban-regex "$work/slice.log" "$work/filter.conf" 2>/dev/null | awk '/^Lines:/{print $6; exit}') (slice)"
echo "swatchdog:         $(swatchdog --config-file="$work/swatch.conf" --examine="$work/slice.log" 2>/dev/null | grep -c '^2026') (slice)"

echo "== load before: $(uptime)"
size=$(stat -c %s "$work/protocol.log"); slice=$(stat -c %s "$work/slice.log")
# The files are read once before the runs, so every tool reads from the page cache.
# (grep writes its count to a file: with its output on /dev/null, GNU grep stops at the
# first match.)
cat "$work/protocol.log" "$work/slice.log" > /dev/null
hyperfine --runs "$RUNS" --warmup 1 --export-json "$work/results.json" --style basic \
  -n "protowatch replay (${SIZE_MB} MB)" "'$bin' --config '$work/config.json' replay '$work/protocol.log' > /dev/null 2>&1" \
  -n "protowatch replay (${SLICE_MB} MB)" "'$bin' --config '$work/config.json' replay '$work/slice.log' > /dev/null 2>&1" \
  -n "grep -cE (${SIZE_MB} MB)" "grep -cE '$pattern' '$work/protocol.log' > '$work/grep.count'" \
  -n "fail2ban-regex (${SLICE_MB} MB)" "fail2ban-regex '$work/slice.log' '$work/filter.conf' > /dev/null 2>&1" \
  -n "swatchdog --examine (${SLICE_MB} MB)" "swatchdog --config-file='$work/swatch.conf' --examine='$work/slice.log' > /dev/null 2>&1"
echo "== load after: $(uptime)"

# Throughput from each median and the bytes that command read, in hyperfine's order.
python3 - "$work/results.json" "$size" "$slice" "$size" "$slice" "$slice" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
sizes = [int(x) for x in sys.argv[2:]]
rows = [(r["command"], r["median"], r["user"] + r["system"], b / r["median"] / 1e6)
        for r, b in zip(res, sizes)]
ours = rows[0][3]
print("| command | median wall | user+sys (mean) | MB/s | replay (1 GiB) is × faster |")
print("|---|---|---|---|---|")
for name, med, cpu, mbps in rows:
    print(f"| {name} | {med:.2f} s | {cpu:.2f} s | {mbps:.0f} | {ours / mbps:.1f} |")
PY
