#!/usr/bin/env python3
"""fsx.py - a model-based random test of a nearfs mount, after fsx.

    fsx.py --origin ORIGIN --mountpoint MNT --ref DIR --options OPTS
           [--seed N] [--ops N] [--files N] [--max-size SIZE]
           [--nearfs BIN] [--ctl BIN] [--log FILE] [--verbose]

Mounts ORIGIN (s3://BUCKET[/PREFIX] or a directory) on MNT with
`nearfs -f -o OPTS`, then runs N random operations: open, read, write
(random offsets and sizes, biased to chunk boundaries and past the end of
the file), ftruncate and truncate (shrink and grow), rename, unlink,
fsync, close, stat, dropping the kernel's cached pages, and remount
(unmount and mount again with the same cache_dir).  Each operation runs
on the mount and on the reference directory DIR on local disk, and both
must return the same bytes or fail with the same errno.  Every read is
compared, and so are all files after each remount and at the end.  With
every file closed the origin must hold the content of the reference too:
the directory, or the bucket read through botocore at
NEARFS_TEST_ENDPOINT.  That is checked after each remount, after each
"sync" operation (close all, then `nearfs-ctl flush`) and after the
final unmount.

The seed is printed at start (a random one unless --seed is given) with
the command that repeats the run.  On a mismatch the script prints the
seed, the operation number, the last operations and the first differing
offset, and exits 1.  It exits 2 for a usage error and 3 when the mount
itself fails (nearfs did not start or exited with an error).
"""

import argparse
import collections
import errno
import os
import random
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NAMES = ["a", "b", "c", "sub/d", "sub/e"]
HISTORY = 30


class Mismatch(Exception):
    """The mount and the reference directory disagree."""


class MountError(Exception):
    """nearfs did not mount, or did not exit cleanly."""


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def option_value(options, name, default):
    for item in options.split(","):
        key, sep, value = item.partition("=")
        if sep and key == name:
            return value
    return default


def first_difference(expected, actual):
    """Return the index of the first differing byte of two byte strings."""
    for i in range(min(len(expected), len(actual))):
        if expected[i] != actual[i]:
            return i
    return min(len(expected), len(actual))


class Handle:
    """One open file: a descriptor on the mount and one on the reference."""

    def __init__(self, number, name, mount_fd, ref_fd, writable):
        self.number = number
        self.name = name
        self.mount_fd = mount_fd
        self.ref_fd = ref_fd
        self.writable = writable


class Origin:
    """Reads what the origin stores: a directory or an S3 prefix."""

    def __init__(self, origin):
        self.dir = None
        self.client = None
        if origin.startswith("s3://"):
            bucket, _, prefix = origin[5:].partition("/")
            self.bucket = bucket
            self.prefix = prefix.strip("/") + "/" if prefix else ""
        else:
            self.dir = origin

    def _s3(self):
        if self.client is None:
            import botocore.config
            import botocore.session
            endpoint = os.environ.get("NEARFS_TEST_ENDPOINT")
            if not endpoint:
                raise SystemExit("fsx.py: NEARFS_TEST_ENDPOINT is not set")
            self.client = botocore.session.get_session().create_client(
                "s3", endpoint_url=endpoint,
                region_name=os.environ.get("AWS_REGION", "us-east-1"),
                config=botocore.config.Config(
                    s3={"addressing_style": "path"}))
        return self.client

    def files(self):
        """Return {relative path: content} of every file in the origin."""
        result = {}
        if self.dir is not None:
            for top, _, names in os.walk(self.dir):
                for name in names:
                    path = os.path.join(top, name)
                    # A temporary file of a store in progress may go
                    # away meanwhile.
                    try:
                        with open(path, "rb") as f:
                            data = f.read()
                    except FileNotFoundError:
                        continue
                    result[os.path.relpath(path, self.dir)] = data
            return result
        client = self._s3()
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for entry in page.get("Contents", []):
                key = entry["Key"]
                # Keys ending in / are directory markers, not files.
                if key.endswith("/"):
                    continue
                body = client.get_object(Bucket=self.bucket, Key=key)
                result[key[len(self.prefix):]] = body["Body"].read()
        return result


class Fsx:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.chunk = parse_size(option_value(args.options, "chunk_size",
                                             "4M"))
        self.max_size = args.max_size
        self.mnt = os.path.abspath(args.mountpoint)
        self.ref = os.path.abspath(args.ref)
        self.origin = Origin(args.origin)
        self.write_mode = option_value(args.options, "write_mode",
                                       "through")
        self.handles = []
        self.next_handle = 1
        self.history = collections.deque(maxlen=HISTORY)
        self.op_number = 0
        self.proc = None
        self.mounts = 0
        self.counts = collections.Counter()
        self.both_failed = False

    # ---- mounting

    def mount(self):
        os.makedirs(self.mnt, exist_ok=True)
        log = open(self.args.log, "ab")
        self.mounts += 1
        log.write(b"----- fsx.py: mount %d\n" % self.mounts)
        log.flush()
        self.proc = subprocess.Popen(
            [self.args.nearfs, "-f", "-o", self.args.options,
             self.args.origin, self.mnt],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        for _ in range(200):
            if os.path.ismount(self.mnt):
                return
            if self.proc.poll() is not None:
                raise MountError("nearfs exited with status %d before "
                                 "mounting %s; see %s"
                                 % (self.proc.returncode, self.mnt,
                                    self.args.log))
            time.sleep(0.1)
        raise MountError("nearfs did not mount %s within 20 s; see %s"
                         % (self.mnt, self.args.log))

    def unmount(self):
        """Unmount and wait for the daemon, which uploads what is
        pending in write-back mode before it exits."""
        subprocess.run(["fusermount3", "-u", self.mnt], check=True)
        try:
            status = self.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            raise MountError("nearfs still runs 300 s after the unmount "
                             "of %s" % self.mnt)
        self.proc = None
        if status != 0:
            raise MountError("nearfs exited with status %d after the "
                             "unmount of %s; see %s"
                             % (status, self.mnt, self.args.log))

    def abandon_mount(self):
        """Unmount after a failure, without checks."""
        if self.proc is None:
            return
        for handle in self.handles:
            for fd in (handle.mount_fd, handle.ref_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.handles = []
        subprocess.run(["fusermount3", "-u", "-z", self.mnt],
                       stderr=subprocess.DEVNULL)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.proc = None

    # ---- running one operation on both sides

    def note(self, text):
        self.history.append("%d: %s" % (self.op_number, text))
        if self.args.verbose:
            print("fsx: op %s" % self.history[-1], flush=True)

    def both(self, what, ref_call, mount_call):
        """Run ref_call, then mount_call, and return both results.  When
        both failed with the same errno, return None for both and set
        both_failed."""
        ref_error = mount_error = None
        ref_result = mount_result = None
        self.both_failed = False
        try:
            ref_result = ref_call()
        except OSError as exc:
            ref_error = exc
        try:
            mount_result = mount_call()
        except OSError as exc:
            mount_error = exc
        if ref_error is None and mount_error is None:
            return ref_result, mount_result
        if ref_error is not None and mount_error is not None and \
                ref_error.errno == mount_error.errno:
            self.note("  both failed with %s"
                      % errno.errorcode.get(ref_error.errno, "?"))
            self.both_failed = True
            return None, None
        raise Mismatch("%s: the reference %s, the mount %s"
                       % (what, self.describe(ref_error),
                          self.describe(mount_error)))

    @staticmethod
    def describe(error):
        if error is None:
            return "succeeded"
        return "failed with %s (%s)" % (
            errno.errorcode.get(error.errno, error.errno), error.strerror)

    def compare_bytes(self, what, offset, expected, actual):
        if expected == actual:
            return
        index = first_difference(expected, actual)
        raise Mismatch(
            "%s: first difference at offset %d (reference %d bytes, "
            "mount %d bytes; at that offset reference %r, mount %r)"
            % (what, offset + index, len(expected), len(actual),
               expected[index:index + 8], actual[index:index + 8]))

    # ---- choosing values

    def ref_path(self, name):
        return os.path.join(self.ref, name)

    def mount_path(self, name):
        return os.path.join(self.mnt, name)

    def ref_size(self, name):
        try:
            return os.stat(self.ref_path(name)).st_size
        except FileNotFoundError:
            return 0

    def pick_offset(self, size):
        """Return an offset near a chunk boundary, near the end of the
        file, past it, or anywhere below max_size."""
        roll = self.rng.random()
        if roll < 0.35:
            boundary = self.chunk * self.rng.randrange(
                self.max_size // self.chunk + 1)
            offset = boundary + self.rng.randint(-16, 16)
        elif roll < 0.55:
            offset = size + self.rng.randint(-64, 64)
        elif roll < 0.65:
            offset = size + self.rng.randint(1, 2 * self.chunk)
        else:
            offset = self.rng.randrange(max(size, self.chunk) + 1)
        return min(max(offset, 0), self.max_size)

    def pick_length(self):
        roll = self.rng.random()
        if roll < 0.25:
            return self.rng.randint(1, 16)
        if roll < 0.5:
            return self.rng.randint(1, 8192)
        if roll < 0.75:
            return self.chunk + self.rng.randint(-16, 16)
        return self.rng.randint(1, 3 * self.chunk)

    def pick_handle(self, writable=False):
        choices = [h for h in self.handles if h.writable or not writable]
        if not choices:
            return None
        return self.rng.choice(choices)

    # ---- operations

    def op_open(self):
        if len(self.handles) >= 6:
            return self.op_close()
        name = self.rng.choice(NAMES)
        exists = os.path.exists(self.ref_path(name))
        roll = self.rng.random()
        if self.args.no_stale_readers:
            if roll < 0.15 and any(h.name == name for h in self.handles):
                return self.op_read_path()
            self.close_readers(name)
        if roll < 0.15 and exists:
            flags, label = os.O_RDONLY, "O_RDONLY"
        else:
            flags, label = os.O_RDWR, "O_RDWR"
            if not exists or self.rng.random() < 0.3:
                flags |= os.O_CREAT
                label += "|O_CREAT"
            if self.rng.random() < 0.1:
                flags |= os.O_TRUNC
                label += "|O_TRUNC"
        number = self.next_handle
        self.next_handle += 1
        self.note("open %s %s -> h%d" % (name, label, number))
        ref_fd, mount_fd = self.both(
            "open %s" % name,
            lambda: os.open(self.ref_path(name), flags, 0o644),
            lambda: os.open(self.mount_path(name), flags, 0o644))
        if ref_fd is None:
            return
        self.handles.append(Handle(number, name, mount_fd, ref_fd,
                                   flags & os.O_RDWR != 0))

    def close_readers(self, name):
        """Close the read-only handles of name, with --no-stale-readers."""
        if not self.args.no_stale_readers:
            return
        for handle in list(self.handles):
            if handle.name == name and not handle.writable:
                self.close_handle(handle)

    def close_handle(self, handle):
        self.handles.remove(handle)
        self.note("close h%d (%s)" % (handle.number, handle.name))
        os.close(handle.ref_fd)
        try:
            os.close(handle.mount_fd)
        except OSError as exc:
            raise Mismatch("close of h%d (%s) on the mount failed with "
                           "%s" % (handle.number, handle.name,
                                   self.describe(exc)))

    def op_close(self):
        handle = self.pick_handle()
        if handle is None:
            return self.op_open()
        self.close_handle(handle)

    def op_read(self):
        handle = self.pick_handle()
        if handle is None:
            return self.op_read_path()
        size = os.fstat(handle.ref_fd).st_size
        offset = self.pick_offset(size)
        length = self.pick_length()
        self.note("read h%d (%s) %d+%d, size %d"
                  % (handle.number, handle.name, offset, length, size))
        expected, actual = self.both(
            "read of h%d" % handle.number,
            lambda: os.pread(handle.ref_fd, length, offset),
            lambda: os.pread(handle.mount_fd, length, offset))
        if expected is not None:
            self.compare_bytes("read of h%d (%s) at %d+%d"
                               % (handle.number, handle.name, offset,
                                  length), offset, expected, actual)

    def op_read_path(self):
        """Open, read and close by name, with no other handle involved."""
        name = self.rng.choice(NAMES)
        self.note("read whole %s" % name)
        self.compare_file(name)

    def op_write(self):
        handle = self.pick_handle(writable=True)
        if handle is None:
            return self.op_open()
        size = os.fstat(handle.ref_fd).st_size
        offset = self.pick_offset(size)
        length = min(self.pick_length(), self.max_size + 2 * self.chunk -
                     offset)
        data = self.rng.randbytes(max(length, 1))
        self.note("write h%d (%s) %d+%d, size %d"
                  % (handle.number, handle.name, offset, len(data), size))
        ref_count, mount_count = self.both(
            "write to h%d" % handle.number,
            lambda: os.pwrite(handle.ref_fd, data, offset),
            lambda: os.pwrite(handle.mount_fd, data, offset))
        if ref_count != mount_count:
            raise Mismatch("write to h%d at %d: the reference wrote %s "
                           "bytes, the mount %s"
                           % (handle.number, offset, ref_count,
                              mount_count))

    def pick_truncate_size(self, size):
        roll = self.rng.random()
        if roll < 0.4:
            return self.rng.randrange(size + 1)
        if roll < 0.6:
            return max(0, self.chunk * self.rng.randrange(
                self.max_size // self.chunk + 1) + self.rng.randint(-8, 8))
        return min(size + self.rng.randint(1, 3 * self.chunk),
                   self.max_size)

    def op_ftruncate(self):
        handle = self.pick_handle(writable=True)
        if handle is None:
            return self.op_truncate()
        size = os.fstat(handle.ref_fd).st_size
        new_size = self.pick_truncate_size(size)
        self.note("ftruncate h%d (%s) %d -> %d"
                  % (handle.number, handle.name, size, new_size))
        self.both("ftruncate of h%d" % handle.number,
                  lambda: os.ftruncate(handle.ref_fd, new_size),
                  lambda: os.ftruncate(handle.mount_fd, new_size))

    def op_truncate(self):
        name = self.rng.choice(NAMES)
        size = self.ref_size(name)
        new_size = self.pick_truncate_size(size)
        self.close_readers(name)
        self.note("truncate %s %d -> %d" % (name, size, new_size))
        self.both("truncate of %s" % name,
                  lambda: os.truncate(self.ref_path(name), new_size),
                  lambda: os.truncate(self.mount_path(name), new_size))

    def op_rename(self):
        old, new = self.rng.sample(NAMES, 2)
        self.note("rename %s -> %s" % (old, new))
        self.both("rename %s to %s" % (old, new),
                  lambda: os.rename(self.ref_path(old), self.ref_path(new)),
                  lambda: os.rename(self.mount_path(old),
                                    self.mount_path(new)))
        if self.both_failed:
            return
        for handle in self.handles:
            if handle.name == new:
                handle.name = "(replaced %s)" % new
        for handle in self.handles:
            if handle.name == old:
                handle.name = new

    def op_unlink(self):
        name = self.rng.choice(NAMES)
        self.note("unlink %s" % name)
        self.both("unlink %s" % name,
                  lambda: os.unlink(self.ref_path(name)),
                  lambda: os.unlink(self.mount_path(name)))
        if self.both_failed:
            return
        for handle in self.handles:
            if handle.name == name:
                handle.name = "(unlinked %s)" % name

    def op_fsync(self):
        handle = self.pick_handle()
        if handle is None:
            return self.op_open()
        self.note("fsync h%d (%s)" % (handle.number, handle.name))
        self.both("fsync of h%d" % handle.number,
                  lambda: os.fsync(handle.ref_fd),
                  lambda: os.fsync(handle.mount_fd))

    def op_stat(self):
        name = self.rng.choice(NAMES)
        self.note("stat %s" % name)
        ref_stat, mount_stat = self.both(
            "stat %s" % name,
            lambda: os.stat(self.ref_path(name)),
            lambda: os.stat(self.mount_path(name)))
        if ref_stat is not None and ref_stat.st_size != mount_stat.st_size:
            raise Mismatch("stat %s: size %d in the reference, %d on the "
                           "mount" % (name, ref_stat.st_size,
                                      mount_stat.st_size))

    def op_drop_pages(self):
        """Drop the kernel's cached pages of a file, so that the next
        read reaches the daemon."""
        name = self.rng.choice(NAMES)
        self.note("drop cached pages of %s" % name)
        try:
            fd = os.open(self.mount_path(name), os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

    def close_all(self):
        while self.handles:
            self.close_handle(self.handles[0])

    def op_sync(self):
        """Close every handle, flush the write-back queue, and compare
        the origin with the reference."""
        self.close_all()
        self.note("sync: nearfs-ctl flush, compare the origin")
        if self.write_mode == "back":
            result = subprocess.run([self.args.ctl, "flush", self.mnt],
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
            if result.returncode != 0:
                raise Mismatch("nearfs-ctl flush exited with %d: %s"
                               % (result.returncode,
                                  result.stdout.decode(errors="replace")))
        self.compare_origin(mounted=True)

    def op_remount(self):
        self.close_all()
        self.note("remount")
        self.unmount()
        self.compare_origin()
        self.mount()
        self.compare_all()

    OPS = [
        ("open", 10), ("close", 8), ("read", 20), ("read_path", 4),
        ("write", 22), ("ftruncate", 5), ("truncate", 3), ("rename", 4),
        ("unlink", 2), ("fsync", 4), ("stat", 4), ("drop_pages", 3),
        ("sync", 1.5), ("remount", 1.5),
    ]

    # ---- whole-tree checks

    def read_whole(self, root, name):
        with open(os.path.join(root, name), "rb") as f:
            return f.read()

    def compare_file(self, name):
        expected, actual = self.both(
            "whole read of %s" % name,
            lambda: self.read_whole(self.ref, name),
            lambda: self.read_whole(self.mnt, name))
        if expected is not None:
            self.compare_bytes("whole read of %s" % name, 0, expected,
                               actual)

    def ref_files(self):
        result = {}
        for top, _, names in os.walk(self.ref):
            for name in names:
                path = os.path.join(top, name)
                result[os.path.relpath(path, self.ref)] = path
        return result

    def compare_all(self):
        for name in NAMES:
            self.compare_file(name)
        for folder in ("", "sub"):
            ref_names = sorted(os.listdir(os.path.join(self.ref, folder)))
            mount_names = sorted(os.listdir(os.path.join(self.mnt,
                                                         folder)))
            if ref_names != mount_names:
                raise Mismatch("listing of /%s: reference %s, mount %s"
                               % (folder, ref_names, mount_names))

    def compare_origin(self, mounted=False):
        """Compare the origin with the reference.  On a live mount retry
        for up to 10 s: the kernel sends FUSE_RELEASE after close(2)
        returned, and a file created and closed without a write reaches
        the origin only at its release, also when a rename put it over
        another file."""
        for _ in range(100 if mounted else 0):
            try:
                return self.compare_origin_once()
            except Mismatch:
                time.sleep(0.1)
        return self.compare_origin_once()

    def compare_origin_once(self):
        stored = self.origin.files()
        expected = self.ref_files()
        if sorted(stored) != sorted(expected):
            raise Mismatch("files in the origin: expected %s, found %s"
                           % (sorted(expected), sorted(stored)))
        for name, path in expected.items():
            with open(path, "rb") as f:
                data = f.read()
            self.compare_bytes("%s in the origin" % name, 0, data,
                               stored[name])
        self.counts["origin checks"] += 1

    # ---- the run

    def setup(self):
        os.makedirs(os.path.join(self.ref, "sub"), exist_ok=True)
        if os.listdir(os.path.join(self.ref, "sub")) or \
                set(os.listdir(self.ref)) != {"sub"}:
            raise SystemExit("fsx.py: %s must be empty" % self.ref)
        self.mount()
        if os.listdir(self.mnt):
            raise SystemExit("fsx.py: the origin must be empty, but %s "
                             "lists %s" % (self.mnt, os.listdir(self.mnt)))
        os.mkdir(os.path.join(self.mnt, "sub"))

    def run(self):
        names = [name for name, _ in self.OPS]
        weights = [weight for _, weight in self.OPS]
        self.setup()
        for self.op_number in range(1, self.args.ops + 1):
            name = self.rng.choices(names, weights)[0]
            self.counts[name] += 1
            getattr(self, "op_" + name)()
        self.op_number += 1
        self.close_all()
        self.note("final checks")
        self.compare_all()
        self.unmount()
        self.compare_origin()


def build_parser():
    parser = argparse.ArgumentParser(
        description="Random operations on a nearfs mount, compared with "
        "a reference directory.")
    parser.add_argument("--origin", required=True,
                        help="s3://BUCKET[/PREFIX] or a directory, empty")
    parser.add_argument("--mountpoint", required=True)
    parser.add_argument("--ref", required=True,
                        help="reference directory on local disk, empty")
    parser.add_argument("--options", required=True,
                        help="the -o list for nearfs (cache_dir=..., "
                        "chunk_size=64K, write_mode=...)")
    parser.add_argument("--seed", type=int,
                        help="seed of the operations (default: random)")
    parser.add_argument("--ops", type=int, default=300,
                        help="number of operations (default 300)")
    parser.add_argument("--max-size", type=parse_size, default=1 << 20,
                        help="largest offset of a write (default 1M)")
    parser.add_argument("--nearfs",
                        default=os.path.join(ROOT, "build", "nearfs"))
    parser.add_argument("--ctl",
                        default=os.path.join(ROOT, "build", "nearfs-ctl"))
    parser.add_argument("--log", help="nearfs log file (default: "
                        "MOUNTPOINT.log)")
    # NOTE: a read-only descriptor opened before a descriptor for
    # writing, or before a truncate by path, reads the version of its
    # open.  After one read through it, reads through the writer's
    # descriptor stop at the old size, likely because the kernel takes
    # the short read for the end of the file.  This option keeps fsx
    # away from that known fault.
    parser.add_argument("--no-stale-readers", action="store_true",
                        help="close the read-only descriptors of a file "
                        "before it is opened for writing or truncated")
    parser.add_argument("--verbose", action="store_true",
                        help="print every operation")
    return parser


def main():
    parser = build_parser()
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 32)
    if args.log is None:
        args.log = os.path.abspath(args.mountpoint) + ".log"
    print("fsx: seed %d, %d ops, origin %s, options %s"
          % (args.seed, args.ops, args.origin, args.options), flush=True)
    repeat = [sys.argv[0]]
    skip = False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--seed":
            skip = True
        elif not arg.startswith("--seed="):
            repeat.append(arg)
    print("fsx: repeat with: %s --seed %d (after emptying the origin, "
          "the reference and the cache_dir)"
          % (shlex.join(repeat), args.seed), flush=True)
    fsx = Fsx(args)
    try:
        fsx.run()
    except Mismatch as exc:
        print("fsx: MISMATCH, seed %d, op %d: %s"
              % (args.seed, fsx.op_number, exc), flush=True)
        print("fsx: last operations:", flush=True)
        for line in fsx.history:
            print("    " + line, flush=True)
        fsx.abandon_mount()
        return 1
    except MountError as exc:
        print("fsx: MOUNT FAILED, seed %d, op %d: %s"
              % (args.seed, fsx.op_number, exc), flush=True)
        for line in fsx.history:
            print("    " + line, flush=True)
        fsx.abandon_mount()
        return 3
    except BaseException:
        fsx.abandon_mount()
        raise
    print("fsx: ok, seed %d: %d ops, %d mounts, %d origin checks (%s)"
          % (args.seed, args.ops, fsx.mounts, fsx.counts["origin checks"],
             ", ".join("%s %d" % (name, fsx.counts[name])
                       for name, _ in Fsx.OPS)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
