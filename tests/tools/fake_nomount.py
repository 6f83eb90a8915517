#!/usr/bin/env python3
"""fake_nomount.py - serve a directory without FUSE, as nearfs -o nomount
does, for the tests of the preload library.

usage: fake_nomount.py --rundir DIR --state DIR ORIGIN ROOT

Listens on DIR/<pid>.sock and writes ROOT to DIR/<pid>.nomount, then
serves the path requests of fs/preload/protocol.h from the directory
ORIGIN, one thread per connection, until it is killed.  SIGTERM and
SIGINT remove both files first, as a daemon that stops does; SIGKILL
leaves them, as a daemon that crashed does.

A read-only path-open lends a copy of the file in STATE/copies (mode
0444).  An open for writing creates or truncates the origin file at once
and lends a read-write file in STATE/copies with the current content
(empty after O_TRUNC).  The server copies that file over the origin file
at "fsync", at "close" and when the handle ends.  Each request line is
appended to STATE/requests.  When STATE/commit_errno contains a number,
"fsync" and "close" reply "err NUMBER" instead of committing.
"""
import argparse
import errno
import os
import shutil
import signal
import socket
import stat
import sys
import threading

LINE_MAX = 16384

state_lock = threading.Lock()
copy_count = 0


def decode(text):
    """Percent-decode a PATH or NAME of a request."""
    out = bytearray()
    i = 0
    raw = text.encode("ascii")
    while i < len(raw):
        if raw[i] == ord("%"):
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def encode(name):
    """Percent-encode bytes as the protocol does."""
    return "".join(chr(b) if 0x20 < b < 0x7f and b != ord("%")
                   else "%%%02X" % b for b in name)


class Server:
    def __init__(self, origin, state):
        self.origin = os.fsencode(os.path.abspath(origin))
        self.state = state
        os.makedirs(os.path.join(state, "copies"), exist_ok=True)

    def local(self, path):
        """The origin path of a request PATH."""
        raw = decode(path)
        parts = [p for p in raw.split(b"/") if p]
        if not raw.startswith(b"/") or any(p in (b".", b"..")
                                            for p in parts):
            raise OSError(errno.EINVAL, "invalid path")
        return os.path.join(self.origin, *parts) if parts else self.origin

    def log(self, line):
        with state_lock:
            with open(os.path.join(self.state, "requests"), "a") as f:
                f.write(line + "\n")

    def new_copy(self):
        global copy_count
        with state_lock:
            copy_count += 1
            return os.path.join(self.state, "copies", str(copy_count))

    def commit_errno(self):
        try:
            with open(os.path.join(self.state, "commit_errno")) as f:
                return int(f.read().strip() or 0)
        except FileNotFoundError:
            return 0

    @staticmethod
    def stat_line(st):
        return "%d %d %d %d %d %d %d" % (
            st.st_mode, st.st_uid, st.st_gid, st.st_size,
            st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9, st.st_nlink)

    def path_stat(self, conn, path):
        st = os.lstat(self.local(path))
        conn.sendall(("ok %s\n" % self.stat_line(st)).encode())

    def path_list(self, conn, path):
        lines = ["ok"]
        with os.scandir(self.local(path)) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                lines.append("%d %d %d %d %s" % (
                    st.st_mode, st.st_size, st.st_mtime_ns // 10**9,
                    st.st_mtime_ns % 10**9, encode(os.fsencode(entry.name))))
        lines.append("end")
        conn.sendall(("\n".join(lines) + "\n").encode())

    def path_open(self, conn, path, flags, mode, reader):
        local = self.local(path)
        if (flags & os.O_ACCMODE) == os.O_RDONLY:
            if os.path.isdir(local):
                raise OSError(errno.EISDIR, "is a directory")
            copy = self.new_copy()
            shutil.copyfile(local, copy)
            os.chmod(copy, 0o444)
            fd = os.open(copy, os.O_RDONLY)
            try:
                size = os.fstat(fd).st_size
                socket.send_fds(conn, [b"ok %d\n" % size], [fd])
            finally:
                os.close(fd)
            return

        exists = os.path.lexists(local)
        if exists and (flags & os.O_CREAT) and (flags & os.O_EXCL):
            raise OSError(errno.EEXIST, "exists")
        if not exists and not (flags & os.O_CREAT):
            raise OSError(errno.ENOENT, "missing")
        if exists and os.path.isdir(local):
            raise OSError(errno.EISDIR, "is a directory")

        # Create or truncate the origin file now, as a filesystem does.
        origin_fd = os.open(local, os.O_WRONLY | os.O_CREAT |
                            (flags & os.O_TRUNC), mode)
        os.close(origin_fd)
        copy = self.new_copy()
        shutil.copyfile(local, copy)
        fd = os.open(copy, os.O_RDWR)
        try:
            socket.send_fds(conn, [b"ok %d\n" % os.fstat(fd).st_size], [fd])
            self.serve_handle(conn, reader, fd, local)
        finally:
            os.close(fd)

    def commit(self, fd, local):
        err = self.commit_errno()
        if err:
            return err
        with open(local, "r+b") as out:
            out.truncate(0)
            offset = 0
            while True:
                chunk = os.pread(fd, 1 << 20, offset)
                if not chunk:
                    break
                out.write(chunk)
                offset += len(chunk)
        return 0

    def serve_handle(self, conn, reader, fd, local):
        for line in reader:
            self.log("handle " + line)
            if line not in ("fsync", "close"):
                conn.sendall(b"err %d\n" % errno.EINVAL)
                continue
            err = self.commit(fd, local)
            conn.sendall(b"err %d\n" % err if err else b"ok\n")
            if line == "close":
                return
        self.log("handle ended")
        self.commit(fd, local)

    def serve(self, conn):
        peer = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                               12)
        uid = int.from_bytes(peer[4:8], sys.byteorder)
        if uid not in (os.getuid(), 0):
            return
        reader = lines_of(conn)
        line = next(reader, None)
        if line is None:
            return
        self.log(line)
        words = line.split(" ")
        try:
            verb, args = words[0], words[1:]
            if verb == "path-stat" and len(args) == 1:
                self.path_stat(conn, args[0])
            elif verb == "path-list" and len(args) == 1:
                self.path_list(conn, args[0])
            elif verb == "path-open" and len(args) == 3:
                self.path_open(conn, args[0], int(args[1]), int(args[2]),
                               reader)
            elif verb == "path-mkdir" and len(args) == 2:
                os.mkdir(self.local(args[0]), int(args[1]))
                conn.sendall(b"ok\n")
            elif verb == "path-unlink" and len(args) == 1:
                local = self.local(args[0])
                if os.path.isdir(local) and not os.path.islink(local):
                    raise OSError(errno.EISDIR, "is a directory")
                os.unlink(local)
                conn.sendall(b"ok\n")
            elif verb == "path-rmdir" and len(args) == 1:
                os.rmdir(self.local(args[0]))
                conn.sendall(b"ok\n")
            elif verb == "path-rename" and len(args) == 2:
                os.rename(self.local(args[0]), self.local(args[1]))
                conn.sendall(b"ok\n")
            elif verb == "path-truncate" and len(args) == 2:
                os.truncate(self.local(args[0]), int(args[1]))
                conn.sendall(b"ok\n")
            else:
                conn.sendall(b"err %d\n" % errno.EINVAL)
        except OSError as e:
            conn.sendall(b"err %d\n" % (e.errno or errno.EIO))


def lines_of(conn):
    """Yield the lines (without newline) that arrive on conn."""
    buf = b""
    while True:
        while b"\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            if len(buf) > LINE_MAX and b"\n" not in buf:
                return
        line, buf = buf.split(b"\n", 1)
        yield line.decode("ascii", errors="replace")


def handle(server, conn):
    with conn:
        try:
            server.serve(conn)
        except OSError as e:
            print("fake_nomount.py: %s" % e, file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rundir", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("origin")
    parser.add_argument("root")
    args = parser.parse_args()
    server = Server(args.origin, args.state)
    sock_path = os.path.join(args.rundir, "%d.sock" % os.getpid())
    root_path = os.path.join(args.rundir, "%d.nomount" % os.getpid())

    def stop(signum, frame):
        for path in (root_path, sock_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    os.chmod(sock_path, stat.S_IRUSR | stat.S_IWUSR)
    listener.listen(64)
    tmp = root_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(args.root + "\n")
    os.chmod(tmp, 0o644)
    os.rename(tmp, root_path)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(server, conn),
                         daemon=True).start()


if __name__ == "__main__":
    main()
