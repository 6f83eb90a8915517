#!/usr/bin/env python3
"""kill_rw.py - writers and readers on a mount whose daemon gets killed,
and the check of the origin's content after the restart.

    kill_rw.py write DIR --writer N --seed S --log LOG [--ops N]
    kill_rw.py read LOG --seed S [--manifest FILE] [--dir DIR ...]
    kill_rw.py check LOG [LOG ...] --prefix PREFIX [--bucket B]

"write" does up to OPS random operations on the names of writer N in
DIR (wN-0.bin ... wN-3.bin, and wN-K.tmp for renames).  An operation
writes a whole new version (a new file or an overwrite through O_TRUNC,
in several write calls, fsynced one time in three).  Or it writes a
version under the temporary name and renames it over the name, or it
unlinks the name.  Before
an operation it appends "begin OP ..." to LOG, and once the operation
returned success "end".  After a successful fsync the version counts as
stored even when the close that follows fails, so fsync logs "end" too.
The first failing call ends the writer with an "error ERRNO" line: the
daemon was killed, and the test checks that the errno is one of a dead
mount.

Each version carries a header (magic, writer, version number, body
length, SHA-256 of the body) and a body drawn from a generator seeded
with the seed, the writer and the version, so a mix of two versions or a
cut version is found.

"read" reads the files of MANIFEST ("SHA256 PATH" lines) and every file
in the DIRs, which must be whole versions, in a loop until a read
fails, and appends "wrong PATH ..." to LOG for every wrong byte and
"error ERRNO PATH" for the failure that ends it.

"check" lists the objects below PREFIX in the bucket and reads each one
directly from the S3 server (NEARFS_TEST_ENDPOINT, through botocore).
Each object must be a whole version.  For each writer the objects of its
names must equal the state after its last completed operation, or the
state after the operation in progress at the kill, if there was one.
Prints one line per error and a summary, and exits 1 on an error.
"""

import argparse
import errno
import hashlib
import os
import random
import struct
import sys

MAGIC = b"NFKILLV1"
HEADER = struct.Struct("<8sIIQ32s")   # magic, writer, version, length, sha
NAMES = 4
# Errors of a call on a mount whose daemon died.
DEAD_MOUNT_NAMES = {"ENOTCONN", "ECONNABORTED"}


class Corrupt(Exception):
    """Bytes that no writer wrote as one whole version."""


def body_of(seed, writer, version):
    rng = random.Random("%d/%d/%d" % (seed, writer, version))
    size = rng.choice([rng.randint(1, 2000), rng.randint(60000, 140000)])
    return rng.randbytes(size)


def version_bytes(seed, writer, version):
    body = body_of(seed, writer, version)
    digest = hashlib.sha256(body).digest()
    return HEADER.pack(MAGIC, writer, version, len(body), digest) + body


def parse_version(data, what):
    """Return (writer, version) of data, a whole version, or raise."""
    if len(data) < HEADER.size:
        raise Corrupt("%s: %d bytes, shorter than a version header"
                      % (what, len(data)))
    magic, writer, version, length, digest = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise Corrupt("%s: %d bytes without the version magic"
                      % (what, len(data)))
    body = data[HEADER.size:]
    if len(body) != length:
        raise Corrupt("%s: version %d of writer %d has %d body bytes, its "
                      "header says %d" % (what, version, writer, len(body),
                                          length))
    if hashlib.sha256(body).digest() != digest:
        raise Corrupt("%s: version %d of writer %d fails its checksum (a "
                      "mix of versions)" % (what, version, writer))
    return writer, version


def log_line(log, text):
    log.write(text + "\n")
    log.flush()


def write_version(path, data, do_fsync, log):
    """Write data to path in several writes; return after the close."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        step = max(1, len(data) // 3)
        for offset in range(0, len(data), step):
            os.write(fd, data[offset:offset + step])
        if do_fsync:
            os.fsync(fd)
            log_line(log, "end")
    finally:
        os.close(fd)


def cmd_write(args):
    rng = random.Random("%d/ops/%d" % (args.seed, args.writer))
    exists = set()
    version = 0
    with open(args.log, "a") as log:
        try:
            for _ in range(args.ops):
                slot = rng.randrange(NAMES)
                name = "w%d-%d.bin" % (args.writer, slot)
                path = os.path.join(args.dir, name)
                kind = rng.choice(["write", "write", "rename", "unlink"])
                if kind == "unlink" and name not in exists:
                    kind = "write"
                if kind == "unlink":
                    log_line(log, "begin unlink %s" % name)
                    os.unlink(path)
                    exists.discard(name)
                    log_line(log, "end")
                    continue
                version += 1
                data = version_bytes(args.seed, args.writer, version)
                do_fsync = rng.randrange(3) == 0
                if kind == "write":
                    log_line(log, "begin write %s %d" % (name, version))
                    write_version(path, data, do_fsync, log)
                    exists.add(name)
                    if not do_fsync:
                        log_line(log, "end")
                    continue
                tmp = "w%d-%d.tmp" % (args.writer, slot)
                log_line(log, "begin write %s %d" % (tmp, version))
                write_version(os.path.join(args.dir, tmp), data, do_fsync,
                              log)
                if not do_fsync:
                    log_line(log, "end")
                log_line(log, "begin rename %s %s" % (tmp, name))
                os.rename(os.path.join(args.dir, tmp), path)
                exists.add(name)
                log_line(log, "end")
        except OSError as exc:
            log_line(log, "error %s %s" % (errno.errorcode.get(
                exc.errno, exc.errno), exc))
            return 0
    return 0


def read_all(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = []
        while True:
            part = os.read(fd, 1 << 20)
            if not part:
                return b"".join(parts)
            parts.append(part)
    finally:
        os.close(fd)


def cmd_read(args):
    expected = {}
    if args.manifest:
        for line in open(args.manifest):
            digest, path = line.split(None, 1)
            expected[path.strip()] = digest
    rng = random.Random("%d/read/%d" % (args.seed, os.getpid()))
    reads = 0
    with open(args.log, "a") as log:
        whole = []
        for folder in args.dirs:
            try:
                names = sorted(os.listdir(folder))
            except OSError as exc:
                log_line(log, "error %s %s after 0 reads" % (
                    errno.errorcode.get(exc.errno, exc.errno), folder))
                return 0
            whole += [os.path.join(folder, name) for name in names]
        paths = sorted(expected) + whole
        if not paths:
            sys.exit("kill_rw.py read: nothing to read")
        while True:
            path = rng.choice(paths)
            try:
                data = read_all(path)
            except OSError as exc:
                log_line(log, "error %s %s after %d reads" % (
                    errno.errorcode.get(exc.errno, exc.errno), path, reads))
                return 0
            reads += 1
            if path in expected:
                if hashlib.sha256(data).hexdigest() != expected[path]:
                    log_line(log, "wrong %s: %d bytes, SHA-256 differs"
                             % (path, len(data)))
                continue
            try:
                parse_version(data, path)
            except Corrupt as exc:
                log_line(log, "wrong %s" % exc)


def writer_states(lines, what):
    """Return the states a writer's names may be in after its log: the
    state after the last completed operation, and the one after the
    operation in progress.  A state maps a name to a version number."""
    state = {}
    pending = None
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words:
            continue
        if words[0] == "begin":
            if pending is not None:
                raise SystemExit("%s:%d: begin before the end of %s"
                                 % (what, number, pending))
            pending = words[1:]
        elif words[0] == "end":
            if pending is None:
                # A second "end": the close after a logged fsync.
                continue
            apply_op(state, pending)
            pending = None
        elif words[0] == "error":
            if words[1] not in DEAD_MOUNT_NAMES:
                raise Corrupt("%s:%d: a call failed with %s before the "
                              "kill" % (what, number, " ".join(words[1:])))
            break
    after = dict(state)
    if pending is not None:
        apply_op(after, pending)
    return state, after


def apply_op(state, op):
    if op[0] == "write":
        state[op[1]] = int(op[2])
    elif op[0] == "rename":
        state[op[2]] = state.pop(op[1])
    elif op[0] == "unlink":
        state.pop(op[1])
    else:
        raise SystemExit("unknown operation %r in a writer log" % op)


def describe(state):
    return "{%s}" % ", ".join("%s: v%d" % item for item in sorted(
        state.items())) if state else "{}"


def cmd_check(args):
    import botocore.config
    import botocore.session
    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=os.environ["NEARFS_TEST_ENDPOINT"],
        region_name="us-east-1",
        config=botocore.config.Config(s3={"addressing_style": "path"}))
    prefix = args.prefix.rstrip("/") + "/"
    found = {}
    errors = []

    for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=args.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix):]
            if not name or "/" in name:
                continue
            data = client.get_object(Bucket=args.bucket,
                                     Key=item["Key"])["Body"].read()
            try:
                writer, version = parse_version(data, item["Key"])
            except Corrupt as exc:
                errors.append(str(exc))
                continue
            found.setdefault(writer, {})[name] = version

    checked = 0
    in_progress = 0
    for path in args.logs:
        writer = int(os.path.basename(path).split(".")[0].lstrip("w"))
        try:
            done, after = writer_states(open(path).read().splitlines(),
                                        path)
        except Corrupt as exc:
            errors.append(str(exc))
            continue
        have = found.pop(writer, {})
        checked += len(done)
        if after != done:
            in_progress += 1
        if have != done and have != after:
            errors.append("writer %d: the origin contains %s; expected %s "
                          "(the last completed operation)%s"
                          % (writer, describe(have), describe(done),
                             "" if after == done else
                             " or %s (the operation in progress)"
                             % describe(after)))

    for writer, have in sorted(found.items()):
        errors.append("objects of an unknown writer %d: %s"
                      % (writer, describe(have)))
    for line in errors:
        print(line)
    print("%d files completed, %d operations in progress at the kill, "
          "%d errors" % (checked, in_progress, len(errors)))
    return 1 if errors else 0


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    write = sub.add_parser("write")
    write.add_argument("dir")
    write.add_argument("--writer", type=int, required=True)
    write.add_argument("--seed", type=int, required=True)
    write.add_argument("--log", required=True)
    write.add_argument("--ops", type=int, default=1000)
    read = sub.add_parser("read")
    read.add_argument("log")
    read.add_argument("--dir", dest="dirs", action="append", default=[])
    read.add_argument("--seed", type=int, required=True)
    read.add_argument("--manifest")
    check = sub.add_parser("check")
    check.add_argument("logs", nargs="+")
    check.add_argument("--prefix", required=True)
    check.add_argument("--bucket", default="data")
    args = parser.parse_args()
    if args.command == "write":
        return cmd_write(args)
    if args.command == "read":
        return cmd_read(args)
    return cmd_check(args)


if __name__ == "__main__":
    sys.exit(main())
