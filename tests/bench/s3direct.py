#!/usr/bin/env python3
"""s3direct.py - the direct S3 client of the benchmark (botocore), used
to load the data set, to poll the bucket and as the origin ceiling.

The endpoint comes from BENCH_ENDPOINT (required, http://127.0.0.1:PORT),
credentials and region from the AWS_* variables; path-style addressing.
Timed commands print the elapsed seconds of the work alone, without the
interpreter's start-up.

  s3direct.py mb BUCKET
  s3direct.py put BUCKET KEY FILE
  s3direct.py fill BUCKET PREFIX COUNT SIZE [DIRS]   COUNT files, or DIRS
                                   folders of COUNT files each (parallel)
  s3direct.py list BUCKET PREFIX         timed: list every key below PREFIX
  s3direct.py count BUCKET PREFIX        "KEYS BYTES" below PREFIX
  s3direct.py wait BUCKET PREFIX KEYS BYTES TIMEOUT
                                   timed: poll until the listing has at
                                   least KEYS keys and BYTES bytes
  s3direct.py randread BUCKET KEY SECONDS   ranged 4 KiB GETs: prints IOPS
  s3direct.py rangeread BUCKET KEY CHUNK PARALLEL MAXBYTES
                                   ranged GETs of CHUNK bytes, PARALLEL at
                                   once, over the first MAXBYTES: MB/s
  s3direct.py put-many BUCKET PREFIX COUNT SIZE   timed, one at a time
  s3direct.py rm-prefix BUCKET PREFIX
"""

import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import botocore.config
import botocore.session

POLL_SECONDS = 0.2


def make_client():
    endpoint = os.environ.get("BENCH_ENDPOINT", "")
    if not endpoint.startswith("http://127.0.0.1:"):
        sys.exit("s3direct.py: BENCH_ENDPOINT must be http://127.0.0.1:PORT,"
                 " got %r" % endpoint)
    config = botocore.config.Config(
        s3={"addressing_style": "path"}, max_pool_connections=16,
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10, read_timeout=300)
    return botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=config)


def body_for(key, size):
    line = ("%s\n" % key).encode()
    return (line * (size // len(line) + 1))[:size]


def list_keys(client, bucket, prefix):
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", []):
            yield item["Key"], item["Size"]


def cmd_mb(client, bucket):
    client.create_bucket(Bucket=bucket)


def cmd_put(client, bucket, key, path):
    with open(path, "rb") as body:
        client.put_object(Bucket=bucket, Key=key, Body=body)


def cmd_fill(client, bucket, prefix, count, size, dirs=None):
    if dirs is None:
        keys = ["%sf%05d" % (prefix, i) for i in range(int(count))]
    else:
        keys = ["%sd%03d/f%02d" % (prefix, d, i)
                for d in range(int(dirs)) for i in range(int(count))]

    def put(key):
        client.put_object(Bucket=bucket, Key=key,
                          Body=body_for(key, int(size)))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, keys))


def cmd_list(client, bucket, prefix):
    start = time.monotonic()
    n = sum(1 for _ in list_keys(client, bucket, prefix))
    print("%.6f" % (time.monotonic() - start))
    print("keys: %d" % n, file=sys.stderr)


def cmd_count(client, bucket, prefix):
    keys = total = 0
    for _, size in list_keys(client, bucket, prefix):
        keys += 1
        total += size
    print(keys, total)


def cmd_wait(client, bucket, prefix, keys, nbytes, timeout):
    start = time.monotonic()
    while True:
        n = total = 0
        for _, size in list_keys(client, bucket, prefix):
            n += 1
            total += size
        elapsed = time.monotonic() - start
        if n >= int(keys) and total >= int(nbytes):
            print("%.6f" % elapsed)
            return 0
        if elapsed > float(timeout):
            print("s3direct.py: %s: %d of %s keys, %d of %s bytes after "
                  "%s s" % (prefix, n, keys, total, nbytes, timeout),
                  file=sys.stderr)
            print("nan")
            return 1
        time.sleep(POLL_SECONDS)


def cmd_randread(client, bucket, key, seconds):
    size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    pages = size // 4096
    rng = random.Random(1)
    done = 0
    start = time.monotonic()
    while time.monotonic() - start < float(seconds):
        first = rng.randrange(pages) * 4096
        reply = client.get_object(Bucket=bucket, Key=key,
                                  Range="bytes=%d-%d" % (first, first + 4095))
        reply["Body"].read()
        done += 1
    print("%.1f" % (done / (time.monotonic() - start)))


def cmd_rangeread(client, bucket, key, chunk, parallel, max_bytes):
    size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    chunk, total = int(chunk), min(size, int(max_bytes))
    ranges = [(first, min(first + chunk, total) - 1)
              for first in range(0, total, chunk)]

    def fetch(span):
        reply = client.get_object(Bucket=bucket, Key=key,
                                  Range="bytes=%d-%d" % span)
        return len(reply["Body"].read())

    start = time.monotonic()
    with ThreadPoolExecutor(int(parallel)) as pool:
        got = sum(pool.map(fetch, ranges))
    print("%.2f" % (got / 1e6 / (time.monotonic() - start)))


def cmd_put_many(client, bucket, prefix, count, size):
    start = time.monotonic()
    for i in range(int(count)):
        key = "%sf%05d" % (prefix, i)
        client.put_object(Bucket=bucket, Key=key,
                          Body=body_for(key, int(size)))
    print("%.6f" % (time.monotonic() - start))


def cmd_rm_prefix(client, bucket, prefix):
    keys = [k for k, _ in list_keys(client, bucket, prefix)]
    for i in range(0, len(keys), 1000):
        client.delete_objects(Bucket=bucket, Delete={
            "Objects": [{"Key": k} for k in keys[i:i + 1000]],
            "Quiet": True})


COMMANDS = {
    "mb": cmd_mb, "put": cmd_put, "fill": cmd_fill, "list": cmd_list,
    "count": cmd_count, "wait": cmd_wait, "randread": cmd_randread,
    "rangeread": cmd_rangeread,
    "put-many": cmd_put_many, "rm-prefix": cmd_rm_prefix,
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    run = COMMANDS[sys.argv[1]]
    try:
        return run(make_client(), *sys.argv[2:]) or 0
    except TypeError as exc:
        sys.exit("s3direct.py: invalid arguments for %s: %s"
                 % (sys.argv[1], exc))


if __name__ == "__main__":
    sys.exit(main())
