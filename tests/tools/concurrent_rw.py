#!/usr/bin/env python3
"""concurrent_rw.py - several processes and threads read and write the same
files of one folder at once, and check every byte after.

    concurrent_rw.py run DIR [--seed N] [--processes N] [--threads N]
                  [--rounds N] [--chunk SIZE]
    concurrent_rw.py verify DIR [--seed N] [--processes N] [--threads N]
                  [--rounds N] [--chunk SIZE]
    concurrent_rw.py neighbours DIR [--seed N] [--threads N] [--rounds N]
                  [--chunk SIZE] [--closer SECONDS]

"run" starts PROCESSES processes of THREADS threads each.  Every thread
is one writer with its own id, and does ROUNDS rounds of:

- shared.bin: rewrite its own byte range (one chunk plus 1000 bytes, so
  that neighbouring ranges share a chunk) with the block of the round,
  through a descriptor that it keeps open, and read the range back;
- own-ID.bin: write the whole file under a temporary name, with a
  SHA-256 of the payload in its first 64 bytes, and rename it over
  own-ID.bin; then read own-ID.bin of a random writer and check its
  checksum (every reader must see one whole version, because rename
  replaces the file at once);
- common.bin: the same whole-file rewrite and check, with every writer
  renaming over one name.

A block is 16 bytes of header (writer id, round, length) and bytes drawn
from a generator seeded with the seed, the writer id and the round, so a
reader can tell whose block of which round it sees.  "verify" checks
the files that "run" left: each range of shared.bin and each own-ID.bin
holds the last round of its writer, and common.bin a whole version of
any writer.  "neighbours" runs PROCESSES * THREADS writers as threads of
one process, each rewriting and reading back only its range of
neighbours.bin for ROUNDS rounds: the ranges start inside pages, so each
write shares pages with the writes of its neighbours.  With --closer, one
more thread opens the file for writing, fsyncs it and closes it every
SECONDS.  Each fsync and close commits the writes of the others while they
go on, and in write-back mode the fsync uploads them.  All print the seed
and exit 1 on the first wrong byte, naming the file, the offset and the
writer.
"""

import argparse
import hashlib
import mmap
import os
import random
import struct
import sys
import threading

HEADER = struct.Struct("<IIQ")   # writer id, round, payload length
SUM_SIZE = 64                    # hex SHA-256 of the payload


class Corrupt(Exception):
    """A file contains bytes that no writer wrote."""


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20}
    text = text.strip().upper()
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def payload(seed, writer, rnd, length):
    rng = random.Random("%d/%d/%d" % (seed, writer, rnd))
    return rng.randbytes(length)


def block(seed, writer, rnd, size):
    """Return a block of size bytes: header, then the payload."""
    body = payload(seed, writer, rnd, size - HEADER.size)
    return HEADER.pack(writer, rnd, len(body)) + body


def check_block(seed, data, writer, what, rnd=None):
    """Check that data is a whole block of writer (of round rnd, when
    given); return the round."""
    if len(data) < HEADER.size:
        raise Corrupt("%s: %d bytes, shorter than a block header"
                      % (what, len(data)))
    owner, found, length = HEADER.unpack_from(data)
    if owner != writer or length != len(data) - HEADER.size:
        raise Corrupt("%s: header says writer %d, %d bytes; expected "
                      "writer %d, %d bytes" % (what, owner, length, writer,
                                              len(data) - HEADER.size))
    if rnd is not None and found != rnd:
        raise Corrupt("%s: round %d of writer %d, expected round %d"
                      % (what, found, writer, rnd))
    expected = payload(seed, writer, found, length)
    if data[HEADER.size:] != expected:
        body = data[HEADER.size:]
        first = next(i for i in range(length) if body[i] != expected[i])
        last = next(i for i in range(length - 1, -1, -1)
                    if body[i] != expected[i])
        raise Corrupt("%s: round %d of writer %d differs in bytes %d to "
                      "%d of the block, which %s"
                      % (what, found, writer, HEADER.size + first,
                         HEADER.size + last,
                         whose_bytes(seed, writer, found, body, first,
                                     last + 1)))
    return found


def whose_bytes(seed, writer, rnd, body, start, end):
    """Describe body[start:end]: zeros, a round of the same writer (a
    stale page), or none of its rounds."""
    wrong = body[start:end]
    if wrong.count(0) == len(wrong):
        return "are zeros"
    for other in range(rnd + 3, -1, -1):
        if other != rnd and \
                payload(seed, writer, other, len(body))[start:end] == wrong:
            return "hold round %d of the same writer" % other
    return "match no round of that writer from 0 to %d" % (rnd + 3)


def file_content(seed, writer, rnd, size):
    body = block(seed, writer, rnd, size)
    return hashlib.sha256(body).hexdigest().encode() + body


def check_file(seed, data, what, writer=None, rnd=None):
    """Check a whole-file version: checksum, then the block inside."""
    digest, body = data[:SUM_SIZE], data[SUM_SIZE:]
    if hashlib.sha256(body).hexdigest().encode() != digest:
        raise Corrupt("%s: %d bytes whose checksum does not match (a "
                      "mix of versions, or a partial file)"
                      % (what, len(data)))
    owner = HEADER.unpack_from(body)[0]
    if writer is not None and owner != writer:
        raise Corrupt("%s: written by %d, expected %d"
                      % (what, owner, writer))
    return check_block(seed, body, owner, what, rnd)


class Layout:
    def __init__(self, args):
        self.dir = args.dir
        self.seed = args.seed
        self.writers = args.processes * args.threads
        self.rounds = args.rounds
        self.range_size = args.chunk + 1000
        self.file_size = args.chunk * 2 + 333

    def shared(self):
        return os.path.join(self.dir, "shared.bin")

    def own(self, writer):
        return os.path.join(self.dir, "own-%d.bin" % writer)

    def common(self):
        return os.path.join(self.dir, "common.bin")

    def neighbours(self):
        return os.path.join(self.dir, "neighbours.bin")


def read_whole(path):
    with open(path, "rb") as f:
        return f.read()


def replace_file(path, data, tag):
    tmp = "%s.tmp-%s" % (path, tag)
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def rewrite_range(layout, path, fd, writer, rnd):
    """Write the block of round rnd over the range of writer in path,
    through fd, and read it back."""
    seed = layout.seed
    start = writer * layout.range_size
    name = os.path.basename(path)
    written = os.pwrite(fd, block(seed, writer, rnd, layout.range_size),
                        start)
    if written != layout.range_size:
        raise Corrupt("short write to the %s range of writer %d in round "
                      "%d: %d of %d bytes" % (name, writer, rnd, written,
                                              layout.range_size))
    # Only the own range: a read that overlaps another thread's write may
    # see part of it, on a local disk too.
    data = os.pread(fd, layout.range_size, start)
    try:
        check_block(seed, data, writer, "%s range of writer %d, read back"
                    % (name, writer), rnd=rnd)
    except Corrupt as exc:
        again = second_look(layout, path, writer, rnd, start)
        raise Corrupt("%s; then %s" % (exc, again))


def writer_loop(layout, writer, failures):
    rng = random.Random("%d/loop/%d" % (layout.seed, writer))
    seed = layout.seed
    fd = os.open(layout.shared(), os.O_RDWR)
    try:
        for rnd in range(1, layout.rounds + 1):
            rewrite_range(layout, layout.shared(), fd, writer, rnd)

            size = layout.file_size + rng.randrange(3) * 4096
            replace_file(layout.own(writer),
                         file_content(seed, writer, rnd, size),
                         "w%d" % writer)
            other = rng.randrange(layout.writers)
            check_file(seed, read_whole(layout.own(other)),
                       "own-%d.bin read by writer %d" % (other, writer),
                       writer=other)

            replace_file(layout.common(),
                         file_content(seed, writer, rnd, size),
                         "w%d" % writer)
            check_file(seed, read_whole(layout.common()),
                       "common.bin read by writer %d" % writer)
    except (Corrupt, OSError) as exc:
        failures.append("writer %d: %s" % (writer, exc))
    finally:
        os.close(fd)


def read_direct(path, offset, length):
    """Read length bytes at offset with O_DIRECT, bypassing the page
    cache."""
    page = mmap.PAGESIZE
    first = offset // page * page
    size = (offset + length - first + page - 1) // page * page
    # O_DIRECT needs an aligned buffer, which an anonymous mapping is.
    with mmap.mmap(-1, size) as buf:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        try:
            count = os.preadv(fd, [buf], first)
        finally:
            os.close(fd)
        return bytes(buf[offset - first:min(count, offset - first + length)])


def second_look(layout, path, writer, rnd, start):
    """Read the writer's range of path again with O_DIRECT after a wrong
    read-back, and describe the result."""
    try:
        check_block(layout.seed, read_direct(path, start,
                                             layout.range_size),
                    writer, "the range read with O_DIRECT", rnd=rnd)
        return "a read with O_DIRECT found the range right"
    except (Corrupt, OSError) as exc:
        return "a read with O_DIRECT failed too: %s" % exc


def neighbour_loop(layout, writer, failures):
    path = layout.neighbours()
    fd = os.open(path, os.O_RDWR)
    try:
        for rnd in range(1, layout.rounds + 1):
            rewrite_range(layout, path, fd, writer, rnd)
            if failures:
                break
    except (Corrupt, OSError) as exc:
        failures.append("writer %d: %s" % (writer, exc))
    finally:
        os.close(fd)


def run_process(layout, first_writer, threads, loop=writer_loop):
    failures = []
    workers = [threading.Thread(target=loop,
                                args=(layout, first_writer + i, failures))
               for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for failure in failures:
        print("concurrent: seed %d: %s" % (layout.seed, failure),
              flush=True)
    return 1 if failures else 0


def cmd_run(args):
    layout = Layout(args)
    # Initial versions, so that every reader finds a whole file.
    with open(layout.shared(), "wb") as f:
        for writer in range(layout.writers):
            f.write(block(args.seed, writer, 0, layout.range_size))
    for writer in range(layout.writers):
        replace_file(layout.own(writer),
                     file_content(args.seed, writer, 0, layout.file_size),
                     "init")
    replace_file(layout.common(),
                 file_content(args.seed, 0, 0, layout.file_size), "init")
    pids = []
    for p in range(args.processes):
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                status = run_process(layout, p * args.threads,
                                     args.threads)
            finally:
                os._exit(status)
        pids.append(pid)
    status = 0
    for pid in pids:
        _, code = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(code) != 0:
            status = 1
    return status


def closer_loop(path, interval, stop):
    """Open path for writing, fsync it and close it every interval
    seconds until stop is set."""
    while not stop.is_set():
        fd = os.open(path, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        stop.wait(interval)


def cmd_neighbours(args):
    layout = Layout(args)
    with open(layout.neighbours(), "wb") as f:
        for writer in range(layout.writers):
            f.write(block(args.seed, writer, 0, layout.range_size))
    stop = threading.Event()
    closer = None
    if args.closer > 0:
        closer = threading.Thread(target=closer_loop,
                                  args=(layout.neighbours(), args.closer,
                                        stop))
        closer.start()
    try:
        return run_process(layout, 0, layout.writers, loop=neighbour_loop)
    finally:
        stop.set()
        if closer:
            closer.join()


def cmd_verify(args):
    layout = Layout(args)
    with open(layout.shared(), "rb") as f:
        data = f.read()
    expected_size = layout.writers * layout.range_size
    if len(data) != expected_size:
        raise Corrupt("shared.bin: %d bytes, expected %d"
                      % (len(data), expected_size))
    for writer in range(layout.writers):
        start = writer * layout.range_size
        check_block(args.seed, data[start:start + layout.range_size],
                    writer, "shared.bin range of writer %d at offset %d"
                    % (writer, start), rnd=layout.rounds)
        check_file(args.seed, read_whole(layout.own(writer)),
                   "own-%d.bin" % writer, writer=writer, rnd=layout.rounds)
    check_file(args.seed, read_whole(layout.common()), "common.bin")
    leftovers = [name for name in os.listdir(layout.dir) if ".tmp-" in name]
    if leftovers:
        raise Corrupt("temporary files left: %s" % sorted(leftovers))
    return 0


def main():
    parser = argparse.ArgumentParser(
        description="Concurrent readers and writers of shared files.")
    parser.add_argument("command", choices=["run", "verify",
                                            "neighbours"])
    parser.add_argument("dir")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--chunk", type=parse_size, default=64 << 10,
                        help="chunk size of the mount (default 64K)")
    parser.add_argument("--closer", type=float, default=0,
                        help="neighbours: seconds between the opens, "
                        "fsyncs and closes of a thread that writes nothing "
                        "(default: no such thread)")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 32)
    print("concurrent: %s, seed %d, %d processes of %d threads, %d rounds"
          % (args.command, args.seed, args.processes, args.threads,
             args.rounds), flush=True)
    try:
        if args.command == "run":
            status = cmd_run(args)
        elif args.command == "neighbours":
            status = cmd_neighbours(args)
        else:
            status = cmd_verify(args)
    except (Corrupt, OSError) as exc:
        print("concurrent: seed %d: %s" % (args.seed, exc), flush=True)
        return 1
    print("concurrent: %s %s, seed %d" % (
        args.command, "ok" if status == 0 else "FAILED", args.seed),
        flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
