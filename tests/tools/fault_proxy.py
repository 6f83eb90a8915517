#!/usr/bin/env python3
"""fault_proxy.py - an HTTP/1.1 proxy on 127.0.0.1 in front of a test S3
server that injects faults into a share of the requests.

    fault_proxy.py --port PORT --upstream 127.0.0.1:PORT --stats FILE
                   [--control FILE] [--seed N] [--mode forward|refuse]
                   [--rate FAULT=SHARE ...] [--kind KIND ...]
                   [--delay-ms MS] [--cut-bytes N] [--verbose]

Connections from the client are kept alive, and so is the connection to
the upstream that each of them uses.  Request and response bodies may
have a Content-Length or be chunked; the proxy reads each body whole
before it passes it on, with a Content-Length.  An "Expect: 100-continue"
request gets its 100 Continue from the proxy.

Faults, each injected into the share of requests that --rate gives it:

  error500  respond 500 InternalError (an S3 XML error body), without
            forwarding the request
  error503  respond 503 SlowDown, without forwarding
  truncate  forward, then send the response headers, with the full
            Content-Length, and only part of the body, and close the
            connection (a response without a body loses the end of its
            headers instead)
  reset     reset the connection (RST, from a close with SO_LINGER 0)
            in the middle of the request body, before forwarding, when
            the request has one.  Otherwise forward, and reset in the
            middle of the response body, or of the headers of a response
            without a body.
  cut       forward, send only the first N bytes of the response (N from
            --cut-bytes, else drawn at random), and close the connection
  delay     wait --delay-ms before forwarding

Faults go only to requests of the kinds given with --kind (GET, HEAD,
LIST, PUT, COPY, DELETE, MULTIPART or OTHER, as s3_http.request_kind
names them), by default to all.  A request gets at most one fault.  The
draw for a request comes from a random generator seeded with --seed, the
request line, its Range header and how many times the same request came
before, so that it does not depend on the order of parallel requests.
The seed is printed at start (a random one unless --seed is given) to
reproduce a run.

In mode "refuse" the server looks unreachable: every new connection is
accepted and reset at once, and so is every open connection when its
next request arrives.  Mode "forward" (the default) forwards requests
and injects the faults.

--control FILE names a JSON object that changes the settings at run time.
It is read at start and again whenever its modification time or size
changes (checked every 50 ms); write it to a temporary file and rename
it, so that the proxy never reads half a file.  Keys: "mode", "rates"
({"FAULT": SHARE, ...}, replacing those of --rate), "kinds" (a list, as
--kind), "delay_ms", "cut_bytes", and "hold_after" ({"kind": KIND,
"count": N, "only": BOOL}): once N requests of KIND have gone through
since the file last changed, every later request waits, before it is
forwarded, until the file changes again.  With "only" true, only the
later requests of KIND wait.  A key the file lacks keeps its value from the
command line.  A file that cannot be used is reported on stderr, and the
settings stay as they were.

After every request, FILE gets JSON: {"seed", "mode", "requests",
"counts": {KIND: n}, "faults": {FAULT: n}, "statuses": {"200": n, ...}
(responses forwarded from the upstream, by status), "connections",
"refused" (connections reset in mode refuse), "held" (requests that
waited in a hold), "holding" (requests waiting now), "reloads" (times
the settings were read from the control file)}.
"""

import argparse
import collections
import json
import os
import random
import socket
import struct
import sys
import threading
import time

from s3_http import KINDS, request_kind, s3_error_body, write_json

FAULTS = ("error500", "error503", "truncate", "reset", "cut", "delay")
MODES = ("forward", "refuse")
POLL_SECONDS = 0.05
RECV_BLOCK = 256 * 1024
MAX_HEAD = 64 * 1024
UPSTREAM_TIMEOUT = 120
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade", "expect", "content-length",
}


class ProtocolError(Exception):
    """A peer sent something that is not HTTP/1.1 as expected."""


class Stream:
    """Buffered reads from a socket, without socket.makefile(), so that a
    close of the socket takes effect at once."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(RECV_BLOCK)
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self):
        """Return the start line and header lines of a message, or None
        at end of stream before its first byte."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD:
                raise ProtocolError("header block over %d bytes" % MAX_HEAD)
            if not self.fill():
                if self.buf:
                    raise ProtocolError("stream ended inside a header block")
                return None
        end = self.buf.index(b"\r\n\r\n")
        head = self.buf[:end].decode("latin-1")
        self.buf = self.buf[end + 4:]
        lines = head.split("\r\n")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError("invalid header line %r" % line)
            headers.append((name.strip(), value.strip()))
        return lines[0], headers

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise ProtocolError("stream ended %d bytes before the end"
                                    " of a body" % (n - len(self.buf)))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_line(self):
        while b"\r\n" not in self.buf:
            if not self.fill():
                raise ProtocolError("stream ended inside a chunked body")
        end = self.buf.index(b"\r\n")
        line, self.buf = self.buf[:end], self.buf[end + 2:]
        return line

    def read_chunked(self):
        parts = []
        while True:
            size = int(self.read_line().split(b";")[0].strip(), 16)
            if size == 0:
                while self.read_line():
                    pass        # trailer fields
                return b"".join(parts)
            parts.append(self.read_exact(size))
            self.read_line()

    def read_to_end(self):
        while self.fill():
            pass
        data, self.buf = self.buf, b""
        return data


def header(headers, name):
    """The value of the first header called name (any case), or None."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def is_chunked(headers):
    return "chunked" in (header(headers, "transfer-encoding") or "").lower()


def read_body(stream, headers):
    if is_chunked(headers):
        return stream.read_chunked()
    length = header(headers, "content-length")
    return stream.read_exact(int(length)) if length else b""


def reset(sock):
    """Close sock so that the peer gets a RST."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def end_head(start_line, headers):
    lines = [start_line] + ["%s: %s" % item for item in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Request:
    """One request from the client: its line, headers and body."""

    def __init__(self, start_line, headers):
        parts = start_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ProtocolError("invalid request line %r" % start_line)
        self.method, self.target, self.version = parts
        self.headers = headers
        self.body = b""
        lower = {name.lower(): value for name, value in headers}
        self.kind = request_kind(self.method, self.target, lower)
        self.keep_alive = self.version == "HTTP/1.1" and \
            (header(headers, "connection") or "").lower() != "close"

    def has_body(self):
        return is_chunked(self.headers) or \
            int(header(self.headers, "content-length") or 0) > 0

    def identity(self):
        """The request line and range, which name the request for the
        fault draw."""
        return "%s %s %s" % (self.method, self.target,
                             header(self.headers, "range") or "")

    def encode(self):
        headers = [(n, v) for n, v in self.headers
                   if n.lower() not in HOP_BY_HOP]
        if self.body or self.method in ("PUT", "POST"):
            headers.append(("Content-Length", str(len(self.body))))
        line = "%s %s HTTP/1.1" % (self.method, self.target)
        return end_head(line, headers) + self.body


class Settings:
    """What the proxy does now: the command line, then the control
    file."""

    def __init__(self, mode, rates, delay_ms, cut_bytes, kinds):
        self.mode = mode
        self.rates = rates
        self.delay_ms = delay_ms
        self.cut_bytes = cut_bytes
        self.kinds = kinds
        self.hold_kind = None
        self.hold_count = 0
        self.hold_only = False

    def updated(self, data):
        """Return a copy with the keys of data applied.  Raise ValueError,
        naming the key, when data cannot be used."""
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object, got %r" % (data,))
        new = Settings(self.mode, dict(self.rates), self.delay_ms,
                       self.cut_bytes, self.kinds)
        for key, value in data.items():
            if key == "mode":
                if value not in MODES:
                    raise ValueError("mode %r is not one of %s"
                                     % (value, ", ".join(MODES)))
                new.mode = value
            elif key == "rates":
                if not isinstance(value, dict):
                    raise ValueError("rates must be an object of"
                                     " FAULT: SHARE")
                new.rates = check_rates(value)
            elif key == "delay_ms":
                new.delay_ms = check_count(key, value)
            elif key == "cut_bytes":
                new.cut_bytes = None if value is None else \
                    check_count(key, value)
            elif key == "kinds":
                new.kinds = check_kinds(value)
            elif key == "hold_after":
                if not isinstance(value, dict) or \
                        value.get("kind") not in KINDS:
                    raise ValueError("hold_after must be {\"kind\": KIND,"
                                     " \"count\": N} with KIND one of "
                                     + ", ".join(KINDS))
                new.hold_kind = value["kind"]
                new.hold_count = check_count("hold_after.count",
                                             value.get("count", 0))
                new.hold_only = value.get("only", False)
                if not isinstance(new.hold_only, bool):
                    raise ValueError("hold_after.only must be true or"
                                     " false")
            else:
                raise ValueError("unknown key %r; expected mode, rates,"
                                 " kinds, delay_ms, cut_bytes or"
                                 " hold_after" % key)
        return new


def check_count(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("%s must be a whole number >= 0, not %r"
                         % (name, value))
    return value


def check_kinds(kinds):
    """Return kinds as a tuple.  Raise ValueError unless it is a list of
    request kinds."""
    if not isinstance(kinds, list) or not all(k in KINDS for k in kinds):
        raise ValueError("kinds must be a list of %s, not %r"
                         % (", ".join(KINDS), kinds))
    return tuple(kinds)


def check_rates(rates):
    """Return rates as {FAULT: share}.  Raise ValueError unless every
    fault is known and the shares are in [0, 1] and add up to 1 at most."""
    checked = {}
    for fault, share in rates.items():
        if fault not in FAULTS:
            raise ValueError("unknown fault %r; expected one of %s"
                             % (fault, ", ".join(FAULTS)))
        if isinstance(share, bool) or not isinstance(share, (int, float)) \
                or not 0 <= share <= 1:
            raise ValueError("share of %s must be a number from 0 to 1,"
                             " not %r" % (fault, share))
        checked[fault] = float(share)
    if sum(checked.values()) > 1 + 1e-9:
        raise ValueError("the shares add up to %g, more than 1"
                         % sum(checked.values()))
    return checked


class Proxy:
    """The listener, the settings and the counters."""

    def __init__(self, args, settings):
        host, _, port = args.upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.port = args.port
        self.seed = args.seed
        self.verbose = args.verbose
        self.stats_path = args.stats
        self.control = args.control
        self.base = settings
        self.settings = settings
        self.control_stamp = None
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.generation = 0         # settings reloads, for held requests
        self.hold_seen = 0          # hold_kind requests since a reload
        self.seen = collections.Counter()
        self.counts = {kind: 0 for kind in KINDS}
        self.faults = {fault: 0 for fault in FAULTS}
        self.statuses = collections.Counter()
        self.requests = 0
        self.connections = 0
        self.refused = 0
        self.held = 0
        self.holding = 0
        self.reloads = 0

    def log(self, text):
        print("fault_proxy: " + text, file=sys.stderr, flush=True)

    # ---- settings

    def read_control(self):
        """Apply the control file when it changed since the last look."""
        try:
            st = os.stat(self.control)
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self.control_stamp:
            return
        self.control_stamp = stamp
        try:
            if stamp is None:
                new = self.base
            else:
                with open(self.control, encoding="utf-8") as f:
                    text = f.read()
                new = self.base.updated(json.loads(text) if text.strip()
                                        else {})
        except (OSError, ValueError) as e:
            self.log("control file %s not applied: %s" % (self.control, e))
            return
        with self.lock:
            old = self.settings
            self.settings = new
            self.generation += 1
            self.reloads += 1
            self.hold_seen = 0
            self.changed.notify_all()
            self.write_stats()
        if old.mode != new.mode:
            self.log("mode %s" % new.mode)
        hold = "%d %s" % (new.hold_count, new.hold_kind) \
            if new.hold_kind else "none"
        self.log("settings from %s: rates %s for %s, delay %d ms,"
                 " cut_bytes %s, hold after %s"
                 % (self.control, new.rates, ",".join(new.kinds),
                    new.delay_ms, new.cut_bytes, hold))

    def watch_control(self):
        while True:
            time.sleep(POLL_SECONDS)
            self.read_control()

    # ---- counters

    def write_stats(self):
        """Rewrite the stats file.  Lock held."""
        write_json(self.stats_path, {
            "seed": self.seed, "mode": self.settings.mode,
            "requests": self.requests, "counts": self.counts,
            "faults": self.faults, "statuses": dict(self.statuses),
            "connections": self.connections, "refused": self.refused,
            "held": self.held, "holding": self.holding,
            "reloads": self.reloads})

    def count(self, **amounts):
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)
            self.write_stats()

    def record(self, req, fault, status):
        with self.lock:
            self.requests += 1
            self.counts[req.kind] += 1
            if fault:
                self.faults[fault] += 1
            if status is not None:
                self.statuses[str(status)] += 1
            self.write_stats()

    # ---- decisions

    def draw(self, req, settings):
        """Return the fault for req, or None, and a generator for the
        details of the fault."""
        identity = req.identity()
        if req.kind not in settings.kinds:
            return None, random.Random(0)
        with self.lock:
            occurrence = self.seen[identity]
            self.seen[identity] += 1
        rng = random.Random("%d\n%s\n%d" % (self.seed, identity, occurrence))
        roll = rng.random()
        for fault in FAULTS:
            share = settings.rates.get(fault, 0.0)
            if roll < share:
                return fault, rng
            roll -= share
        return None, rng

    def wait_hold(self, req):
        """Wait while a hold applies, count req against the hold, and
        return the settings to use."""
        waited = False
        with self.lock:
            while True:
                s = self.settings
                if not s.hold_kind or self.hold_seen < s.hold_count or \
                        (s.hold_only and req.kind != s.hold_kind) or \
                        s.mode == "refuse":
                    break
                if not waited:
                    waited = True
                    self.held += 1
                    self.holding += 1
                    self.write_stats()
                    self.log("holding %s" % req.identity())
                generation = self.generation
                while generation == self.generation:
                    self.changed.wait()
            if waited:
                self.holding -= 1
                self.write_stats()
            if s.hold_kind == req.kind:
                self.hold_seen += 1
        return s

    # ---- one connection

    def serve(self, client):
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up = Upstream(self.upstream)
        try:
            self.serve_requests(client, Stream(client), up)
        except (OSError, ProtocolError, ValueError) as e:
            self.log("connection closed after an error: %s" % e)
            client.close()
        finally:
            up.close()

    def serve_requests(self, client, stream, up):
        while True:
            head = stream.read_head()
            if head is None:
                client.close()
                return
            req = Request(*head)
            if (header(req.headers, "expect") or "").lower() == \
                    "100-continue":
                client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            settings = self.wait_hold(req)
            if settings.mode == "refuse":
                self.count(refused=1)
                reset(client)
                return
            fault, rng = self.draw(req, settings)
            if fault and fault != "delay":
                self.log("%s: %s" % (fault, req.identity()))
            if fault == "reset" and req.has_body():
                length = int(header(req.headers, "content-length") or 0)
                stream.read_exact(rng.randrange(length) if length else 0)
                self.record(req, fault, None)
                reset(client)
                return
            req.body = read_body(stream, req.headers)
            if fault in ("error500", "error503"):
                self.record(req, fault, None)
                send_error(client, req, fault)
                if not req.keep_alive:
                    client.close()
                    return
                continue
            if fault == "delay":
                time.sleep(settings.delay_ms / 1000.0)
            response = up.exchange(req)
            self.record(req, fault, response.status)
            if self.verbose:
                self.log("%s -> %d" % (req.identity(), response.status))
            if fault in ("truncate", "reset", "cut"):
                send_broken(client, req, response, fault, rng,
                            settings.cut_bytes)
                return
            client.sendall(response.encode(req))
            if not req.keep_alive:
                client.close()
                return

    def run(self):
        if self.control:
            self.read_control()
            threading.Thread(target=self.watch_control, daemon=True).start()
        with self.lock:
            self.write_stats()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.log("listening on 127.0.0.1:%d, forwarding to %s:%d, seed %d,"
                 " mode %s, rates %s" % (self.port, self.upstream[0],
                                         self.upstream[1], self.seed,
                                         self.settings.mode,
                                         self.settings.rates))
        while True:
            client, _ = listener.accept()
            if self.settings.mode == "refuse":
                self.count(connections=1, refused=1)
                reset(client)
                continue
            self.count(connections=1)
            threading.Thread(target=self.serve, args=(client,),
                             daemon=True).start()


class Response:
    """One response of the upstream, its body read whole."""

    def __init__(self, status_line, headers, body):
        self.status_line = status_line
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ProtocolError("invalid status line %r" % status_line)
        self.status = int(parts[1])
        self.headers = headers
        self.body = body

    def head(self, req):
        headers = [(n, v) for n, v in self.headers
                   if n.lower() not in HOP_BY_HOP]
        length = header(self.headers, "content-length")
        if req.method != "HEAD" and self.status not in (204, 304):
            length = str(len(self.body))
        if length is not None:
            headers.append(("Content-Length", length))
        if not req.keep_alive:
            headers.append(("Connection", "close"))
        return end_head(self.status_line, headers)

    def encode(self, req):
        return self.head(req) + self.body


class Upstream:
    """The kept-alive connection to the upstream of one client
    connection."""

    def __init__(self, address):
        self.address = address
        self.sock = None
        self.stream = None

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None
        self.stream = None

    def connect(self):
        self.sock = socket.create_connection(self.address,
                                             timeout=UPSTREAM_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stream = Stream(self.sock)

    def exchange(self, req):
        """Send req and return the response.  A kept-alive connection
        that the upstream closed meanwhile is replaced once."""
        reused = self.sock is not None
        if not reused:
            self.connect()
        try:
            self.sock.sendall(req.encode())
            head = self.stream.read_head()
        except OSError:
            head = None
        if head is None:
            if not reused:
                raise ProtocolError("the upstream closed the connection"
                                    " without a response")
            self.close()
            self.connect()
            self.sock.sendall(req.encode())
            head = self.stream.read_head()
            if head is None:
                raise ProtocolError("the upstream closed the connection"
                                    " without a response")
        status_line, headers = head
        while status_line.split(" ")[1].startswith("1"):
            status_line, headers = self.stream.read_head()
        status = int(status_line.split(" ")[1])
        close = (header(headers, "connection") or "").lower() == "close"
        if req.method == "HEAD" or status in (204, 304):
            body = b""
        elif is_chunked(headers) or header(headers, "content-length"):
            body = read_body(self.stream, headers)
        else:
            body = self.stream.read_to_end()
            close = True
        if close:
            self.close()
        return Response(status_line, headers, body)


def send_error(client, req, fault):
    status, reason, code, message = {
        "error500": (500, "Internal Server Error", "InternalError",
                     "We encountered an internal error. Please try again."),
        "error503": (503, "Slow Down", "SlowDown",
                     "Please reduce your request rate."),
    }[fault]
    body = s3_error_body(code, message)
    headers = [("Content-Type", "application/xml"),
               ("Content-Length", str(len(body)))]
    if not req.keep_alive:
        headers.append(("Connection", "close"))
    data = end_head("HTTP/1.1 %d %s" % (status, reason), headers)
    client.sendall(data if req.method == "HEAD" else data + body)


def send_broken(client, req, response, fault, rng, cut_bytes):
    """Send part of response, then close (truncate, cut) or reset."""
    head = response.head(req)
    body = response.body
    if fault == "cut":
        data = head + body
        n = cut_bytes if cut_bytes is not None else rng.randrange(len(data))
        data = data[:min(n, len(data) - 1)]
    elif body:
        data = head + body[:rng.randrange(len(body))]
    else:
        data = head[:rng.randrange(len(head))]
    client.sendall(data)
    if fault == "reset":
        reset(client)
        return
    try:
        client.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    client.close()


def parse_rate(text):
    fault, sep, share = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("expected FAULT=SHARE, not %r"
                                         % text)
    try:
        return fault, float(share)
    except ValueError:
        raise argparse.ArgumentTypeError("share of %s must be a number,"
                                         " not %r" % (fault, share))


def main():
    parser = argparse.ArgumentParser(
        prog="fault_proxy.py",
        description="HTTP proxy for tests that injects faults in front of"
                    " an S3 server on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True,
                        help="port to listen on at 127.0.0.1")
    parser.add_argument("--upstream", required=True, metavar="HOST:PORT",
                        help="the S3 server, on 127.0.0.1")
    parser.add_argument("--stats", required=True, metavar="FILE",
                        help="JSON file rewritten after every request")
    parser.add_argument("--control", metavar="FILE",
                        help="JSON file of settings, re-read when it"
                             " changes")
    parser.add_argument("--seed", type=int,
                        help="seed of the fault draws (default: random,"
                             " printed at start)")
    parser.add_argument("--mode", choices=MODES, default="forward")
    parser.add_argument("--rate", type=parse_rate, action="append",
                        default=[], metavar="FAULT=SHARE",
                        help="share of requests (0 to 1) that get FAULT,"
                             " one of " + ", ".join(FAULTS))
    parser.add_argument("--kind", action="append", choices=KINDS,
                        help="request kind that gets faults (repeatable;"
                             " default: every kind)")
    parser.add_argument("--delay-ms", type=int, default=1000,
                        help="wait of the delay fault (default 1000)")
    parser.add_argument("--cut-bytes", type=int, metavar="N",
                        help="bytes of a response that the cut fault"
                             " sends (default: drawn at random)")
    parser.add_argument("--verbose", action="store_true",
                        help="log every request to stderr")
    args = parser.parse_args()
    host = args.upstream.rpartition(":")[0]
    if host not in ("127.0.0.1", "localhost"):
        sys.exit("fault_proxy.py: the upstream must be on 127.0.0.1, not %r"
                 % host)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 32)
    try:
        settings = Settings(args.mode, check_rates(dict(args.rate)),
                            check_count("--delay-ms", args.delay_ms),
                            None if args.cut_bytes is None else
                            check_count("--cut-bytes", args.cut_bytes),
                            tuple(args.kind or KINDS))
    except ValueError as e:
        sys.exit("fault_proxy.py: %s" % e)
    try:
        Proxy(args, settings).run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
