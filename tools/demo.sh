#!/usr/bin/env bash
# demo.sh - show nearfs at work on a local S3 server: start moto on
# 127.0.0.1, fill a bucket with sample data, mount it, read files cold and
# warm, print the counters, then unmount and stop the server.
#
# Run through `make demo`, which installs the dependencies and builds
# first.  Everything lives in a temporary folder that is removed at the
# end (kept when NEARFS_DEMO_KEEP=1).  Exits non-zero on any failure.
set -eEuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NEARFS=$ROOT/build/nearfs
NEARFS_CTL=$ROOT/build/nearfs-ctl
S3CLI=$ROOT/tests/tools/s3cli.py
. "$ROOT/tests/net.sh"
DEMO=$(mktemp -d "${TMPDIR:-/tmp}/nearfs-demo.XXXXXX")
MNT=$DEMO/mnt
SAMPLE=$DEMO/sample
SERVER_PID=
NEARFS_PID=
TIMEFORMAT='    %3R s'
step_number=0

step() {
	step_number=$((step_number + 1))
	printf '\n==== %d. %s\n' "$step_number" "$*"
}

# Show a command, then run it.
run() {
	printf '$ %s\n' "$*"
	"$@"
}

cleanup() {
	local status=$?
	set +e
	# Output may go to a closed pipe by now; keep cleaning up regardless.
	trap '' PIPE
	if awk -v path="$MNT" '$5 == path { found = 1 }
		END { exit !found }' /proc/self/mountinfo; then
		fusermount3 -u "$MNT" || fusermount3 -u -z "$MNT"
	fi
	for pid in $NEARFS_PID $SERVER_PID; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	if [ "$status" -ne 0 ]; then
		echo "demo failed (exit status $status)" >&2
		[ -f "$DEMO/nearfs.log" ] && tail -n 30 "$DEMO/nearfs.log" >&2
	fi
	if [ "${NEARFS_DEMO_KEEP:-0}" = 1 ]; then
		echo "demo folder kept: $DEMO"
	else
		rm -rf --one-file-system "$DEMO"
	fi
	exit "$status"
}
trap cleanup EXIT
# Turn signals into an exit, so that cleanup also runs then (for example
# when the output goes to `head`, which closes the pipe).
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM
trap 'echo "failed: $BASH_COMMAND" >&2' ERR

start_server() {
	local port i
	port=$(free_port)
	command -v moto_server >/dev/null ||
		{ echo "moto_server not found: run tools/install-deps.sh" >&2
		  return 1; }
	moto_server -H 127.0.0.1 -p "$port" >"$DEMO/moto.log" 2>&1 &
	SERVER_PID=$!
	export NEARFS_TEST_ENDPOINT=http://127.0.0.1:$port
	use_test_credentials demo demo
	for i in $(seq 100); do
		if http_answers "$NEARFS_TEST_ENDPOINT/"; then
			echo "moto_server (pid $SERVER_PID) at $NEARFS_TEST_ENDPOINT"
			return 0
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.2
	done
	echo "moto_server did not start:" >&2
	cat "$DEMO/moto.log" >&2
	return 1
}

make_sample_data() {
	mkdir -p "$SAMPLE/docs" "$SAMPLE/data" "$SAMPLE/photos/2024/summer"
	cat >"$SAMPLE/README.txt" <<'TEXT'
This bucket is served by nearfs. Files are read from S3 in chunks the
first time and from the local cache afterwards.
TEXT
	seq -f 'line %g of a log file' 1 5000 >"$SAMPLE/docs/app.log"
	printf 'name,size\nalpha,1\nbeta,2\n' >"$SAMPLE/docs/table.csv"
	echo "notes for the summer" >"$SAMPLE/photos/2024/summer/notes.txt"
	head -c 300000 /dev/urandom >"$SAMPLE/photos/2024/summer/img1.raw"
	head -c 64M /dev/urandom >"$SAMPLE/data/random.bin"
	s3 mb demo
	(cd "$SAMPLE" && find . -type f | sed 's|^\./||' | sort) |
		while read -r key; do
			s3 put demo "$key" "$SAMPLE/$key"
			echo "  s3://demo/$key"
		done
}

mount_demo() {
	local i
	mkdir -p "$MNT"
	printf '$ nearfs -f -o endpoint=%s,cache_dir=%s s3://demo %s &\n' \
		"$NEARFS_TEST_ENDPOINT" "$DEMO/cache" "$MNT"
	"$NEARFS" -f -o "endpoint=$NEARFS_TEST_ENDPOINT,cache_dir=$DEMO/cache" \
		s3://demo "$MNT" >>"$DEMO/nearfs.log" 2>&1 &
	NEARFS_PID=$!
	for i in $(seq 200); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$NEARFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "nearfs did not mount $MNT:" >&2
	cat "$DEMO/nearfs.log" >&2
	return 1
}

unmount_demo() {
	run fusermount3 -u "$MNT"
	wait "$NEARFS_PID"
	NEARFS_PID=
}

timed_read() {
	printf '$ time cat %s > /dev/null   # %s\n' "$1" "$2"
	time cat "$1" >/dev/null
}

compare_sha256() {
	local expected actual
	expected=$(sha256sum <"$1" | cut -d' ' -f1)
	actual=$(sha256sum <"$2" | cut -d' ' -f1)
	echo "  $(basename "$1")"
	echo "    source: $expected"
	echo "    mount:  $actual"
	[ "$expected" = "$actual" ] ||
		{ echo "sha256 differs for $2" >&2; return 1; }
}

for binary in "$NEARFS" "$NEARFS_CTL"; do
	[ -x "$binary" ] || { echo "$binary is missing: run make" >&2; exit 1; }
done

step "Start a local S3 server (moto) on 127.0.0.1"
start_server

step "Create bucket s3://demo with sample data"
make_sample_data

step "Mount s3://demo"
mount_demo
run ls -l "$MNT"
run ls -lR "$MNT/photos"
run cat "$MNT/README.txt"

step "Read the 64 MiB file cold (from S3), then warm (from the cache)"
timed_read "$MNT/data/random.bin" "cold: chunks come from S3"
drop_page_cache "$MNT/data/random.bin"
timed_read "$MNT/data/random.bin" "warm: chunks come from the cache"
timed_read "$MNT/docs/app.log" "cold, small file"
drop_page_cache "$MNT/docs/app.log"
timed_read "$MNT/docs/app.log" "warm, small file"

step "Compare sha256 with the source"
compare_sha256 "$SAMPLE/data/random.bin" "$MNT/data/random.bin"
compare_sha256 "$SAMPLE/docs/app.log" "$MNT/docs/app.log"

step "Cache counters"
run "$NEARFS_CTL" stats "$MNT"

step "Remount with the same cache and read again: no GET reaches S3"
unmount_demo
mount_demo
timed_read "$MNT/data/random.bin" "after remount: from the cache"
run "$NEARFS_CTL" stats "$MNT"

step "Unmount and stop the server"
unmount_demo
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
echo "done"
