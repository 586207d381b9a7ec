#!/usr/bin/python3
"""A real SMTP server for the tests: aiosmtpd on loopback.

Prints `READY <port>` once it accepts connections, then one JSON line per message it
received: envelope sender, envelope recipients, the raw message, and whether the session
was encrypted and authenticated. Options turn on STARTTLS (required) or TLS from the
first byte (--wrapper) and AUTH (required), or make it refuse every recipient with a
permanent 550.
"""

import argparse
import base64
import email
import email.policy
import json
import signal
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Recorder:
    def __init__(self, reject):
        self.reject = reject

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        # Parsed by Python's own e-mail package: an independent check that the headers
        # and MIME parts are encoded correctly.
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = [
            {"content_type": part.get_content_type(), "text": part.get_content()}
            for part in msg.walk()
            if not part.is_multipart() and part.get_filename() is None
        ]
        attachments = [
            {
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "base64": base64.b64encode(part.get_payload(decode=True)).decode(),
            }
            for part in msg.walk()
            if not part.is_multipart() and part.get_filename() is not None
        ]
        record = {
            "subject": str(msg["Subject"]),
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "parts": parts,
            "attachments": attachments,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", errors="replace"),
            "tls": session.ssl is not None,
            "peer_port": session.peer[1] if session.peer else 0,
            "auth_user": (
                session.auth_data.login.decode()
                if session.authenticated and session.auth_data
                else None
            ),
        }
        print(json.dumps(record), flush=True)
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--auth", help="user:password required for AUTH")
    ap.add_argument("--reject", action="store_true")
    ap.add_argument("--wrapper", action="store_true", help="TLS from the first byte")
    ap.add_argument(
        "--idle-timeout", type=float, help="close a connection idle this many seconds"
    )
    args = ap.parse_args()

    kwargs = {}
    wrapper_ctx = None
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        if args.wrapper:
            wrapper_ctx = ctx
        else:
            kwargs.update(tls_context=ctx, require_starttls=True)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            if ok:
                return AuthResult(success=True, auth_data=auth_data)
            # handled=False: let aiosmtpd answer 535 itself.
            return AuthResult(success=False, handled=False)

        kwargs.update(authenticator=authenticator, auth_required=True)
        # aiosmtpd counts only STARTTLS as encryption; a wrapped session is encrypted too.
        kwargs.update(auth_require_tls=bool(args.cert) and not args.wrapper)

    if args.idle_timeout:
        kwargs.update(timeout=args.idle_timeout)
    port = args.port or free_port()
    controller = Controller(
        Recorder(args.reject),
        hostname="127.0.0.1",
        port=port,
        ssl_context=wrapper_ctx,
        **kwargs,
    )
    controller.start()
    print(f"READY {port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # Exit when the test that started us goes away (stdin closes).
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
