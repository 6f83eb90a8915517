#!/usr/bin/env bash
# test_s3_errors.sh - invalid options and unusable origins make nearfs exit
# with a non-zero status and a message that names the value at fault.
. "$(dirname "$0")/../lib.sh"

MNT=$WORK/mnt
mkdir -p "$MNT"
start_s3
s3 mb data
s3 put-bytes data hello.txt "hello"

# expect_failure WHAT NEEDLE... -- COMMAND...: COMMAND must exit with a
# non-zero status within 60 s, without mounting, and its output must
# contain every NEEDLE (fixed strings, case-insensitive).
expect_failure() {
	local what=$1 needles=() status=0 out needle
	shift
	while [ "$1" != -- ]; do
		needles+=("$1")
		shift
	done
	shift
	check "$what"
	timeout -k 5 60 "$@" >"$WORK/out" 2>&1 || status=$?
	out=$(cat "$WORK/out")
	if mountpoint -q "$MNT"; then
		fusermount3 -u "$MNT"
		fail "$what: nearfs mounted $MNT: $out"
	fi
	[ "$status" -ne 124 ] || fail "$what: nearfs still ran after 60 s"
	assert_num "$status" -ne 0 "$what: exit status"
	for needle in "${needles[@]}"; do
		grep -qiF -- "$needle" "$WORK/out" ||
			fail "$what: message does not name '$needle': $out"
		log "ok: message names '$needle'"
	done
	log "message: $out"
}

s3_opts="cache_dir=$WORK/cache,endpoint=$NEARFS_TEST_ENDPOINT"

expect_failure "unknown option" bogus_option -- \
	"$NEARFS_BIN" -f -o "$s3_opts,bogus_option=1" s3://data "$MNT"
expect_failure "invalid size" cache_size 12Q -- \
	"$NEARFS_BIN" -f -o "$s3_opts,cache_size=12Q" s3://data "$MNT"
expect_failure "chunk_size not a power of two" chunk_size 3M -- \
	"$NEARFS_BIN" -f -o "$s3_opts,chunk_size=3M" s3://data "$MNT"
expect_failure "invalid duration" ttl 5x -- \
	"$NEARFS_BIN" -f -o "$s3_opts,ttl=5x" s3://data "$MNT"
expect_failure "missing mountpoint" mountpoint -- \
	"$NEARFS_BIN" -f -o "$s3_opts" s3://data
expect_failure "mountpoint does not exist" "$WORK/no-such-dir" -- \
	"$NEARFS_BIN" -f -o "$s3_opts" s3://data "$WORK/no-such-dir"
expect_failure "invalid write_mode" write_mode sideways "through, back or around" -- \
	"$NEARFS_BIN" -f -o "$s3_opts,write_mode=sideways" s3://data "$MNT"
expect_failure "directory origin does not exist" "$WORK/no-such-origin" -- \
	"$NEARFS_BIN" -f -o "cache_dir=$WORK/cache" "$WORK/no-such-origin" \
	"$MNT"
expect_failure "bucket not found" no-such-bucket "not found" -- \
	"$NEARFS_BIN" -f -o "$s3_opts" s3://no-such-bucket "$MNT"
# The check at start prints one error line, without a warning per attempt.
assert_eq 1 "$(grep -c . "$WORK/out")" "lines printed for a missing bucket"

port=$(closed_port)
expect_failure "unreachable endpoint" "127.0.0.1:$port" -- \
	"$NEARFS_BIN" -f -o \
	"cache_dir=$WORK/cache,endpoint=http://127.0.0.1:$port,timeout=5s" \
	s3://data "$MNT"
assert_eq 1 "$(grep -c . "$WORK/out")" \
	"lines printed for an unreachable endpoint"

# A listener that accepts connections and never replies, as a wrong
# port can.
silent_port=$(free_port)
python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
connections = []
while True:
    connections.append(s.accept()[0])
' "$silent_port" &
CLEANUP_PIDS+=($!)
for _ in $(seq 50); do
	python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
		"$silent_port" 2>/dev/null && break
	sleep 0.1
done
expect_failure "endpoint that never answers" "127.0.0.1:$silent_port" \
	"did not answer in time" "-o timeout=" "now 1000 ms" -- \
	"$NEARFS_BIN" -f -o \
	"cache_dir=$WORK/cache,endpoint=http://127.0.0.1:$silent_port,timeout=1s" \
	s3://data "$MNT"

mkdir -p "$WORK/empty-home"
no_credentials=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY
	-u AWS_SESSION_TOKEN -u AWS_PROFILE -u AWS_SHARED_CREDENTIALS_FILE
	-u AWS_CONFIG_FILE -u AWS_WEB_IDENTITY_TOKEN_FILE
	-u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
	-u AWS_CONTAINER_CREDENTIALS_FULL_URI
	AWS_EC2_METADATA_DISABLED=true HOME="$WORK/empty-home")
expect_failure "missing credentials" AWS_ACCESS_KEY_ID .aws/credentials -- \
	"${no_credentials[@]}" "$NEARFS_BIN" -f -o "$s3_opts" s3://data "$MNT"

if [ "$S3_KIND" = moto ]; then
	# moto checks no signatures; the proxy rejects bad ones as S3 does.
	proxy_port=$(free_port)
	python3 "$NEARFS_ROOT/tests/tools/sigv4_proxy.py" --port "$proxy_port" \
		--upstream "${NEARFS_TEST_ENDPOINT#http://}" --reject \
		--access-key "$AWS_ACCESS_KEY_ID" \
		--secret-key "$AWS_SECRET_ACCESS_KEY" \
		--stats "$WORK/proxy-stats.json" >"$WORK/proxy.log" 2>&1 &
	CLEANUP_PIDS+=($!)
	for _ in $(seq 50); do
		http_answers "http://127.0.0.1:$proxy_port/" && break
		sleep 0.1
	done
	expect_failure "wrong secret key" "access denied" bucket \
		SignatureDoesNotMatch -- \
		env AWS_SECRET_ACCESS_KEY=wrong-secret "$NEARFS_BIN" -f -o \
		"cache_dir=$WORK/cache,endpoint=http://127.0.0.1:$proxy_port" \
		s3://data "$MNT"
	if grep -q wrong-secret "$WORK/out"; then
		fail "the error message shows the secret key"
	fi
	expect_failure "anonymous access to a private bucket" \
		"without credentials" "drop -o anonymous" -- \
		"$NEARFS_BIN" -f -o \
		"cache_dir=$WORK/cache,endpoint=http://127.0.0.1:$proxy_port,anonymous" \
		s3://data "$MNT"
fi

if [ "$S3_KIND" = s3rver ]; then
	# s3rver 3.7.1 rejects an unknown access key id, unlike moto (but
	# accepts a wrong secret key).
	expect_failure "unknown access key id" credentials -- \
		env AWS_ACCESS_KEY_ID=AKIDUNKNOWN "$NEARFS_BIN" -f \
		-o "$s3_opts" s3://data "$MNT"
fi

check "anonymous needs no credentials"
# moto rejects unsigned requests to a bucket without a public policy;
# s3rver accepts them and has no bucket policies.
if [ "$S3_KIND" = moto ]; then
	s3 public data
fi
NEARFS_ENV=("${no_credentials[@]:1}")
mount_nearfs s3://data "$MNT" "anonymous,cache_dir=$WORK/cache-anon"
NEARFS_ENV=()
assert_eq hello "$(cat "$MNT/hello.txt")" "hello.txt read anonymously"
unmount_nearfs "$MNT"

check "ro rejects writes"
mount_nearfs s3://data "$MNT" "ro,cache_dir=$WORK/cache-ro"
assert_eq hello "$(cat "$MNT/hello.txt")" "hello.txt on a ro mount"
if echo new 2>"$WORK/ro.err" >"$MNT/new.txt"; then
	fail "writing new.txt on a ro mount succeeded"
fi
assert_contains "$(cat "$WORK/ro.err")" "Read-only file system" \
	"error of a write on a ro mount"
if rm "$MNT/hello.txt" 2>"$WORK/ro.err"; then
	fail "rm of hello.txt on a ro mount succeeded"
fi
assert_contains "$(cat "$WORK/ro.err")" "Read-only file system" \
	"error of rm on a ro mount"
assert_eq hello "$(s3 get data hello.txt)" "object hello.txt after the ro mount"
unmount_nearfs "$MNT"

check "origin gone while mounted: reads fail with EIO, not a hang"
mount_nearfs s3://data "$MNT" \
	"cache_dir=$WORK/cache-gone,timeout=3s,attr_ttl=1h"
stat "$MNT/hello.txt" >/dev/null
stop_s3
status=0
timeout 60 cat "$MNT/hello.txt" >/dev/null 2>"$WORK/gone.err" || status=$?
assert_num "$status" -ne 124 "cat of an uncached file returned within 60 s"
assert_num "$status" -ne 0 "exit status of cat with the origin gone"
assert_contains "$(cat "$WORK/gone.err")" "Input/output error" \
	"error of cat with the origin gone"
unmount_nearfs "$MNT"
