#!/usr/bin/python3
"""A mail catcher that stands in for Mailpit where no image registry is
reachable (CI). It keeps what arrives over SMTP in memory and answers the
part of Mailpit's HTTP API (v1) that tests use, with Mailpit's field names,
so a test runs unchanged against either:

    GET    /api/v1/messages            {"total", "unread", "count", "start", "tags",
                                        "messages": [{"ID", "MessageID", "From", "To",
                                        "Subject", "Created", "Size", ...}]}, newest first
    GET    /api/v1/message/{ID}        the message, with "Text" and "HTML"
    GET    /api/v1/message/{ID}/raw    the raw RFC 5322 message
    DELETE /api/v1/messages            every message, or those of {"IDs": [...]}
    GET    /                           a minimal HTML inbox
    GET    /livez, /readyz             200

`{ID}` may be `latest`, as in Mailpit. `mailpit readyz` exits 0 when the
HTTP side answers (the health check). Settings as Mailpit names them:
MP_SMTP_BIND_ADDR (0.0.0.0:1025), MP_UI_BIND_ADDR (0.0.0.0:8025),
MP_MAX_MESSAGES (500). No authentication, no TLS: a development tool on the
stack's own network. Nothing of a message is logged but its size.
"""

import html
import json
import os
import secrets
import signal
import sys
import threading
import urllib.request
from datetime import datetime, timezone
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_MESSAGE_BYTES = 10 * 1024 * 1024


def bind(variable, default):
    host, _, port = os.environ.get(variable, default).rpartition(":")
    return host or "0.0.0.0", int(port)


class Store:
    def __init__(self, limit):
        self.limit = limit
        self.lock = threading.Lock()
        self.messages = []  # oldest first

    def add(self, raw, envelope_to):
        headers = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
        to = addresses(headers.get_all("To")) or [{"Name": "", "Address": a} for a in envelope_to]
        sender = addresses(headers.get_all("From"))
        summary = {
            "ID": secrets.token_urlsafe(16),
            "MessageID": str(headers.get("Message-ID", "")).strip("<>"),
            "Read": False,
            "From": sender[0] if sender else None,
            "To": to,
            "Cc": addresses(headers.get_all("Cc")),
            "Bcc": [],
            "ReplyTo": addresses(headers.get_all("Reply-To")),
            "Subject": str(headers.get("Subject", "")),
            "Created": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "Username": "",
            "Tags": [],
            "Size": len(raw),
            "Attachments": 0,
            "Snippet": "",
        }
        with self.lock:
            self.messages.append((summary, raw))
            del self.messages[: max(0, len(self.messages) - self.limit)]
        return summary["ID"]

    def newest_first(self):
        with self.lock:
            return list(reversed(self.messages))

    def get(self, message_id):
        with self.lock:
            if message_id == "latest":
                return self.messages[-1] if self.messages else None
            return next((m for m in self.messages if m[0]["ID"] == message_id), None)

    def delete(self, ids=None):
        with self.lock:
            if ids:
                self.messages = [m for m in self.messages if m[0]["ID"] not in set(ids)]
            else:
                self.messages = []


def addresses(values):
    return [{"Name": name, "Address": address} for name, address in getaddresses([str(v) for v in values or []]) if address]


class SmtpHandler:
    def __init__(self, store):
        self.store = store

    async def handle_DATA(self, server, session, envelope):
        message_id = self.store.add(envelope.content, envelope.rcpt_tos)
        print(f"received message {message_id} ({len(envelope.content)} bytes)", flush=True)
        return "250 OK"


class Api(BaseHTTPRequestHandler):
    store = None
    server_version = "mail-catcher"

    def log_message(self, format, *args):
        pass  # paths only, but quiet: the SMTP side logs what arrives

    def send(self, status, body, content_type="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        parts = path.strip("/").split("/")
        if path in ("/livez", "/readyz"):
            return self.send(200, "ok", "text/plain")
        if path == "/api/v1/messages":
            params = dict(p.partition("=")[::2] for p in query.split("&") if p)
            start = int(params.get("start") or 0)
            limit = int(params.get("limit") or 50)
            messages = self.store.newest_first()
            page = [summary for summary, _ in messages[start : start + limit]]
            unread = sum(1 for summary, _ in messages if not summary["Read"])
            return self.send(
                200,
                {"total": len(messages), "unread": unread, "count": len(page), "start": start, "tags": [], "messages": page},
            )
        if len(parts) in (4, 5) and parts[:3] == ["api", "v1", "message"]:
            found = self.store.get(parts[3])
            if found is None:
                return self.send(404, "message not found", "text/plain")
            summary, raw = found
            if len(parts) == 5 and parts[4] == "raw":
                return self.send(200, raw, "text/plain; charset=utf-8")
            if len(parts) == 4:
                summary["Read"] = True
                return self.send(200, message(summary, raw))
        if path == "/":
            return self.send(200, inbox(self.store.newest_first()), "text/html; charset=utf-8")
        return self.send(404, "not found", "text/plain")

    def do_DELETE(self):
        if self.path.split("?")[0] != "/api/v1/messages":
            return self.send(404, "not found", "text/plain")
        length = int(self.headers.get("Content-Length") or 0)
        ids = None
        if 0 < length <= 1024 * 1024:
            try:
                ids = json.loads(self.rfile.read(length) or b"{}").get("IDs")
            except (ValueError, AttributeError):
                return self.send(400, "invalid JSON", "text/plain")
        self.store.delete(ids)
        return self.send(200, "ok", "text/plain")


def message(summary, raw):
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    text = parsed.get_body(preferencelist=("plain",))
    markup = parsed.get_body(preferencelist=("html",))
    return {
        **{k: summary[k] for k in ("ID", "MessageID", "From", "To", "Cc", "Bcc", "ReplyTo", "Subject", "Tags", "Size")},
        "ReturnPath": "",
        "Date": summary["Created"],
        "Text": text.get_content() if text is not None else "",
        "HTML": markup.get_content() if markup is not None else "",
        "Inline": [],
        "Attachments": [],
    }


def inbox(messages):
    rows = "".join(
        "<tr><td>{}</td><td>{}</td><td><a href=\"/api/v1/message/{}/raw\">{}</a></td></tr>".format(
            html.escape(summary["Created"]),
            html.escape(", ".join(a["Address"] for a in summary["To"])),
            html.escape(summary["ID"], quote=True),
            html.escape(summary["Subject"] or "(no subject)"),
        )
        for summary, _ in messages
    )
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Inbox</title></head><body>"
        f"<h1>Inbox ({len(messages)})</h1>"
        "<table><thead><tr><th>Received</th><th>To</th><th>Subject</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></body></html>"
    )


def readyz():
    _, port = bind("MP_UI_BIND_ADDR", "0.0.0.0:8025")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return 0 if answer.status == 200 else 1
    except OSError:
        return 1


def main():
    if sys.argv[1:] == ["readyz"]:
        sys.exit(readyz())

    from aiosmtpd.controller import Controller

    store = Store(int(os.environ.get("MP_MAX_MESSAGES", "500")))
    smtp_host, smtp_port = bind("MP_SMTP_BIND_ADDR", "0.0.0.0:1025")
    smtp = Controller(SmtpHandler(store), hostname=smtp_host, port=smtp_port, data_size_limit=MAX_MESSAGE_BYTES)
    smtp.start()
    Api.store = store
    http = ThreadingHTTPServer(bind("MP_UI_BIND_ADDR", "0.0.0.0:8025"), Api)
    http.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=http.shutdown).start())
    print(f"SMTP on {smtp_host}:{smtp_port}, HTTP on {http.server_address[0]}:{http.server_address[1]}", flush=True)
    try:
        http.serve_forever()
    except KeyboardInterrupt:
        pass
    smtp.stop()


if __name__ == "__main__":
    main()
