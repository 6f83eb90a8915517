"""s3_http.py - pieces shared by the test proxies in front of an S3 server
(tests/tools/sigv4_proxy.py, tests/tools/fault_proxy.py and
tests/bench/latency_proxy.py): request kinds as nearfs counts them, S3
error bodies and stats files.
"""

import json
import os
from urllib.parse import parse_qs, urlsplit

# Request kinds, as in the requests.* counters of `nearfs-ctl stats`, and
# OTHER for anything else.
KINDS = ("GET", "HEAD", "LIST", "PUT", "COPY", "DELETE", "MULTIPART",
         "OTHER")


def request_kind(method, target, headers):
    """Return the kind of one request for path-style addressing.

    target is the request target (path and query); headers maps lower-case
    names to values (any mapping with get()).  Every request of a multipart
    upload (initiate, part, complete, abort) is MULTIPART, a GET of a bucket
    or with list-type is LIST, and a PUT with x-amz-copy-source is COPY.
    """
    parts = urlsplit(target)
    params = parse_qs(parts.query, keep_blank_values=True)
    if method == "POST" or "uploadId" in params or "partNumber" in params:
        return "MULTIPART"
    if method == "GET":
        if "list-type" in params or "/" not in parts.path.strip("/"):
            return "LIST"
        return "GET"
    if method == "PUT":
        if headers.get("x-amz-copy-source") is not None:
            return "COPY"
        return "PUT"
    if method in ("HEAD", "DELETE"):
        return method
    return "OTHER"


def s3_error_body(code, message):
    """Return the XML body of an S3 error response."""
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"
            f"<Code>{code}</Code><Message>{message}</Message>"
            "</Error>").encode()


def write_json(path, data):
    """Replace the file at path with data as JSON, atomically, so that a
    reader never sees half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
