#!/usr/bin/env python3
"""HTTP reverse proxy for tests that checks the SigV4 signature of every
S3 request by recomputing it with botocore, and counts requests by kind.

    sigv4_proxy.py --port PORT --upstream HOST:PORT --access-key KEY
                   --secret-key SECRET --region REGION --stats FILE
                   [--slowdown N] [--stall N]

It listens on 127.0.0.1 only.  After every request it rewrites FILE with
JSON: {"counts": {"GET": n, ...}, "requests": n, "mismatches": [...],
"signed_headers": [every header name seen in a SignedHeaders list]}.
A mismatch records the request line, the signature received and the one
expected, and the canonical request; never the secret key.  Bodies are
streamed in both directions and connections are kept alive (HTTP/1.1).
With --slowdown N the first N requests get "503 SlowDown" without being
forwarded (they are still checked and counted), to test client retries.
With --stall N the first N requests get no response at all for
STALL_SECONDS, after which the connection is closed, to test timeouts.
"""

import argparse
import hashlib
import http.client
import http.server
import re
import socketserver
import sys
import threading
import time

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from s3_http import KINDS, request_kind, s3_error_body, write_json

CHUNK = 64 * 1024
STALL_SECONDS = 10
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade",
}
AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*"
    r"SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)$")


class Stats:
    """Request counts and signature mismatches, written to a JSON file."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.counts = {kind: 0 for kind in KINDS}
        self.requests = 0
        self.mismatches = []
        self.slowdowns_left = 0
        self.stalls_left = 0
        self.signed_headers = set()
        self.write()

    def take_fault(self, name):
        """Return True while injected faults of this kind remain
        (name: "slowdowns" or "stalls")."""
        with self.lock:
            left = getattr(self, name + "_left")
            if left <= 0:
                return False
            setattr(self, name + "_left", left - 1)
            return True

    def record(self, kind, mismatch, signed_headers):
        with self.lock:
            self.signed_headers.update(signed_headers)
            self.counts[kind] += 1
            self.requests += 1
            if mismatch:
                self.mismatches.append(mismatch)
            self.write()

    def write(self):
        data = {"counts": self.counts, "requests": self.requests,
                "mismatches": self.mismatches,
                "signed_headers": sorted(self.signed_headers)}
        write_json(self.path, data)


def expected_signature(args, method, path, headers, signed_names, amz_date):
    """Return (signature, canonical request) computed by botocore from
    the headers the client listed as signed."""
    creds = Credentials(args.access_key, args.secret_key)
    auth = S3SigV4Auth(creds, "s3", args.region)
    host = headers.get("host", "")
    request = AWSRequest(method=method, url="http://" + host + path)
    for name in signed_names:
        values = headers.get_all(name) or []
        for value in values:
            request.headers.add_header(name, value)
    request.context["timestamp"] = amz_date
    canonical = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical)
    return auth.signature(string_to_sign, request), canonical


def check_signature(args, method, path, headers):
    """Return None when the Authorization header is what botocore
    computes for this request, else a description of the mismatch."""
    line = f"{method} {path}"
    auth = headers.get("authorization")
    if not auth:
        return {"request": line, "error": "missing Authorization header"}
    match = AUTH_RE.match(auth.strip())
    if not match:
        return {"request": line, "error": "malformed Authorization header"}
    credential, signed, received = match.groups()
    parts = credential.split("/")
    amz_date = headers.get("x-amz-date", "")
    scope = f"{amz_date[:8]}/{args.region}/s3/aws4_request"
    if parts[0] != args.access_key or "/".join(parts[1:]) != scope:
        return {"request": line, "error": "wrong credential scope",
                "credential_scope": "/".join(parts[1:]),
                "expected_scope": scope}
    names = signed.split(";")
    for required in ("host", "x-amz-date", "x-amz-content-sha256"):
        if required not in names:
            return {"request": line,
                    "error": f"header {required} not signed"}
    expected, canonical = expected_signature(args, method, path, headers,
                                             names, amz_date)
    if expected != received:
        return {"request": line, "received": received,
                "expected": expected, "canonical_request": canonical}
    return None


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sigv4-proxy"

    def log_message(self, format, *args):  # noqa: A002 - base signature
        if self.server.args.verbose:
            super().log_message(format, *args)

    def upstream(self):
        conn = getattr(self, "_upstream", None)
        if conn is None:
            host, port = self.server.args.upstream.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
            self._upstream = conn
        return conn

    def drop_upstream(self):
        conn = getattr(self, "_upstream", None)
        if conn is not None:
            conn.close()
            self._upstream = None

    def do_GET(self):
        self.forward()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def read_body_chunks(self):
        """Yield the request body as it arrives (Content-Length or
        chunked)."""
        length = self.headers.get("content-length")
        if length is not None:
            left = int(length)
            while left:
                data = self.rfile.read(min(CHUNK, left))
                if not data:
                    raise ConnectionError("request body cut short")
                left -= len(data)
                yield data
            return
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n",
                                                        b""):
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()

    def send_upstream(self, conn):
        """Forward the request line, headers and body, and return the
        SHA-256 of the body."""
        conn.putrequest(self.command, self.path, skip_host=True,
                        skip_accept_encoding=True)
        chunked = self.headers.get("content-length") is None and \
            "chunked" in self.headers.get("transfer-encoding", "").lower()
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP:
                conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        digest = hashlib.sha256()
        for data in self.read_body_chunks():
            digest.update(data)
            if chunked:
                conn.send(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                conn.send(data)
        if chunked:
            conn.send(b"0\r\n\r\n")
        return digest.hexdigest()

    def send_downstream(self, resp):
        """Stream the upstream response back to the client."""
        self.send_response_only(resp.status, resp.reason)
        length = resp.getheader("content-length")
        for name, value in resp.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        no_body = self.command == "HEAD" or resp.status in (204, 304) or \
            100 <= resp.status < 200
        chunked = length is None and not no_body
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if no_body:
            resp.read()
            return
        while True:
            data = resp.read(CHUNK)
            if not data:
                break
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def send_s3_error(self, status, reason, code, message):
        """Drain the request body and respond with an S3 <Error>."""
        for _ in self.read_body_chunks():
            pass
        body = s3_error_body(code, message)
        self.send_response(status, reason)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def record(self, kind, mismatch):
        match = AUTH_RE.match(self.headers.get("authorization", "").strip())
        signed = match.group(2).split(";") if match else []
        self.server.stats.record(kind, mismatch, signed)

    def forward(self):
        args = self.server.args
        mismatch = check_signature(args, self.command, self.path,
                                   self.headers)
        kind = request_kind(self.command, self.path, self.headers)
        if self.server.stats.take_fault("slowdowns"):
            self.record(kind, mismatch)
            self.send_s3_error(503, "Slow Down", "SlowDown",
                               "Please reduce your request rate.")
            return
        if mismatch and args.reject:
            self.record(kind, mismatch)
            self.send_s3_error(403, "Forbidden", "SignatureDoesNotMatch",
                               "The request signature we calculated does"
                               " not match the signature you provided.")
            return
        if self.server.stats.take_fault("stalls"):
            self.record(kind, mismatch)
            time.sleep(STALL_SECONDS)
            self.close_connection = True
            return
        try:
            conn = self.upstream()
            try:
                body_sha256 = self.send_upstream(conn)
                resp = conn.getresponse()
            except (ConnectionError, http.client.HTTPException, OSError):
                # A kept-alive upstream connection may have closed.
                self.drop_upstream()
                raise
            payload = self.headers.get("x-amz-content-sha256", "")
            if not mismatch and payload != UNSIGNED_PAYLOAD and \
                    payload != body_sha256:
                mismatch = {"request": f"{self.command} {self.path}",
                            "error": "x-amz-content-sha256 is not the"
                                     " SHA-256 of the body",
                            "received": payload, "expected": body_sha256}
            self.record(kind, mismatch)
            self.send_downstream(resp)
            if resp.will_close:
                self.drop_upstream()
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            self.record(kind, mismatch)
            self.log_error("forwarding %s %s failed: %s", self.command,
                           self.path, e)
            self.close_connection = True


class ProxyServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True,
                        help="port to listen on at 127.0.0.1")
    parser.add_argument("--upstream", required=True,
                        help="S3 server as HOST:PORT")
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--stats", required=True,
                        help="JSON file rewritten after every request")
    parser.add_argument("--slowdown", type=int, default=0, metavar="N",
                        help="respond to the first N requests with 503"
                             " SlowDown")
    parser.add_argument("--stall", type=int, default=0, metavar="N",
                        help="leave the first N requests without a"
                             f" response for {STALL_SECONDS} s")
    parser.add_argument("--reject", action="store_true",
                        help="answer 403 SignatureDoesNotMatch to a badly"
                             " signed request, as S3 does")
    parser.add_argument("--verbose", action="store_true",
                        help="log every request to stderr")
    args = parser.parse_args()

    server = ProxyServer(("127.0.0.1", args.port), ProxyHandler)
    server.args = args
    server.stats = Stats(args.stats)
    server.stats.slowdowns_left = args.slowdown
    server.stats.stalls_left = args.stall
    print(f"sigv4_proxy: listening on 127.0.0.1:{args.port},"
          f" forwarding to {args.upstream}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
