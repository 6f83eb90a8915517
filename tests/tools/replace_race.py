#!/usr/bin/env python3
"""replace_race.py - threads that replace one file by rename and read it.

    replace_race.py DIR [--threads N] [--rounds N] [--seed N]

Each thread writes a version of its own to DIR/replaced.bin.tmp-T, renames
it over DIR/replaced.bin and reads DIR/replaced.bin back whole, while the
other threads do the same.  Every version starts with its own length, its
thread and its round, and repeats one byte, so a read that pairs one
version's size with another's bytes, or mixes two versions, is caught.
Prints "reads N, bad N, errors N" and exits 1 when a read was bad or
failed.
"""
import argparse
import os
import random
import struct
import sys
import threading

HEADER = struct.Struct("<QII")  # total length, thread, round


def version(thread, rnd, size):
    fill = bytes([(thread * 16 + rnd) % 251 + 1])
    return HEADER.pack(size, thread, rnd) + fill * (size - HEADER.size)


def problem(data):
    """Return what is wrong with data, or None for a whole version."""
    if len(data) < HEADER.size:
        return "%d bytes, shorter than a header" % len(data)
    size, thread, rnd = HEADER.unpack_from(data)
    if size != len(data):
        return ("%d bytes of the %d-byte version of thread %d, round %d"
                % (len(data), size, thread, rnd))
    if data != version(thread, rnd, size):
        return ("the %d-byte version of thread %d, round %d, mixed with "
                "other bytes" % (size, thread, rnd))
    return None


def worker(args, thread, counts, lock):
    rng = random.Random("%d/%d" % (args.seed, thread))
    name = os.path.join(args.dir, "replaced.bin")
    tmp = "%s.tmp-%d" % (name, thread)
    for rnd in range(args.rounds):
        size = 131072 + rng.randrange(3) * 4096 + 77
        fault = None
        try:
            with open(tmp, "wb") as f:
                f.write(version(thread, rnd, size))
            os.rename(tmp, name)
            with open(name, "rb") as f:
                fault = problem(f.read())
        except OSError as exc:
            fault = "error: %s" % exc
        with lock:
            counts["reads"] += 1
            if fault:
                key = "errors" if fault.startswith("error") else "bad"
                counts[key] += 1
                print("replace_race: seed %d: thread %d round %d: %s"
                      % (args.seed, thread, rnd, fault), file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    counts = {"reads": 0, "bad": 0, "errors": 0}
    lock = threading.Lock()
    threads = [threading.Thread(target=worker,
                                args=(args, t, counts, lock))
               for t in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("reads %d, bad %d, errors %d"
          % (counts["reads"], counts["bad"], counts["errors"]))
    return 1 if counts["bad"] or counts["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
