#!/usr/bin/env python3
"""latency_proxy.py - a TCP proxy on 127.0.0.1 that delays every byte by
a fixed time in each direction and counts the HTTP requests it carries.

    latency_proxy.py --port PORT --upstream 127.0.0.1:PORT
                     [--delay-ms MS] [--rate-mbps MBPS] --stats FILE

Each block read from one side is sent to the other side MS milliseconds
after it arrived, keeping order, so a request and its response each pay
MS (one round trip costs 2 x MS, and so does the TCP handshake seen by the
client's first byte).  With --rate-mbps, each direction of each
connection carries at most MBPS megabytes (10^6 bytes) a second, as a
link to a distant S3 region does per connection; without it bandwidth is
not limited.  At most QUEUE_MAX bytes wait in each direction, so a slow
side holds back the other as a TCP window would.  The client side of each
connection is parsed as HTTP/1.1 (Content-Length and chunked bodies) to
count requests by S3 kind (request_kind in tests/tools/s3_http.py): GET,
HEAD, LIST (GET of a bucket), PUT, COPY (PUT with x-amz-copy-source),
DELETE, MULTIPART (every request of a multipart upload, its abort too)
and OTHER.  Responses are not parsed.  FILE gets JSON {"counts": {...},
"requests": N, "connections": N}, rewritten at most every 50 ms after a
change.  The upstream must be on 127.0.0.1.
"""

import argparse
import collections
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tools"))
from s3_http import KINDS, request_kind, write_json  # noqa: E402

BLOCK = 256 * 1024
QUEUE_MAX = 16 * 1024 * 1024
FLUSH_SECONDS = 0.05
MAX_HEADER = 64 * 1024


class Stats:
    """Request counts by kind, written to a JSON file by a flush thread."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.counts = {kind: 0 for kind in KINDS}
        self.requests = 0
        self.connections = 0
        self.dirty = True
        threading.Thread(target=self.flush_loop, daemon=True).start()

    def add_request(self, kind):
        with self.lock:
            self.counts[kind] += 1
            self.requests += 1
            self.dirty = True

    def add_connection(self):
        with self.lock:
            self.connections += 1
            self.dirty = True

    def flush_loop(self):
        while True:
            self.write()
            time.sleep(FLUSH_SECONDS)

    def write(self):
        with self.lock:
            if not self.dirty:
                return
            data = {"counts": dict(self.counts), "requests": self.requests,
                    "connections": self.connections}
            self.dirty = False
        write_json(self.path, data)


class RequestCounter:
    """Incremental HTTP/1.1 request parser for one client stream.

    States: "head" collects the request line and headers, "body" skips
    Content-Length bytes, "chunk-size"/"chunk-data"/"trailer" walk a
    chunked body.  A stream it cannot parse is no longer counted.
    """

    def __init__(self, stats):
        self.stats = stats
        self.buf = b""
        self.state = "head"
        self.left = 0
        self.broken = False

    def feed(self, data):
        if self.broken:
            return
        self.buf += data
        try:
            while self.step():
                pass
        except (ValueError, IndexError):
            self.broken = True
            self.buf = b""

    def step(self):
        """Consume one unit from the buffer; False when it needs more."""
        if self.state == "head":
            return self.parse_head()
        if self.state == "body":
            take = min(self.left, len(self.buf))
            self.buf = self.buf[take:]
            self.left -= take
            if self.left == 0:
                self.state = "head"
                return True
            return False
        if self.state in ("chunk-size", "trailer"):
            end = self.buf.find(b"\r\n")
            if end < 0:
                return False
            line = self.buf[:end]
            self.buf = self.buf[end + 2:]
            if self.state == "trailer":
                if not line:
                    self.state = "head"
                return True
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                self.state = "trailer"
            else:
                self.left = size + 2
                self.state = "chunk-data"
            return True
        # chunk-data: the chunk's bytes and their CRLF.
        take = min(self.left, len(self.buf))
        self.buf = self.buf[take:]
        self.left -= take
        if self.left == 0:
            self.state = "chunk-size"
            return True
        return False

    def parse_head(self):
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEADER:
                raise ValueError("header too long")
            return False
        head = self.buf[:end].decode("latin-1")
        self.buf = self.buf[end + 4:]
        lines = head.split("\r\n")
        method, target = lines[0].split(" ")[:2]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.stats.add_request(request_kind(method, target, headers))
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.state = "chunk-size"
        else:
            self.left = int(headers.get("content-length", "0"))
            self.state = "body" if self.left else "head"
        return True


class DelayedPipe:
    """One direction of a connection: blocks leave `delay` after they
    arrived, in order."""

    def __init__(self, src, dst, delay, rate, counter=None):
        self.src, self.dst = src, dst
        self.delay = delay
        self.rate = rate            # bytes a second, 0: unlimited
        self.counter = counter
        self.queue = collections.deque()
        self.queued = 0
        self.cond = threading.Condition()
        self.done = False

    def read_loop(self):
        try:
            while True:
                block = self.src.recv(BLOCK)
                if not block:
                    break
                if self.counter:
                    self.counter.feed(block)
                self.put((time.monotonic() + self.delay, block))
        except OSError:
            pass
        self.put(None)

    def put(self, item):
        with self.cond:
            while item and self.queued >= QUEUE_MAX:
                self.cond.wait()
            self.queue.append(item)
            if item:
                self.queued += len(item[1])
            self.cond.notify_all()

    def send_loop(self):
        free_at = 0.0           # when the link has sent what it took
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                item = self.queue.popleft()
                if item:
                    self.queued -= len(item[1])
                self.cond.notify_all()
            if item is None:
                break
            due, block = item
            if self.rate:
                due = max(due, free_at)
                free_at = max(due, time.monotonic()) + len(block) / self.rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                self.dst.sendall(block)
            except OSError:
                break
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def direct_loop(self):
        """Without delay or rate limit: pass the bytes on at once, and
        through the kernel (splice) when nothing needs to see them."""
        try:
            if self.counter:
                while True:
                    block = self.src.recv(BLOCK)
                    if not block:
                        break
                    self.counter.feed(block)
                    self.dst.sendall(block)
            else:
                splice_all(self.src.fileno(), self.dst.fileno())
        except OSError:
            pass
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def start(self):
        if self.delay or self.rate:
            targets = [self.read_loop, self.send_loop]
        else:
            targets = [self.direct_loop]
        threads = [threading.Thread(target=t, daemon=True) for t in targets]
        for t in threads:
            t.start()
        return threads


def splice_all(src, dst):
    """Move bytes from socket src to socket dst through a pipe until src
    ends, without copying them into Python."""
    r, w = os.pipe()
    try:
        while True:
            n = os.splice(src, w, BLOCK)
            if n == 0:
                break
            while n:
                n -= os.splice(r, dst, n)
    finally:
        os.close(r)
        os.close(w)


def serve(client, upstream, delay, rate, stats):
    try:
        server = socket.create_connection(upstream, timeout=10)
        server.settimeout(None)
    except OSError:
        client.close()
        return
    stats.add_connection()
    for sock in (client, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    up = DelayedPipe(client, server, delay, rate, RequestCounter(stats))
    down = DelayedPipe(server, client, delay, rate)
    threads = up.start() + down.start()
    for t in threads:
        t.join()
    client.close()
    server.close()


def main():
    parser = argparse.ArgumentParser(prog="latency_proxy.py")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, metavar="HOST:PORT")
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--rate-mbps", type=float, default=0)
    parser.add_argument("--stats", required=True, metavar="FILE")
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        sys.exit("latency_proxy.py: the upstream must be on 127.0.0.1, "
                 "not %r" % host)
    stats = Stats(args.stats)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(128)
    print("latency_proxy: 127.0.0.1:%d -> %s, %g ms each way, %s"
          % (args.port, args.upstream, args.delay_ms,
             "%g MB/s per connection" % args.rate_mbps if args.rate_mbps
             else "no rate limit"), flush=True)
    try:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=serve,
                             args=(client, ("127.0.0.1", int(port)),
                                   args.delay_ms / 1000.0,
                                   args.rate_mbps * 1e6, stats),
                             daemon=True).start()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
