#!/usr/bin/env python3
"""nomount_client.py - speak the path requests of fs/preload/protocol.h to
a daemon started with -o nomount, for tests.

usage: nomount_client.py SOCKET COMMAND [ARGS...]

PATH arguments are relative to the daemon's ROOT and start with "/"; the
client percent-encodes them.  Commands:

  raw LINE                 send LINE as it is and print the whole reply
  stat PATH                print the reply line
  list PATH                print the reply: "ok", one line per entry with
                           the name decoded, then "end"
  read PATH [FLAGS]        path-open read-only (FLAGS default 0); print the
                           reply line, then "sha256 HEX access ro|rw
                           links N" of the descriptor received
  write PATH FLAGS MODE FILE [OPTION...]
                           path-open for writing, write the bytes of FILE
                           through the descriptor received, then send
                           "close"; print the reply line, "content SHA256"
                           of what the descriptor held first, and the
                           reply to each request on the handle
  hold PATH FLAGS MODE FILE
                           like write, but instead of "close", print
                           "written" and wait until stdin ends or the
                           daemon ends the handle; print "ended" then

Options of write: --at N (write at offset N, default 0), --truncate N
(ftruncate the descriptor to N first), --append (set O_APPEND on the
descriptor and write at its end), --fsync (send "fsync" before "close").

Exits 0 when every reply came, 1 otherwise.
"""
import fcntl
import hashlib
import os
import select
import socket
import sys

LINE_MAX = 16384


def encode(path):
    out = []
    for byte in path.encode():
        if byte <= 0x20 or byte == 0x25 or byte >= 0x7F:
            out.append("%%%02X" % byte)
        else:
            out.append(chr(byte))
    return "".join(out)


def decode(text):
    raw = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%":
            raw.append(int(text[i + 1:i + 3], 16))
            i += 3
        else:
            raw.extend(text[i].encode())
            i += 1
    return raw.decode(errors="surrogateescape")


def connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(120)
    sock.connect(path)
    return sock


def read_line(sock, buf):
    """Read one line; buf is a bytearray of bytes received past it."""
    while b"\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("the daemon closed the connection")
        buf.extend(chunk)
    line, _, rest = bytes(buf).partition(b"\n")
    buf[:] = rest
    return line.decode()


def request(sock, line):
    sock.sendall(line.encode() + b"\n")


def open_request(sock, path, flags, mode):
    """Send path-open and return (reply line, descriptor or None)."""
    request(sock, "path-open %s %d %d" % (encode(path), flags, mode))
    msg, fds, _, _ = socket.recv_fds(sock, LINE_MAX, 1)
    line = msg.decode()
    if not line.endswith("\n"):
        raise EOFError("incomplete reply %r" % line)
    return line.rstrip("\n"), (fds[0] if fds else None)


def describe(fd):
    st = os.fstat(fd)
    digest = hashlib.sha256()
    offset = 0
    while True:
        block = os.pread(fd, 1 << 20, offset)
        if not block:
            break
        digest.update(block)
        offset += len(block)
    access = os.O_ACCMODE & fcntl.fcntl(fd, fcntl.F_GETFL)
    mode = {os.O_RDONLY: "ro", os.O_WRONLY: "wo", os.O_RDWR: "rw"}[access]
    return "sha256 %s access %s links %d" % (digest.hexdigest(), mode,
                                              st.st_nlink)


def content_of(fd):
    return describe(fd).split()[1]


def cmd_raw(sock, args):
    request(sock, args[0])
    data = bytearray()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data.extend(chunk)
    sys.stdout.write(data.decode())


def cmd_stat(sock, args):
    request(sock, "path-stat " + encode(args[0]))
    print(read_line(sock, bytearray()))


def cmd_list(sock, args):
    request(sock, "path-list " + encode(args[0]))
    buf = bytearray()
    line = read_line(sock, buf)
    print(line)
    if line != "ok":
        return
    while True:
        line = read_line(sock, buf)
        if line == "end":
            print(line)
            return
        fields = line.split(" ", 4)
        print(" ".join(fields[:4] + [decode(fields[4])]))


def cmd_read(sock, args):
    flags = int(args[1]) if len(args) > 1 else 0
    line, fd = open_request(sock, args[0], flags, 0)
    print(line)
    if fd is not None:
        print(describe(fd))
        os.close(fd)


def write_through(fd, data, options):
    if "--truncate" in options:
        os.ftruncate(fd, int(options[options.index("--truncate") + 1]))
    if "--append" in options:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_APPEND)
        os.write(fd, data)
        return
    at = int(options[options.index("--at") + 1]) if "--at" in options else 0
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], at + done)


def cmd_write(sock, args, hold=False):
    path, flags, mode, source = args[0], int(args[1]), int(args[2]), args[3]
    options = args[4:]
    line, fd = open_request(sock, path, flags, mode)
    print(line)
    if fd is None:
        return
    print("content " + content_of(fd))
    with open(source, "rb") as f:
        write_through(fd, f.read(), options)
    buf = bytearray()
    if "--fsync" in options:
        request(sock, "fsync")
        print("fsync " + read_line(sock, buf))
    if hold:
        print("written", flush=True)
        # Wait for stdin to end or for the daemon to end the handle.
        select.select([sys.stdin, sock], [], [])
        os.close(fd)
        print("ended", flush=True)
        return
    os.close(fd)
    request(sock, "close")
    print("close " + read_line(sock, buf))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sock = connect(sys.argv[1])
    command, args = sys.argv[2], sys.argv[3:]
    try:
        if command == "raw":
            cmd_raw(sock, args)
        elif command == "stat":
            cmd_stat(sock, args)
        elif command == "list":
            cmd_list(sock, args)
        elif command == "read":
            cmd_read(sock, args)
        elif command == "write":
            cmd_write(sock, args)
        elif command == "hold":
            cmd_write(sock, args, hold=True)
        else:
            sys.exit("nomount_client.py: unknown command %r" % command)
    except (EOFError, OSError) as e:
        print("nomount_client.py: %s" % e, file=sys.stderr)
        sys.exit(1)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
