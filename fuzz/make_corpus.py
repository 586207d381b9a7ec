#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target into fuzz/corpus/<target>/.

The seeds are the project's own examples: the protocol fixtures, config.example.json and
the config and API examples of the README and DESIGN.md. They are made here rather than
committed so that a changed fixture is a changed seed; the corpus the fuzzer grows from
them stays out of git (fuzz/.gitignore).

    python3 fuzz/make_corpus.py
"""

import json
import pathlib

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
CORPUS = FUZZ / "corpus"


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    (folder / f"seed-{name}").write_bytes(data)


def line_grammar():
    # Flag byte: bits 0-1 encoding (0 auto, 1 utf-8, 2 windows-1251), bit 2 the fixed
    # rules, bit 3 a rule from the first three lines (pattern, key template, event).
    for f in sorted((ROOT / "fixtures").glob("*.log")):
        data = f.read_bytes()
        encoding = 2 if f.name == "cp1251.log" else 0
        write("line_grammar", f.stem, bytes([encoding]) + data)
        write("line_grammar", f.stem + "-rules", bytes([encoding | 4]) + data)
    rules_log = (ROOT / "fixtures" / "rules.log").read_bytes()
    head = b"HV trip on channel (?P<ch>\\d+)\nhv:$ch\nhv_trip\n"
    write("line_grammar", "input-rule", bytes([8]) + head + rules_log)
    head = b"(?i)vacuum (?P<message>lost.*)\n\nignore\n"
    write("line_grammar", "input-ignore", bytes([1 | 8]) + head + rules_log)
    # A key template over a capture the pattern does not have: it expands to nothing.
    head = b"ERROR (?P<m>x)?\n$source\ncustom\n"
    write("line_grammar", "input-empty-key", bytes([8]) + head + rules_log)


LEGACY = """{ "mail": { "user": "sonix-bot", "password": "secret", "port": 25, "server": "smtp.example.org",
            "recipients": ["a@example.org", "b@example.org"] },
  "telegram": { "bot-id": "123456:ABCdef", "channel-id": "-1001234567890" } }
"""

ROUTED = {
    "instrument": "IN5",
    "mail": {
        "server": "smtp.example.org",
        "port": 587,
        "tls": "starttls",
        "from": "in5@example.org",
        "scopes": {"default": ["a@example.org"], "night": ["b@example.org"]},
        "default_scope": "default",
    },
    "telegram": {
        "bot-id": "123456:ABCdef",
        "scopes": {"default": "-1001234567890", "ops": "@in5_ops"},
    },
    "watch": [{"path": "protocol/*.log", "encoding": "windows-1251", "mode": "poll",
               "poll_interval_ms": 2000}],
    "rules": [{"name": "hv", "pattern": "HV trip on channel (?P<ch>\\d+)",
               "event": "hv_trip", "severity": "PROBLEM", "key": "hv:$ch"}],
    "routes": {
        "alarm_major": [{"service": "mail"}, {"service": "telegram", "scope": "ops"}],
        "hv_trip": [{"service": "telegram", "scope": "default"}],
    },
    "throttle": {"repeat_interval": "10m", "per_minute": {"mail": 5, "telegram": 20}},
    "api": {"listen": "127.0.0.1:8767"},
    "state_dir": ".protowatch",
}


def config_loader():
    write("config_loader", "example", (ROOT / "config.example.json").read_text("utf-8"))
    write("config_loader", "legacy", LEGACY)
    write("config_loader", "legacy-crlf-bom", "\ufeff" + LEGACY.replace("\n", "\r\n"))
    write("config_loader", "routed", json.dumps(ROUTED, indent=2, ensure_ascii=False))
    write("config_loader", "routed-tabs", json.dumps(ROUTED, indent="\t"))
    write("config_loader", "routed-flat", json.dumps(ROUTED))
    # A key written twice: the loader reads the last one, the editor must agree.
    write("config_loader", "duplicate-key", """{
  "telegram": {"bot-id": "123456:ABCdef", "scopes": {"default": "@chan_a", "ops": "@chan_b"}},
  "routes": {
    "alarm_major": [{"service": "telegram", "scope": "default"}],
    "alarm_major": [{"service": "telegram", "scope": "ops"}]
  }
}
""")
    write("config_loader", "empty-routes",
          json.dumps({"telegram": {"bot-id": "1:x", "channel-id": "@ch"}, "routes": {}}))


def api_bodies():
    bodies = {
        "alert": {"key": "x", "message": "y"},
        "alert-full": {"key": "hv", "message": "HV trip", "details": "ch 7", "severity": "PROBLEM",
                       "ttl": 3600, "machine_id": "in5", "actions": ["__resend", "__snooze"],
                       "data": {"snooze_s": 600}, "id": 3, "times_seen": 2},
        "notify-plain": {"event": "message", "message": "sample 3 done"},
        "notify-rich": {"event": "sample_done", "severity": "minor", "message": {
            "text": [{"text": "Sample "}, {"text": "3", "bold": True},
                     {"text": " done", "italic": True, "color": "green"}],
            "tags": ["in5", "scan"],
            "attachments": [{"filename": "plot.png", "data_base64": "iVBORw0KGgo="}]}},
        "notify-text": {"event": "message", "message": {"text": "Образец 3 готов 🧪"}},
    }
    for name, body in bodies.items():
        write("api_bodies", name, json.dumps(body, ensure_ascii=False))


def telegram_render():
    # Byte 0: bits 0-1 severity, 2 digest, 3 repeat, 4 details, 5 source, 6 small
    # limit (byte 1). Fields split by U+001E: message, tags, details, instrument, event.
    sep = "\x1e"
    tb = (ROOT / "fixtures" / "traceback_long.log").read_text("utf-8")
    seeds = {
        "plain": (3, 0, "HV trip on channel 7" + sep + sep + sep + "IN5"),
        "rich": (3 | 32, 0, "Sample \x013\x01 \x02done\x02 \x03<red> & 🧪\x03" + sep + "in5,scan"
                 + sep + sep + "IN5"),
        "traceback": (3 | 16, 0, "ValueError: bad value" + sep + sep + tb + sep + "IN5"),
        "long-small": (3 | 16 | 64, 20, "line & <x> Ж 😀\n\x04\x3f" + sep + "a,b" + sep
                       + tb + sep + "IN5" + sep + "custom_event"),
        "digest": (2 | 4 | 8, 9, "first <one>" + sep + sep + "second line\nmore" + sep + "IN5"),
    }
    for name, (flags, size, text) in seeds.items():
        write("telegram_render", name, bytes([flags, size]) + text.encode("utf-8"))


if __name__ == "__main__":
    line_grammar()
    config_loader()
    api_bodies()
    telegram_render()
    for target in sorted(CORPUS.iterdir()):
        print(f"{target.name}: {len(list(target.iterdir()))} files")
