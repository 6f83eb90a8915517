#!/usr/bin/env python3
"""tcp_gate.py - a TCP forwarder for tests that can cut a server off.

    tcp_gate.py --port PORT --upstream HOST:PORT --control FILE
                [--stats FILE] [--rate BYTES_PER_SECOND]

It listens on 127.0.0.1:PORT and forwards every connection to the
upstream server.  The control FILE contains the state and is read every
50 ms.  "closed" stops listening, so new connections get ECONNREFUSED,
and shuts down every open connection in both directions, so a request in
progress fails.  Any other content, or a missing file, opens the gate
again on the same port.  --stats rewrites FILE with JSON {"state", "connections",
"bytes_up", "bytes_down"} when a count changes; bytes_up counts what went
to the upstream.  --rate limits the bytes sent upstream per second, over
all connections, so that a test can act while an upload is in flight.
Prints one line when it listens, and one per state change.
"""

import argparse
import json
import os
import socket
import sys
import threading
import time

POLL_SECONDS = 0.05
BLOCK = 64 * 1024


class Gate:
    """The listener, the live connections and the counters."""

    def __init__(self, args):
        host, _, port = args.upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.port = args.port
        self.control = args.control
        self.stats_path = args.stats
        self.rate = args.rate
        self.lock = threading.Lock()
        self.sockets = set()
        self.counts = {"connections": 0, "bytes_up": 0, "bytes_down": 0}
        self.listener = None
        self.state = None
        self.next_send = time.monotonic()
        self.stats_dirty = True

    def requested_state(self):
        try:
            with open(self.control) as f:
                text = f.read().strip()
        except FileNotFoundError:
            text = ""
        return "closed" if text == "closed" else "open"

    def open_listener(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(POLL_SECONDS)
        self.listener = sock

    def close_gate(self):
        if self.listener:
            self.listener.close()
            self.listener = None
        with self.lock:
            live = list(self.sockets)
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def count(self, name, amount):
        with self.lock:
            self.counts[name] += amount
            self.stats_dirty = True

    def write_stats(self):
        with self.lock:
            if not self.stats_path or not self.stats_dirty:
                return
            data = dict(self.counts, state=self.state)
            self.stats_dirty = False
        tmp = self.stats_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.stats_path)

    def throttle(self, size):
        """Sleep so that upstream bytes stay within --rate."""
        if not self.rate:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_send)
            self.next_send = start + size / self.rate
        if start > now:
            time.sleep(start - now)

    def pump(self, src, dst, name):
        try:
            while True:
                block = src.recv(BLOCK)
                if not block:
                    break
                if name == "bytes_up":
                    self.throttle(len(block))
                dst.sendall(block)
                self.count(name, len(block))
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def serve(self, client):
        try:
            server = socket.create_connection(self.upstream, timeout=10)
            server.settimeout(None)
        except OSError:
            client.close()
            return
        client.settimeout(None)
        with self.lock:
            self.sockets.update((client, server))
        self.count("connections", 1)
        up = threading.Thread(target=self.pump,
                              args=(client, server, "bytes_up"), daemon=True)
        up.start()
        self.pump(server, client, "bytes_down")
        up.join()
        with self.lock:
            self.sockets.difference_update((client, server))
        client.close()
        server.close()

    def run(self):
        while True:
            state = self.requested_state()
            if state != self.state:
                if state == "open":
                    self.open_listener()
                else:
                    self.close_gate()
                self.state = state
                self.stats_dirty = True
                print("tcp_gate: %s on 127.0.0.1:%d" % (state, self.port),
                      flush=True)
            self.write_stats()
            if not self.listener:
                time.sleep(POLL_SECONDS)
                continue
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.serve, args=(client,),
                             daemon=True).start()


def main():
    parser = argparse.ArgumentParser(prog="tcp_gate.py")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, metavar="HOST:PORT")
    parser.add_argument("--control", required=True, metavar="FILE")
    parser.add_argument("--stats", metavar="FILE")
    parser.add_argument("--rate", type=float, default=0,
                        metavar="BYTES_PER_SECOND")
    args = parser.parse_args()
    host = args.upstream.rpartition(":")[0]
    if host not in ("127.0.0.1", "localhost"):
        sys.exit("tcp_gate.py: the upstream must be on 127.0.0.1, not %r"
                 % host)
    try:
        Gate(args).run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
