#!/usr/bin/env python3
"""versions_rw.py - whole versions of one file written through one mount
and read through another, with every read checked for a mix.

    versions_rw.py write PATH --versions N [--flush MNT] [--ctl PATH]
                   [--wait-log LOG]
    versions_rw.py read PATH --until N [--held] [--timeout S] [--log LOG]
    versions_rw.py check FILE [--version N]

A version K is a header line "nearfs version K length L\\n" followed by
L bytes of the byte K % 251 + 1, with L drawn from K, so that a read of
two versions, a cut version or zeros is found.

"write" writes versions 1 to N of PATH in turn, each by one open with
O_TRUNC, several writes and a close.  With --flush it runs `nearfs-ctl
flush MNT` after each close (a write-back mount).  With --wait-log it
writes the next version only once a reader logged the last one in LOG
(within 60 s), so that every version is read while the next is written.

"read" reads PATH whole again and again until it has read version N.
Each read opens, reads and closes the file.  With --held one descriptor
stays open for 25 reads from offset 0, across changes of the file, and
is then opened again.  Every read must be empty, a whole version, or fail
(EIO is how nearfs reports a version that changed under a reader).  A
missing file counts as not written yet.  A version cut at the size of
the version before it fails as any other mix, and so does a whole
version followed by bytes up to the size of the next one, except through
a held descriptor, where it is counted as a known fault.  Prints a
summary line (reads,
versions seen, errors) and exits 1 on the first read that is none of
these, or when version N did not come within --timeout seconds, a bound
on failure and not a timing check.

"check" checks that FILE is one whole version (version N, if given).
"""

import argparse
import errno
import os
import re
import subprocess
import sys
import time

HELD_READS = 25
HEADER = re.compile(rb"nearfs version (\d+) length (\d+)\n")


class Mixed(Exception):
    """Bytes that are not one whole version."""


class CutAtOldSize(Mixed):
    """A version cut at the size of the version before it."""


class OldAtNewSize(Mixed):
    """A whole version followed by bytes up to the size of the next one."""


def length_of(version):
    return 20000 + (version * 7919) % 180000


def version_bytes(version):
    length = length_of(version)
    header = b"nearfs version %d length %d\n" % (version, length)
    return header + bytes([version % 251 + 1]) * length


def parse(data, what):
    """Return the version data is, 0 for an empty file, or raise."""
    if not data:
        return 0
    match = HEADER.match(data)
    if not match:
        raise Mixed("%s: %d bytes without a version header (first bytes "
                    "%r)" % (what, len(data), data[:40]))
    version, length = int(match.group(1)), int(match.group(2))
    body = data[match.end():]
    fill = version % 251 + 1
    if length == length_of(version) and version > 1 and \
            len(body) == length_of(version - 1) and \
            body.count(fill) == len(body):
        raise CutAtOldSize("%s: version %d cut at the size of version %d"
                           % (what, version, version - 1))
    tail_bytes = (0, fill, (version + 1) % 251 + 1)
    if length == length_of(version) and \
            len(body) == length_of(version + 1) > length and \
            body[:length].count(fill) == length and \
            all(b in tail_bytes for b in body[length:]):
        raise OldAtNewSize("%s: version %d read at the size of version %d"
                           % (what, version, version + 1))
    if length != length_of(version) or len(body) != length:
        raise Mixed("%s: version %d with %d body bytes, expected %d"
                    % (what, version, len(body), length_of(version)))
    if body.count(fill) != length:
        first = next(i for i, b in enumerate(body) if b != fill)
        raise Mixed("%s: version %d has byte %d at body offset %d, not %d "
                    "(a mix of versions)" % (what, version, body[first],
                                             first, fill))
    return version


def cmd_write(args):
    for version in range(1, args.versions + 1):
        data = version_bytes(version)
        fd = os.open(args.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o644)
        step = len(data) // 3 + 1
        for offset in range(0, len(data), step):
            os.write(fd, data[offset:offset + step])
        os.close(fd)
        if args.flush:
            subprocess.run([args.ctl, "flush", args.flush], check=True,
                           stdout=subprocess.DEVNULL)
        if args.wait_log and version < args.versions:
            wait_logged(args.wait_log, version)
    print("wrote versions 1 to %d of %s" % (args.versions, args.path))
    return 0


def wait_logged(path, version):
    deadline = time.monotonic() + 60
    line = "%d\n" % version
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                if line in f.readlines():
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    sys.exit("no reader read version %d within 60 s" % version)


def read_from(fd):
    parts = []
    offset = 0
    while True:
        part = os.pread(fd, 1 << 20, offset)
        if not part:
            return b"".join(parts)
        parts.append(part)
        offset += len(part)


def cmd_read(args):
    deadline = time.monotonic() + args.timeout
    seen = {}
    errors = {}
    reads = 0
    held = None
    held_reads = 0
    log = open(args.log, "a") if args.log else None
    try:
        while True:
            if time.monotonic() > deadline:
                print("version %d not read within %g s; %d reads, "
                      "versions seen %s, errors %s" % (
                          args.until, args.timeout, reads, sorted(seen),
                          errors))
                return 1
            try:
                if args.held:
                    if held is None:
                        held = os.open(args.path, os.O_RDONLY)
                    data = read_from(held)
                else:
                    fd = os.open(args.path, os.O_RDONLY)
                    try:
                        data = read_from(fd)
                    finally:
                        os.close(fd)
            except OSError as exc:
                name = errno.errorcode.get(exc.errno, str(exc.errno))
                if exc.errno not in (errno.EIO, errno.ENOENT, errno.ESTALE):
                    print("read %d of %s failed with %s" % (reads + 1,
                                                           args.path, exc))
                    return 1
                errors[name] = errors.get(name, 0) + 1
                if held is not None and exc.errno != errno.ENOENT:
                    os.close(held)
                    held = None
                time.sleep(0.02)
                continue
            reads += 1
            try:
                version = parse(data, "read %d of %s" % (reads, args.path))
            except OldAtNewSize as exc:
                if held is None:
                    print(exc)
                    return 1
                # NOTE: a known fault, counted and not failed: the kernel
                # may serve a held descriptor pages of its version that it
                # read ahead just before the change, up to the new size
                # ("Not covered yet" in docs/reliability.md).
                errors["old version at the new size"] = \
                    errors.get("old version at the new size", 0) + 1
                os.close(held)
                held = None
                continue
            except Mixed as exc:
                print(exc)
                return 1
            seen[version] = seen.get(version, 0) + 1
            if log:
                log.write("%d\n" % version)
                log.flush()
            if version == args.until:
                break
            held_reads += 1
            if held is not None and held_reads >= HELD_READS:
                # Reopen now and then, so that later versions show too.
                os.close(held)
                held = None
                held_reads = 0
            time.sleep(0.01)
    finally:
        if held is not None:
            os.close(held)
    print("%d reads, versions seen %s, errors %s" % (
        reads, ",".join("%d:%d" % item for item in sorted(seen.items())),
        errors or "none"))
    return 0


def cmd_check(args):
    with open(args.file, "rb") as f:
        data = f.read()
    try:
        version = parse(data, args.file)
    except Mixed as exc:
        print(exc)
        return 1
    if args.version is not None and version != args.version:
        print("%s is version %d, expected %d" % (args.file, version,
                                                args.version))
        return 1
    print("%s is version %d" % (args.file, version))
    return 0


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    write = sub.add_parser("write")
    write.add_argument("path")
    write.add_argument("--versions", type=int, required=True)
    write.add_argument("--flush")
    write.add_argument("--ctl", default="nearfs-ctl")
    write.add_argument("--wait-log")
    read = sub.add_parser("read")
    read.add_argument("path")
    read.add_argument("--until", type=int, required=True)
    read.add_argument("--held", action="store_true")
    read.add_argument("--timeout", type=float, default=60)
    read.add_argument("--log")
    check = sub.add_parser("check")
    check.add_argument("file")
    check.add_argument("--version", type=int)
    args = parser.parse_args()
    return {"write": cmd_write, "read": cmd_read,
            "check": cmd_check}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
