#!/usr/bin/env python3
"""A stand-in Bot API for the benchmarks: answers every method with success and appends
one JSON line per request (method, arrival time, chat, text length) to --log.
`getUpdates` is held for its `timeout` and answered with no updates, as Telegram does
while nobody writes to the bot.

The tests have their own fake (tests/support); this one needs only Python's standard
library, so that the benchmark scripts stay runnable with Debian's python3.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    out = open(args.log, "a", buffering=1)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            method = self.path.rsplit("/", 1)[-1].lower()
            try:
                req = json.loads(body)
            except ValueError:
                req = {}
            record = {
                "method": method,
                "at": time.time(),
                "chat_id": req.get("chat_id"),
                "text": req.get("text", ""),
            }
            with lock:
                out.write(json.dumps(record) + "\n")
            if method == "getupdates":
                time.sleep(min(float(req.get("timeout") or 0), 50))
                self.answer({"ok": True, "result": []})
                return
            if method in ("deletewebhook", "setmycommands"):
                self.answer({"ok": True, "result": True})
                return
            self.answer(
                {
                    "ok": True,
                    "result": {
                        "message_id": 1,
                        "date": int(time.time()),
                        "chat": {"id": 1, "type": "private", "first_name": "op"},
                        "text": "ok",
                    },
                }
            )

        def answer(self, value):
            reply = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
