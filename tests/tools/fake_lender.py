#!/usr/bin/env python3
"""fake_lender.py - serve the preload library's "open" request, for tests.

usage: fake_lender.py SOCKET STATE_DIR

Listens on the Unix socket SOCKET and replies to each connection as
fs/preload/protocol.h defines, one connection at a time, until killed.
Before each reply it reads the reply mode from STATE_DIR/mode (one word;
"ok" when the file is missing), and it appends the request line to
STATE_DIR/requests.  Modes:

  ok        copy the bytes of the descriptor that came with the request
            into STATE_DIR/copies/N (mode 0444) and lend it read-only
  no        reply "no not cached"
  error     reply as a daemon without the open command does
  bigger    lend a copy one byte longer than the file
  writable  lend the copy opened for reading and writing
  nofd      reply "ok SIZE" without a descriptor
  hangup    close the connection without a reply
  garbage   reply "maybe"
"""
import os
import socket
import sys

LINE_MAX = 256


def read_mode(state):
    try:
        with open(os.path.join(state, "mode")) as f:
            return f.read().strip() or "ok"
    except FileNotFoundError:
        return "ok"


def make_copy(state, src_fd, size, extra, writable):
    """Copy size bytes of src_fd (plus extra bytes) to a new file; return
    a descriptor of it, read-only unless writable."""
    copies = os.path.join(state, "copies")
    os.makedirs(copies, exist_ok=True)
    path = os.path.join(copies, str(len(os.listdir(copies))))
    with open(path, "wb") as out:
        done = 0
        while done < size:
            chunk = os.pread(src_fd, min(1 << 20, size - done), done)
            if not chunk:
                break
            out.write(chunk)
            done += len(chunk)
        out.write(b"x" * extra)
    os.chmod(path, 0o444 if not writable else 0o644)
    return os.open(path, os.O_RDWR if writable else os.O_RDONLY)


def serve(conn, state):
    data, fds, _, _ = socket.recv_fds(conn, LINE_MAX, 4)
    while data and not data.endswith(b"\n") and len(data) < LINE_MAX:
        more = conn.recv(LINE_MAX - len(data))
        if not more:
            break
        data += more
    line = data.decode(errors="replace").rstrip("\n")
    with open(os.path.join(state, "requests"), "a") as log:
        log.write(line + "\n")
    try:
        words = line.split(" ")
        if len(words) != 4 or words[0] != "open" or len(fds) != 1:
            conn.sendall(b"error: invalid request\n")
            return
        size = int(words[1])
        if os.fstat(fds[0]).st_size != size:
            conn.sendall(b"error: the size does not match the file\n")
            return
        mode = read_mode(state)
        reply = ("ok %d\n" % size).encode()
        if mode in ("ok", "bigger", "writable"):
            extra = 1 if mode == "bigger" else 0
            lent = make_copy(state, fds[0], size, extra, mode == "writable")
            socket.send_fds(conn, [reply], [lent])
            os.close(lent)
        elif mode == "no":
            conn.sendall(b"no not cached\n")
        elif mode == "error":
            conn.sendall(b"error: unknown command 'open'; known commands:"
                         b" stats [json], flush [PATH]\n")
        elif mode == "nofd":
            conn.sendall(reply)
        elif mode == "garbage":
            conn.sendall(b"maybe\n")
        elif mode != "hangup":
            conn.sendall(b"error: fake_lender.py has no mode %s\n"
                         % mode.encode())
    finally:
        for fd in fds:
            os.close(fd)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, state = sys.argv[1], sys.argv[2]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    while True:
        conn, _ = server.accept()
        with conn:
            try:
                serve(conn, state)
            except OSError as e:
                print("fake_lender.py: %s" % e, file=sys.stderr)


if __name__ == "__main__":
    main()
