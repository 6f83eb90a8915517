#!/bin/bash
# test_sigv4.sh - the S3 origin against moto_server through a proxy that
# verifies every SigV4 signature and counts the requests by kind.
#
# Needs build/tools/s3tool (make), moto_server and botocore.  Everything
# listens on 127.0.0.1 ports picked at random.  Prints one line per check
# and exits 1 when any check fails, 77 when moto_server or botocore is
# missing.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# The build folder under test, as in tests/lib.sh.  s3tool runs in the
# foreground, so a sanitizer report fails it through its exit status.
NEARFS_BUILD=${NEARFS_BUILD:-build}
case $NEARFS_BUILD in
/*) ;;
*) NEARFS_BUILD=$ROOT/$NEARFS_BUILD ;;
esac
S3TOOL=${S3TOOL:-$NEARFS_BUILD/tools/s3tool}
PROXY=$ROOT/tests/tools/sigv4_proxy.py
. "$ROOT/tests/net.sh"
WORK=$(mktemp -d /tmp/nearfs-sigv4.XXXXXX)
BUCKET=sigv4-test
REGION=us-east-1
ACCESS_KEY=AKIDNEARFSTEST
SECRET_KEY=nearfs-test-secret-key
PIDS=()
FAILURES=0

cleanup() {
	local pid

	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

pass() { echo "ok   $1"; }
fail() { echo "FAIL $1${2:+: $2}"; FAILURES=$((FAILURES + 1)); }

# check NAME COMMAND...: pass when COMMAND succeeds.
check() {
	local name=$1

	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

# check_eq NAME EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1" "expected '$2', got '$3'"
	fi
}

wait_for_port() {
	local i

	for i in $(seq 1 100); do
		if python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" \
			2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

if [ ! -x "$S3TOOL" ]; then
	echo "FAIL setup: $S3TOOL is missing, run make first"
	exit 1
fi
# Exit 77 (skipped) when the test server or botocore is not installed.
if ! command -v moto_server >/dev/null; then
	echo "SKIP setup: moto_server not found, run make deps"
	exit 77
fi
if ! python3 -c 'import botocore' 2>/dev/null; then
	echo "SKIP setup: botocore not found, run make deps"
	exit 77
fi

MOTO_PORT=$(free_port)
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
if ! wait_for_port "$MOTO_PORT"; then
	echo "FAIL setup: moto_server did not start on port $MOTO_PORT"
	cat "$WORK/moto.log"
	exit 1
fi

# start_proxy PORT STATS [ARGS]: start a verifying proxy in front of moto.
start_proxy() {
	local port=$1 stats=$2

	shift 2
	python3 "$PROXY" --port "$port" --upstream "127.0.0.1:$MOTO_PORT" \
		--access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" \
		--region "$REGION" --stats "$stats" "$@" \
		>>"$WORK/proxy.log" 2>&1 &
	PIDS+=($!)
	wait_for_port "$port"
}

PROXY_PORT=$(free_port)
STATS=$WORK/stats.json
if ! start_proxy "$PROXY_PORT" "$STATS"; then
	echo "FAIL setup: the proxy did not start on port $PROXY_PORT"
	cat "$WORK/proxy.log"
	exit 1
fi

use_test_credentials "$ACCESS_KEY" "$SECRET_KEY" "$REGION"
export HOME=$WORK		# no ~/.aws files of the user
export S3TOOL_COUNTERS=1

# Direct access to moto with botocore, to prepare and verify.
cat >"$WORK/direct.py" <<'EOF'
import hashlib, json, sys
import botocore.session
from botocore.exceptions import ClientError

endpoint, bucket, cmd = sys.argv[1:4]
args = sys.argv[4:]
s3 = botocore.session.get_session().create_client(
    "s3", endpoint_url=endpoint, region_name="us-east-1")
if cmd == "mkbucket":
    s3.create_bucket(Bucket=bucket)
elif cmd == "fill":		# fill PREFIX COUNT
    for i in range(int(args[1])):
        s3.put_object(Bucket=bucket, Key=f"{args[0]}/k{i:04d}",
                      Body=b"x" * i)
elif cmd == "head":		# head KEY: metadata as JSON
    try:
        h = s3.head_object(Bucket=bucket, Key=args[0])
    except ClientError as e:
        print(json.dumps({"error": e.response["Error"]["Code"]}))
        sys.exit(0)
    print(json.dumps({"meta": h["Metadata"], "etag": h["ETag"].strip('"'),
                      "size": h["ContentLength"]}, sort_keys=True))
elif cmd == "md5":		# md5 KEY: of the stored bytes
    body = s3.get_object(Bucket=bucket, Key=args[0])["Body"].read()
    print(hashlib.md5(body).hexdigest())
elif cmd == "count":		# count PREFIX: keys below
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=args[0])
    print(sum(len(p.get("Contents", [])) for p in pages))
EOF

MOTO=http://127.0.0.1:$MOTO_PORT
ENDPOINT=http://127.0.0.1:$PROXY_PORT

direct() { python3 "$WORK/direct.py" "$MOTO" "$BUCKET" "$@"; }
# field JSON NAME: a value of the head output ("meta.mode", "size").
field() {
	python3 -c 'import json, sys
v = json.loads(sys.argv[1])
for part in sys.argv[2].split("."):
    v = v.get(part, "") if isinstance(v, dict) else ""
print(v)' "$1" "$2"
}
md5() { md5sum "$1" | cut -d' ' -f1; }

# Proxy counts as "GET=1 HEAD=2", non-zero kinds only, minus those of a
# snapshot file.
count_delta() {
	python3 -c 'import json, sys
now = json.load(open(sys.argv[1]))["counts"]
old = json.load(open(sys.argv[2]))["counts"]
print(" ".join(f"{k}={now[k] - old[k]}" for k in sorted(now)
               if now[k] != old[k]))' "$STATS" "$WORK/before.json"
}

# The origin's own counters from s3tool's stderr, in the same form.
tool_counts() {
	sed -n 's/^s3tool: counters //p' "$WORK/tool.err" | tr ' ' '\n' |
		grep -v '=0$' | grep -v '^retries\|^errors' | sort |
		paste -sd' '
}

# step NAME EXPECTED_COUNTS s3tool-ARGS...: run s3tool through the proxy
# (stdout to $WORK/out) and check that the proxy and the origin both
# counted EXPECTED_COUNTS requests.  Returns s3tool's status.
step() {
	local name=$1 expected=$2 rc

	shift 2
	cp "$STATS" "$WORK/before.json"
	"$S3TOOL" "$ENDPOINT" "$@" >"$WORK/out" 2>"$WORK/tool.err"
	rc=$?
	check_eq "$name: proxy request counts" "$expected" "$(count_delta)"
	check_eq "$name: origin request counts" "$expected" "$(tool_counts)"
	if [ $rc -ne 0 ] && [ "${EXPECT_FAILURE:-0}" != 1 ]; then
		fail "$name: s3tool exit status" "$rc: $(cat "$WORK/tool.err")"
	fi
	return $rc
}

direct mkbucket || { echo "FAIL setup: bucket creation failed"; exit 1; }
direct fill many 25 || { echo "FAIL setup: key creation failed"; exit 1; }
direct fill many/sub 1

# -- check
step "check" "LIST=1" "$BUCKET" check

# -- put of a key with spaces, '+', '%' and unicode, with metadata
KEY1='sig v4/a b+c%d ü€.txt'
head -c 100000 /dev/urandom >"$WORK/small"
touch -d @1700000000 "$WORK/small"
step "put" "PUT=1" "$BUCKET" put "$KEY1" "$WORK/small" 640
HEAD1=$(direct head "$KEY1")
check_eq "put: stored bytes" "$(md5 "$WORK/small")" "$(direct md5 "$KEY1")"
check_eq "put: x-amz-meta-mode" "$((8#100640))" "$(field "$HEAD1" meta.mode)"
check_eq "put: x-amz-meta-mtime" "1700000000" "$(field "$HEAD1" meta.mtime)"
check_eq "put: ETag in result" "version=$(field "$HEAD1" etag)" \
	"$(grep -o 'version=.*' "$WORK/out")"

# -- stat reads the metadata back
step "stat" "HEAD=1" "$BUCKET" stat "$KEY1"
check "stat: mode" grep -q 'mode=0100640 ' "$WORK/out"
check "stat: mtime" grep -q 'mtime=1700000000\.' "$WORK/out"
check "stat: size" grep -q 'size=100000 ' "$WORK/out"

# -- listing across pages: 25 keys and 1 prefix, 10 per page
NEARFS_S3_LIST_MAX_KEYS=10 step "list pages" "LIST=3" "$BUCKET" list many
check_eq "list pages: entries" 26 "$(wc -l <"$WORK/out")"
check_eq "list pages: subdirectory" "sub	mode=040755" \
	"$(grep -o '^sub	mode=[0-7]*' "$WORK/out")"
check "list pages: last file" grep -q '^k0024	mode=0100644 .*size=24 ' \
	"$WORK/out"

step "list unicode" "LIST=1" "$BUCKET" list "sig v4"
check_eq "list unicode: name" "a b+c%d ü€.txt" "$(cut -f1 "$WORK/out")"

# -- ranged get, and If-Match with a wrong version
step "ranged get" "GET=1" "$BUCKET" get "$KEY1" 1000 5000
check_eq "ranged get: bytes" \
	"$(tail -c +1001 "$WORK/small" | head -c 5000 | md5sum |
		cut -d' ' -f1)" "$(md5 "$WORK/out")"
EXPECT_FAILURE=1 step "stale get" "GET=1" "$BUCKET" get "$KEY1" 0 10 \
	0123456789abcdef0123456789abcdef
check "stale get: ESTALE" grep -q 'Stale file handle' "$WORK/tool.err"

# -- setattr is a copy onto itself with the merged metadata
step "setattr" "COPY=1 HEAD=1" "$BUCKET" setattr "$KEY1" 600
HEAD1=$(direct head "$KEY1")
check_eq "setattr: x-amz-meta-mode" "$((8#100600))" \
	"$(field "$HEAD1" meta.mode)"
check_eq "setattr: x-amz-meta-mtime kept" "1700000000" \
	"$(field "$HEAD1" meta.mtime)"
check_eq "setattr: bytes kept" "$(md5 "$WORK/small")" "$(direct md5 "$KEY1")"

# -- rename of a file: stat both names, copy, delete
KEY2='sig v4/renamed ü.txt'
step "rename file" "COPY=1 DELETE=1 HEAD=2 LIST=1" "$BUCKET" \
	mv "$KEY1" "$KEY2"
check_eq "rename file: source gone" "404" \
	"$(field "$(direct head "$KEY1")" error)"
check_eq "rename file: bytes" "$(md5 "$WORK/small")" "$(direct md5 "$KEY2")"
check_eq "rename file: metadata" "$((8#100600))" \
	"$(field "$(direct head "$KEY2")" meta.mode)"

# -- multipart upload: 12 MiB + 123 bytes in 5 MiB parts (3 parts)
head -c $((12 * 1024 * 1024 + 123)) /dev/urandom >"$WORK/big"
NEARFS_S3_MULTIPART_THRESHOLD=$((5 * 1024 * 1024)) \
S3TOOL_PART_SIZE=$((5 * 1024 * 1024)) \
	step "multipart put" "MULTIPART=5" "$BUCKET" put big "$WORK/big"
HEADBIG=$(direct head big)
check_eq "multipart put: bytes" "$(md5 "$WORK/big")" "$(direct md5 big)"
check "multipart put: 3-part ETag" \
	test "${HEADBIG##*-3\"*}" != "$HEADBIG"
check "multipart put: mtime stored" \
	test -n "$(field "$HEADBIG" meta.mtime)"

# -- a large get streams through the proxy in 1 MiB reads
step "large get" "GET=13" "$BUCKET" get big 0 $((13 * 1024 * 1024))
check_eq "large get: bytes" "$(md5 "$WORK/big")" "$(md5 "$WORK/out")"

# -- mkdir makes a marker with metadata, and rmdir removes it
step "mkdir" "PUT=1" "$BUCKET" mkdir "sig v4/d"
check_eq "mkdir: marker mode" "$((8#40755))" \
	"$(field "$(direct head 'sig v4/d/')" meta.mode)"
step "stat dir" "HEAD=2 LIST=1" "$BUCKET" stat "sig v4/d"
check "stat dir: mode" grep -q 'mode=040755 .*valid=0x9' "$WORK/out"
EXPECT_FAILURE=1 step "rmdir not empty" "LIST=1" "$BUCKET" rmdir "sig v4"
check "rmdir not empty: ENOTEMPTY" grep -q 'not empty' "$WORK/tool.err"
step "rmdir" "DELETE=1 LIST=1" "$BUCKET" rmdir "sig v4/d"
check_eq "rmdir: marker gone" "404" \
	"$(field "$(direct head 'sig v4/d/')" error)"

# -- rename of a directory moves every key below it
NEARFS_S3_LIST_MAX_KEYS=10 step "rename dir" \
	"COPY=26 DELETE=26 HEAD=2 LIST=5" "$BUCKET" mv many moved
check_eq "rename dir: keys moved" 26 "$(direct count moved/)"
check_eq "rename dir: none left" 0 "$(direct count many/)"

# -- delete
step "delete" "DELETE=1" "$BUCKET" rm "$KEY2"
check_eq "delete: gone" "404" "$(field "$(direct head "$KEY2")" error)"

# -- temporary credentials: the session token is sent and signed
AWS_SESSION_TOKEN=nearfs-test-session-token step "session token" "HEAD=1" \
	"$BUCKET" stat big

# -- the headers that carry request semantics are signed
SIGNED=$(python3 -c 'import json, sys
print(" ".join(json.load(open(sys.argv[1]))["signed_headers"]))' "$STATS")
for name in host x-amz-date x-amz-content-sha256 x-amz-security-token \
	range if-match x-amz-meta-mode x-amz-meta-mtime x-amz-copy-source \
	x-amz-metadata-directive; do
	case " $SIGNED " in
	*" $name "*) pass "signed header $name" ;;
	*) fail "signed header $name" "not in: $SIGNED" ;;
	esac
done

# -- the proxy saw only correct signatures and body hashes
MISMATCHES=$(python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))["mismatches"]
print(len(m))
for x in m: print(json.dumps(x), file=sys.stderr)' "$STATS")
check_eq "signatures: mismatches" 0 "$MISMATCHES"

# -- 503 SlowDown responses are retried
SLOW_PORT=$(free_port)
SLOW_STATS=$WORK/slow.json
if start_proxy "$SLOW_PORT" "$SLOW_STATS" --slowdown 2; then
	"$S3TOOL" "http://127.0.0.1:$SLOW_PORT" "$BUCKET" stat big \
		>"$WORK/out" 2>"$WORK/tool.err"
	check_eq "slowdown: stat status" 0 $?
	check "slowdown: 2 retries" grep -q 'retries=2 errors=0' \
		"$WORK/tool.err"
	check_eq "slowdown: proxy HEAD count" 3 "$(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["counts"]["HEAD"])' "$SLOW_STATS")"
else
	fail "slowdown: proxy start"
fi

# -- a stalled request times out and is retried
STALL_PORT=$(free_port)
STALL_STATS=$WORK/stall.json
if start_proxy "$STALL_PORT" "$STALL_STATS" --stall 1; then
	START=$(date +%s)
	S3TOOL_TIMEOUT_MS=1000 "$S3TOOL" "http://127.0.0.1:$STALL_PORT" \
		"$BUCKET" stat big >"$WORK/out" 2>"$WORK/tool.err"
	check_eq "stall: stat status" 0 $?
	check "stall: 1 retry" grep -q 'retries=1 errors=0' "$WORK/tool.err"
	check "stall: done within 5 s" test $(($(date +%s) - START)) -le 5
else
	fail "stall: proxy start"
fi

# -- the verifier catches a wrong signature (the last request sent)
AWS_SECRET_ACCESS_KEY=not-the-secret "$S3TOOL" "$ENDPOINT" "$BUCKET" \
	stat big >/dev/null 2>&1
check_eq "signatures: wrong key detected" 1 "$(python3 -c 'import json, sys
print(len(json.load(open(sys.argv[1]))["mismatches"]))' "$STATS")"
check "signatures: no secret in stats" \
	test "$(grep -c "$SECRET_KEY\|not-the-secret" "$STATS")" = 0

if [ "$FAILURES" -ne 0 ]; then
	echo "test_sigv4: $FAILURES checks failed"
	exit 1
fi
echo "test_sigv4: all checks passed"
