#!/usr/bin/python3
"""An HTTP/1.1 server that keeps a connection open between requests and closes it once
it has been idle for --idle seconds, as Apache (KeepAliveTimeout 5 s) and Node (5 s)
do. Prints `READY <port>`, then one JSON line per request: the client's port (two
requests on one connection share it), the path and the body. Answers 200 `{}`.
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, required=True)
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # socketserver: a read that waits longer than this ends the connection.
        timeout = args.idle

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode("utf-8", "replace")
            print(
                json.dumps(
                    {"peer_port": self.client_address[1], "path": self.path, "body": body}
                ),
                flush=True,
            )
            out = b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Ends when the test that started it goes away (stdin closes).
    sys.stdin.read()


if __name__ == "__main__":
    main()
