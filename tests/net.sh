# net.sh - helpers for servers on 127.0.0.1, their processes and page
# caches, sourced by tests/lib.sh, tests/integration/test_sigv4.sh,
# tools/bench.sh and tools/demo.sh.  s3
# needs S3CLI, the path of tests/tools/s3cli.py, set by the script that
# sources this file.

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

# use_test_credentials KEY SECRET [REGION]: export the key pair of a local
# test server and the region (us-east-1 by default), and unset the
# session token, profile and endpoint, so that no value from the caller's
# environment reaches the S3 client.
use_test_credentials() {
	export AWS_ACCESS_KEY_ID=$1 AWS_SECRET_ACCESS_KEY=$2
	export AWS_REGION=${3:-us-east-1}
	unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s, with a warning.
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "process $pid did not stop on SIGTERM; sending SIGKILL" >&2
	kill -9 "$pid" 2>/dev/null || true
}

# drop_page_cache FILE...: drop the kernel's cached pages of each file
# (POSIX_FADV_DONTNEED, no privilege needed), so that the next read
# reaches the nearfs daemon instead of the page cache.
drop_page_cache() {
	python3 - "$@" <<'PY'
import os, sys
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
PY
}
