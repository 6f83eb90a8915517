# net.sh - helpers for servers on 127.0.0.1, sourced by tests/lib.sh,
# tools/bench.sh and tools/demo.sh.  s3 needs S3CLI, the path of
# tests/tools/s3cli.py, set by the script that sources this file.

# A free TCP port on 127.0.0.1 (bound, then released).
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Run the test S3 client (tests/tools/s3cli.py) against the test server.
s3() {
	python3 "$S3CLI" "$@"
}

# http_answers URL: succeeds when an HTTP server responds at URL, with any
# status.
http_answers() {
	python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
PY
}
