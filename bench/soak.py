#!/usr/bin/python3
"""The fault soak of issue "Speed and stamina": the release agent under every fault at
once, for DURATION seconds, then a check that nothing was lost, little was repeated,
nothing died and memory stayed flat. Run it through `bash bench/soak.sh`, which builds
the binary, installs what is missing and cleans up; this file is the timeline and the
accounting.

On the way, in one seeded timeline:
  - a writer appends uniquely numbered ERROR lines at RATE a second (some in two writes),
    each its own alert: the number is also spelled in letters, because the dedup key
    folds digits and would otherwise make all lines one alert;
  - rotations every 15-35 s, in turn: rename-and-create (plus a late line through the
    old handle), copy-and-truncate (once the agent has read the whole file),
    delete-and-recreate (once the agent has opened the file);
  - the agent SIGKILLed every 30-60 s and restarted 1-4 s later; in turn, while it is
    down, nothing else, the file rotated (renamed), nothing else, the file replaced
    (deleted and written anew);
  - the SMTP server down for OUTAGE s from 25 % of the run, the Bot API from 55 %, each
    back on its port;
  - a config edit every EDIT_EVERY s: a second mail or Telegram scope added to and
    removed from alarm_major's route with `protowatch routes`, or the throttle section
    rewritten by hand (repeat_interval and the mail pace).

Every line is its own message (pace 10,000 a minute: no digests), so each one can be
found by its number at each destination.

Usage: bench/soak.py BINARY WORKDIR  (settings from the environment, see soak.sh)
"""

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable


def env(name, default):
    return type(default)(os.environ.get(name, default))


DURATION = env("DURATION", 600.0)
RATE = env("RATE", 4.0)
OUTAGE = env("OUTAGE", 60.0)
EDIT_EVERY = env("EDIT_EVERY", 100.0)
DRAIN = env("DRAIN", 360.0)
SEED = env("SEED", random.randrange(1 << 32))
RSS_EVERY = 2.0
STARTED = []  # every process started, for the cleanup at exit
# The first start must find the folder empty (`start: end` skips what exists then).
MAIL_DEFAULT, MAIL_NIGHT = "ops@example.org", "night@example.org"
TG_DEFAULT, TG_NIGHT = "-100", "-200"


def log(msg):
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", flush=True)


def word(i):
    """The line's number in letters: a dedup key of its own."""
    return "".join(chr(97 + (i // 26**k) % 26) for k in range(4))


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A test server that prints READY on stdout; down and up again on the same port."""

    def __init__(self, name, argv, out):
        self.name, self.argv, self.out, self.proc = name, argv, out, None

    def start(self):
        readies = self.readies()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=open(self.out, "a"),
            stderr=open(f"{self.out}.err", "a"),
        )
        STARTED.append(self.proc)
        deadline = time.monotonic() + 20
        while self.readies() == readies:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                sys.exit(f"{self.name} did not start, see {self.out}.err")
            time.sleep(0.1)

    def readies(self):
        try:
            with open(self.out) as f:
                return sum(1 for l in f if l.startswith("READY"))
        except FileNotFoundError:
            return 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Agent:
    def __init__(self, binary, config, logfile):
        self.binary, self.config, self.logfile = binary, config, logfile
        self.proc = None
        self.lives = []  # per life: list of RSS samples in KiB
        self.unexpected_exits = []

    def start(self):
        with open(self.logfile, "a") as f:
            f.write(f"=== life {len(self.lives) + 1}\n")
        self.proc = subprocess.Popen(
            [self.binary, "--config", self.config, "run"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.logfile, "a"),
        )
        STARTED.append(self.proc)
        self.lives.append([])
        self.started = time.monotonic()

    def check_alive(self):
        if self.proc and self.proc.poll() is not None:
            self.unexpected_exits.append((len(self.lives), self.proc.returncode))
            log(f"agent exited by itself with {self.proc.returncode}; restarting")
            self.start()

    def kill(self):
        self.check_alive()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self):
        """A clean stop at the end: SIGTERM, and it must exit 0."""
        self.proc.terminate()
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def sample(self):
        # The first second is the process starting up (exec, loading), not its footprint.
        if not self.proc or time.monotonic() - self.started < 1:
            return
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for l in f:
                    # 0 while the child is between fork and exec.
                    if l.startswith("VmRSS:") and int(l.split()[1]) > 0:
                        self.lives[-1].append(int(l.split()[1]))
        except OSError:
            pass


class Writer:
    """Appends the numbered lines and rotates the file the ways instruments and
    logrotate do."""

    def __init__(self, folder, old, rng):
        self.folder, self.old, self.rng = folder, old, rng
        self.live = os.path.join(folder, "soak.log")
        self.n = 0
        self.rotated = 0
        self.f = open(self.live, "ab", buffering=0)

    def line(self, i):
        return f"ERROR [soak] line {i:06d} {word(i)} failed\n".encode()

    def write(self):
        data = self.line(self.n)
        self.n += 1
        if self.rng.random() < 0.2:
            # Half a line first, as buffered writers do now and then.
            cut = len(data) // 2
            self.f.write(data[:cut])
            time.sleep(0.01)
            self.f.write(data[cut:])
        else:
            self.f.write(data)

    def reopen(self):
        self.f.close()
        self.f = open(self.live, "ab", buffering=0)

    def rename(self, late_line=True):
        self.rotated += 1
        os.rename(self.live, f"{self.live}.{self.rotated}")
        if late_line:
            # The writer still holds the old file and appends once more.
            self.write()
        self.reopen()

    def copy_truncate(self):
        self.rotated += 1
        shutil.copy(self.live, os.path.join(self.old, f"soak-{self.rotated}.log"))
        os.truncate(self.live, 0)

    def delete(self):
        os.unlink(self.live)
        self.reopen()

    def close(self):
        self.f.close()


def checkpoint_lag(db, path):
    """Bytes of the live file the agent has not committed yet (None: unknown)."""
    try:
        st = os.stat(path)
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute(
                "SELECT offset FROM files WHERE device = ? AND inode = ?",
                (st.st_dev, st.st_ino),
            ).fetchone()
        finally:
            con.close()
    except (OSError, sqlite3.Error):
        return None
    return None if row is None else st.st_size - row[0]


def backlog(db, service):
    """Rows still queued for a service's default scope (None: unknown)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(
                "SELECT count(*) FROM outbox WHERE destination = ? AND dead = 0",
                (f"{service}:default",),
            ).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return None


def delivered(smtp_out, tg_log):
    """Per destination: how often each line number was shown, and the digests seen."""
    shown = {d: {} for d in ("mail:default", "mail:night", "telegram:default", "telegram:night")}
    digests = {d: 0 for d in shown}
    num = re.compile(r"line (\d{6}) [a-z]{4} failed")
    more = re.compile(r"\+([\d,]+) more|repeated ([\d,]+) times|repeated once")

    def add(dest, text):
        for m in set(num.findall(text)):
            shown[dest][int(m)] = shown[dest].get(int(m), 0) + 1
        if more.search(text):
            digests[dest] += 1

    try:
        for l in open(smtp_out):
            if not l.startswith("{"):
                continue
            r = json.loads(l)
            text = next((p["text"] for p in r["parts"] if p["content_type"] == "text/plain"), "")
            for rcpt in r["rcpt_tos"]:
                add("mail:night" if rcpt == MAIL_NIGHT else "mail:default", text)
    except FileNotFoundError:
        pass
    try:
        for l in open(tg_log):
            r = json.loads(l)
            if r["method"] != "sendmessage":
                continue
            chat = str(r["chat_id"])
            add("telegram:night" if chat == TG_NIGHT else "telegram:default", r["text"] or "")
    except FileNotFoundError:
        pass
    return shown, digests


def edit_throttle(config, fast):
    """The hand edit of an operator: the file rewritten, then swapped in whole."""
    with open(config) as f:
        c = json.load(f)
    c["throttle"]["repeat_interval"] = 0 if fast else "10m"
    c["throttle"]["per_minute"]["mail"] = 5000 if fast else 10000
    tmp = config + ".new"
    with open(tmp, "w") as f:
        json.dump(c, f, indent=2)
    os.replace(tmp, config)


def main():
    global T0
    binary, work = sys.argv[1], sys.argv[2]
    T0 = time.monotonic()
    rng = random.Random(SEED)
    log(f"SEED={SEED} DURATION={DURATION:g} RATE={RATE:g} OUTAGE={OUTAGE:g} EDIT_EVERY={EDIT_EVERY:g}")
    folder, old = os.path.join(work, "p"), os.path.join(work, "old")
    os.makedirs(folder)
    os.makedirs(old)
    smtp_port, tg_port, api_port = free_port(), free_port(), free_port()
    smtp_out, tg_log = os.path.join(work, "smtp.out"), os.path.join(work, "tg.log")
    smtp = Server("smtp", [PY, os.path.join(ROOT, "tests/support/smtp_server.py"), "--port", str(smtp_port)], smtp_out)
    tg = Server("telegram", [PY, os.path.join(ROOT, "bench/fake_telegram.py"), "--port", str(tg_port), "--log", tg_log], os.path.join(work, "tg.out"))
    config = os.path.join(work, "config.json")
    with open(config, "w") as f:
        json.dump(
            {
                "instrument": "SOAK",
                "mail": {"server": "127.0.0.1", "port": smtp_port, "tls": "none", "timeout_s": 10,
                         "recipients": [MAIL_DEFAULT], "scopes": {"night": [MAIL_NIGHT]}},
                "telegram": {"bot-id": "123456:SOAK-token", "channel-id": TG_DEFAULT, "timeout_s": 10,
                             "api-url": f"http://127.0.0.1:{tg_port}", "scopes": {"night": TG_NIGHT}},
                # Renamed rotations keep matching, so one rotated while the agent is down is
                # found again by its identity; copies go to a folder no glob matches.
                "watch": [{"path": "p/*.log*", "poll_interval_ms": 200}],
                "routes": {"alarm_major": [{"service": "mail"}, {"service": "telegram"}]},
                # No digests: every line its own message, so each can be checked by number.
                "throttle": {"repeat_interval": "10m", "per_minute": {"mail": 10000, "telegram": 10000}},
                "api": {"listen": f"127.0.0.1:{api_port}"},
            },
            f,
            indent=2,
        )
    db = os.path.join(work, ".protowatch", "protowatch.db")
    smtp.start()
    tg.start()
    agent = Agent(binary, config, os.path.join(work, "agent.log"))
    agent.start()
    deadline = time.monotonic() + 30
    while not os.path.exists(db):
        if time.monotonic() > deadline or agent.proc.poll() is not None:
            sys.exit(f"the agent did not start, see {agent.logfile}")
        time.sleep(0.1)
    time.sleep(1)
    writer = Writer(folder, old, rng)

    def caught_up(limit=20.0):
        """Waits (writing nothing) until the agent has committed the whole live file."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            agent.check_alive()
            if checkpoint_lag(db, writer.live) == 0:
                return True
            time.sleep(0.1)
        return False

    def following(limit=20.0):
        """Waits until the agent has taken up the live file (its checkpoint is stored):
        from then on its open handle can read what the file still holds."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            agent.check_alive()
            if checkpoint_lag(db, writer.live) is not None:
                return True
            time.sleep(0.1)
        return False

    start = T0 = time.monotonic()
    now = lambda: time.monotonic() - start
    next_line = 0.0
    next_rss = 0.0
    next_kill = rng.uniform(30, 60)
    next_rotation = rng.uniform(15, 35)
    next_edit = EDIT_EVERY / 2
    kill_kinds = ["plain", "rotate-while-down", "plain", "replace-while-down"]
    rot_kinds = ["rename-and-create", "copy-and-truncate", "delete-and-recreate"]
    edits = [
        ("routes enable alarm_major --service mail --scope night", None),
        ("throttle rewritten: repeat_interval 0, mail pace 5000", True),
        ("routes enable alarm_major --service telegram --scope night", None),
        ("routes disable alarm_major --service mail --scope night", None),
        ("throttle rewritten: repeat_interval 10m, mail pace 10000", False),
        ("routes disable alarm_major --service telegram --scope night", None),
    ]
    outages = [(smtp, 0.25 * DURATION), (tg, 0.55 * DURATION)]
    service = {"smtp": "mail", "telegram": "telegram"}
    down = {}
    recovering = {}  # server name -> when it came back, until its backlog is delivered
    counts = {"kills": 0, "rotations": {}, "kill_kinds": {}, "edits": [], "outages": {}}
    no_kill_before = 0.0

    while now() < DURATION:
        t = now()
        if t >= next_rss:
            agent.sample()
            next_rss = t + RSS_EVERY
        for server, at in outages:
            if server.name not in down and at <= t:
                log(f"{server.name} down")
                server.stop()
                down[server.name] = t
            elif down.get(server.name) is not None and t >= down[server.name] + OUTAGE:
                server.start()
                counts["outages"][server.name] = f"{server.name} {down[server.name]:.0f}-{t:.0f} s"
                log(f"{server.name} up again on its port")
                down[server.name] = None
                recovering[server.name] = t
        for name, since in list(recovering.items()):
            if backlog(db, service[name]) == 0:
                counts["outages"][name] += f" (backlog delivered {t - since:.0f} s after)"
                log(f"{service[name]} backlog delivered, {t - since:.0f} s after {name} came back")
                del recovering[name]
        if t >= next_edit:
            what, fast = edits[len(counts["edits"]) % len(edits)]
            if fast is None:
                r = subprocess.run([binary, "--config", config] + what.split(),
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f"`protowatch {what}` failed: {r.stderr}")
            else:
                edit_throttle(config, fast)
            counts["edits"].append(f"{t:.0f} s {what}")
            log(f"edit: {what}")
            next_edit = t + EDIT_EVERY
            # The running agent is to apply each edit (it looks once a second and waits
            # for the file to stay unchanged), not a restart after a kill.
            no_kill_before = max(no_kill_before, now() + 5)
        if t >= next_rotation:
            kind = rot_kinds[sum(counts["rotations"].values()) % len(rot_kinds)]
            if kind == "copy-and-truncate" and not caught_up():
                # Lines the agent has not read when the file is emptied are gone for any
                # reader: copy-and-truncate waits until it has read them, as a careful
                # logrotate would; try again shortly.
                next_rotation = now() + 2
                continue
            if kind == "delete-and-recreate" and not following():
                # A file deleted before the agent opened it (just after a restart) is
                # gone for any reader.
                next_rotation = now() + 2
                continue
            if kind == "rename-and-create":
                writer.rename()
            elif kind == "copy-and-truncate":
                writer.copy_truncate()
            else:
                writer.delete()
                # Unread lines of a deleted file live only in the agent's open handle:
                # killed before reading them, no one could. Give it time to read.
                no_kill_before = now() + 5
            counts["rotations"][kind] = counts["rotations"].get(kind, 0) + 1
            log(f"rotation: {kind} (line {writer.n})")
            next_rotation = now() + rng.uniform(15, 35)
        if t >= next_kill and t >= no_kill_before:
            kind = kill_kinds[counts["kills"] % len(kill_kinds)]
            if kind == "replace-while-down":
                # The old file disappears while the agent is down: what it had not read of
                # it is gone for any reader, so it must have read it all first.
                if not caught_up():
                    log("the agent has not read the whole file before its replacement: lines may be lost")
            agent.kill()
            counts["kills"] += 1
            counts["kill_kinds"][kind] = counts["kill_kinds"].get(kind, 0) + 1
            if kind == "rotate-while-down":
                writer.rename(late_line=rng.random() < 0.5)
            elif kind == "replace-while-down":
                writer.delete()
            down_for = rng.uniform(1, 4)
            log(f"kill {counts['kills']} ({kind}, line {writer.n}), down for {down_for:.1f} s")
            restart_at = now() + down_for
            while now() < restart_at:
                writer.write()
                time.sleep(1 / RATE)
            agent.start()
            next_kill = now() + rng.uniform(30, 60)
        agent.check_alive()
        if t >= next_line:
            writer.write()
            next_line += 1 / RATE
            if next_line < now():
                next_line = now()
        time.sleep(max(0.0, min(next_line, next_rss) - now()))

    writer.close()
    lines = writer.n
    for server, _ in outages:
        if server.name in down and down[server.name] is not None:
            server.start()
            counts["outages"][server.name] = f"{server.name} {down[server.name]:.0f}-{now():.0f} s"
    log(f"writer stopped after {lines} lines; draining")
    # The drain: until every line reached both destinations, or DRAIN s.
    drain_start = now()
    while now() - drain_start < DRAIN:
        agent.check_alive()
        agent.sample()
        shown, _ = delivered(smtp_out, tg_log)
        if all(len(shown[d]) >= lines for d in ("mail:default", "telegram:default")):
            break
        time.sleep(RSS_EVERY)
    drained = now() - drain_start
    # Anything still in flight settles; more samples of the last life.
    for _ in range(5):
        agent.sample()
        time.sleep(RSS_EVERY)
    dead = subprocess.run([binary, "--config", config, "outbox", "list", "--dead", "--json"],
                          capture_output=True, text=True)
    queued = subprocess.run([binary, "--config", config, "outbox", "list", "--json"],
                            capture_output=True, text=True)
    exit_code = agent.stop()
    smtp.stop()
    tg.stop()

    shown, digests = delivered(smtp_out, tg_log)
    failures = []
    kills = counts["kills"]
    print()
    print(f"seed {SEED}, {DURATION:g} s, {lines} lines at {RATE:g}/s, drained in {drained:.0f} s after the writer stopped")
    print(f"kills: {kills} ({', '.join(f'{k} {v}' for k, v in counts['kill_kinds'].items())})")
    print(f"rotations while running: {', '.join(f'{k} {v}' for k, v in counts['rotations'].items())}")
    print(f"outages: {'; '.join(counts['outages'].values())}")
    print(f"config edits: {len(counts['edits'])}")
    for e in counts["edits"]:
        print(f"  {e}")
    for dest in ("mail:default", "telegram:default"):
        got = shown[dest]
        missing = [i for i in range(lines) if i not in got]
        dups = sum(n - 1 for n in got.values())
        dup_lines = sorted(i for i, n in got.items() if n > 1)
        print(f"{dest}: {len(got)}/{lines} lines, {sum(got.values())} deliveries, {dups} duplicates "
              f"(lines {dup_lines[:20]}{' …' if len(dup_lines) > 20 else ''}), {digests[dest]} digests")
        if missing:
            failures.append(f"{dest}: {len(missing)} lines missing, first {missing[:20]}")
        if dups > kills:
            failures.append(f"{dest}: {dups} duplicates for {kills} kills")
        if digests[dest]:
            failures.append(f"{dest}: {digests[dest]} digests, which hide lines from this check")
    for dest in ("mail:night", "telegram:night"):
        print(f"{dest} (routed for part of the run): {len(shown[dest])} lines")
    dead_rows = [l for l in dead.stdout.splitlines() if l.strip()]
    queued_rows = [l for l in queued.stdout.splitlines() if l.strip()]
    print(f"dead rows: {len(dead_rows)}; still queued: {len(queued_rows)}")
    if dead.returncode != 0 or dead_rows:
        failures.append(f"dead rows: {dead.stdout}{dead.stderr}")
    if queued_rows:
        failures.append(f"{len(queued_rows)} rows still queued")
    if exit_code != 0:
        failures.append(f"the agent's clean stop exited {exit_code}")
    if agent.unexpected_exits:
        failures.append(f"the agent exited by itself: {agent.unexpected_exits}")
    with open(agent.logfile, errors="replace") as f:
        panics = [l for l in f if "panicked" in l]
    with open(agent.logfile, errors="replace") as f:
        applied = sum(1 for l in f if "config changed: applied" in l)
    print(f"edits applied by the running agent: {applied} of {len(counts['edits'])}")
    if applied != len(counts["edits"]):
        failures.append(f"{len(counts['edits'])} config edits, {applied} applied while running")
    if panics:
        failures.append(f"{len(panics)} panics in the agent's log, first: {panics[0].strip()}")

    print("RSS per agent life (MiB: first / max / last, samples):")
    maxima = []
    for i, s in enumerate(agent.lives, 1):
        if not s:
            continue
        maxima.append(max(s))
        print(f"  life {i:2d}: {s[0] / 1024:5.1f} / {max(s) / 1024:5.1f} / {s[-1] / 1024:5.1f}  ({len(s)})")
    if len(maxima) >= 4:
        third = max(1, len(maxima) // 3)
        early, late = max(maxima[:third]), max(maxima[-third:])
        print(f"  max of the first {third} lives {early / 1024:.1f} MiB, of the last {third} {late / 1024:.1f} MiB")
        # Flat: the last lives, with more files, alerts and rows behind them, may not need
        # more than a fifth more than the first (plus 4 MiB for allocator noise).
        if late > early * 1.2 + 4096:
            failures.append(f"memory grows across lives: {early} KiB -> {late} KiB")
    last = agent.lives[-1]
    if len(last) >= 20:
        # The last life is the longest (the drain); within it too, no steady climb.
        q = len(last) // 4
        a, b = sum(last[q:2 * q]) / q, sum(last[-q:]) / q
        print(f"  last life: mean {a / 1024:.1f} MiB in its second quarter, {b / 1024:.1f} MiB in its last")
        if b > a * 1.2 + 4096:
            failures.append(f"memory grows within the last life: {a:.0f} KiB -> {b:.0f} KiB")
    print()
    if failures:
        for f in failures:
            print(f"FAILED: {f}")
        sys.exit(1)
    print("soak passed")


if __name__ == "__main__":
    T0 = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    finally:
        # Whatever way the run ends, nothing it started outlives it.
        for p in STARTED:
            if p.poll() is None:
                p.kill()
                p.wait()
