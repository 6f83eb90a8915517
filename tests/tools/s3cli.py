#!/usr/bin/env python3
"""s3cli.py - a direct S3 client for the integration tests (botocore).

The endpoint comes from NEARFS_TEST_ENDPOINT, which is required so that
no default ever reaches AWS.  Credentials and region come from the usual
AWS_* variables, and buckets are addressed in path style.

  s3cli.py mb BUCKET
  s3cli.py public BUCKET                     anyone may list and read
  s3cli.py put BUCKET KEY FILE [--meta k=v ...]
  s3cli.py put-bytes BUCKET KEY TEXT [--meta k=v ...]
  s3cli.py get BUCKET KEY [FIRST-LAST]       body to stdout
  s3cli.py head BUCKET KEY                   JSON: size, etag, metadata
  s3cli.py ls BUCKET [PREFIX]                one "size key" line per object
  s3cli.py uploads BUCKET [PREFIX]           one "key upload-id" line per
                                             multipart upload in progress
  s3cli.py rm BUCKET KEY [KEY ...]
  s3cli.py gen-files BUCKET PREFIX COUNT SIZE  COUNT objects of SIZE bytes

Exits 0 on success, 2 on a usage error, 1 when a request fails (with
the S3 error code on stderr; "head" and "get" exit 3 when the key is
not found).
"""

import argparse
import json
import os
import sys

import botocore.config
import botocore.exceptions
import botocore.session

NOT_FOUND = 3


def make_client():
    endpoint = os.environ.get("NEARFS_TEST_ENDPOINT")
    if not endpoint:
        sys.exit("s3cli.py: NEARFS_TEST_ENDPOINT is not set; set it to "
                 "the test server, e.g. http://127.0.0.1:5000")
    session = botocore.session.get_session()
    config = botocore.config.Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=10, read_timeout=60)
    return session.create_client(
        "s3", endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=config)


def parse_meta(pairs):
    meta = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            sys.exit("s3cli.py: invalid --meta %r: expected key=value"
                     % pair)
        meta[key] = value
    return meta


def cmd_mb(client, args):
    client.create_bucket(Bucket=args.bucket)


def cmd_public(client, args):
    """Let unsigned requests list the bucket and read its objects.

    s3:HeadObject is no AWS action, but moto 5 checks it for HEAD where
    AWS checks s3:GetObject.
    """
    policy = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["s3:GetObject", "s3:HeadObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::%s" % args.bucket,
                         "arn:aws:s3:::%s/*" % args.bucket],
        }],
    }
    client.put_bucket_policy(Bucket=args.bucket, Policy=json.dumps(policy))


def cmd_put(client, args):
    with open(args.file, "rb") as body:
        client.put_object(Bucket=args.bucket, Key=args.key, Body=body,
                          Metadata=parse_meta(args.meta))


def cmd_put_bytes(client, args):
    client.put_object(Bucket=args.bucket, Key=args.key,
                      Body=args.text.encode(),
                      Metadata=parse_meta(args.meta))


def cmd_get(client, args):
    extra = {}
    if args.range:
        extra["Range"] = "bytes=" + args.range
    reply = client.get_object(Bucket=args.bucket, Key=args.key, **extra)
    out = sys.stdout.buffer
    for block in reply["Body"].iter_chunks(1 << 20):
        out.write(block)
    out.flush()


def cmd_head(client, args):
    reply = client.head_object(Bucket=args.bucket, Key=args.key)
    print(json.dumps({
        "size": reply["ContentLength"],
        "etag": reply["ETag"].strip('"'),
        "last_modified": reply["LastModified"].isoformat(),
        "content_type": reply.get("ContentType", ""),
        "metadata": reply.get("Metadata", {}),
    }, sort_keys=True))


def cmd_ls(client, args):
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=args.bucket, Prefix=args.prefix)
    for page in pages:
        for item in page.get("Contents", []):
            print(item["Size"], item["Key"])


def cmd_uploads(client, args):
    """Print the multipart uploads that were created and neither
    completed nor aborted, in the server's order."""
    pages = client.get_paginator("list_multipart_uploads").paginate(
        Bucket=args.bucket, Prefix=args.prefix)
    for page in pages:
        for upload in page.get("Uploads", []):
            print(upload["Key"], upload["UploadId"])


def cmd_rm(client, args):
    for key in args.keys:
        client.delete_object(Bucket=args.bucket, Key=key)


def cmd_gen_files(client, args):
    """Create COUNT objects PREFIX00000.. with distinct content."""
    for i in range(args.count):
        key = "%s%05d" % (args.prefix, i)
        line = ("%s %d\n" % (key, i)).encode()
        body = (line * (args.size // len(line) + 1))[:args.size]
        client.put_object(Bucket=args.bucket, Key=key, Body=body)


def build_parser():
    parser = argparse.ArgumentParser(prog="s3cli.py")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("mb")
    p.add_argument("bucket")
    p.set_defaults(run=cmd_mb)

    p = sub.add_parser("public")
    p.add_argument("bucket")
    p.set_defaults(run=cmd_public)

    p = sub.add_parser("put")
    p.add_argument("bucket")
    p.add_argument("key")
    p.add_argument("file")
    p.add_argument("--meta", action="append", metavar="K=V")
    p.set_defaults(run=cmd_put)

    p = sub.add_parser("put-bytes")
    p.add_argument("bucket")
    p.add_argument("key")
    p.add_argument("text")
    p.add_argument("--meta", action="append", metavar="K=V")
    p.set_defaults(run=cmd_put_bytes)

    p = sub.add_parser("get")
    p.add_argument("bucket")
    p.add_argument("key")
    p.add_argument("range", nargs="?", metavar="FIRST-LAST")
    p.set_defaults(run=cmd_get)

    p = sub.add_parser("head")
    p.add_argument("bucket")
    p.add_argument("key")
    p.set_defaults(run=cmd_head)

    p = sub.add_parser("ls")
    p.add_argument("bucket")
    p.add_argument("prefix", nargs="?", default="")
    p.set_defaults(run=cmd_ls)

    p = sub.add_parser("uploads")
    p.add_argument("bucket")
    p.add_argument("prefix", nargs="?", default="")
    p.set_defaults(run=cmd_uploads)

    p = sub.add_parser("rm")
    p.add_argument("bucket")
    p.add_argument("keys", nargs="+", metavar="key")
    p.set_defaults(run=cmd_rm)

    p = sub.add_parser("gen-files")
    p.add_argument("bucket")
    p.add_argument("prefix")
    p.add_argument("count", type=int)
    p.add_argument("size", type=int)
    p.set_defaults(run=cmd_gen_files)
    return parser


def main():
    args = build_parser().parse_args()
    client = make_client()
    try:
        args.run(client, args)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "?")
        print("s3cli.py: %s failed: %s %s" % (
            args.command, code, error.get("Message", "")), file=sys.stderr)
        if code in ("404", "NoSuchKey", "NoSuchBucket"):
            return NOT_FOUND
        return 1
    except (botocore.exceptions.BotoCoreError, OSError) as exc:
        print("s3cli.py: %s failed: %s" % (args.command, exc),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
