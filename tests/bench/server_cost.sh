#!/usr/bin/env bash
# server_cost.sh - measure the CPU time that s3rver spends to serve one
# object to different clients: one GET, one GET read slowly, ranged GETs
# one after another on one connection, and a cold read through nearfs.
#
# The server runs on CPU 0 and every client on CPU 1.  So the server's own
# CPU time (utime + stime of its process, in jiffies of 10 ms) is what a
# fetch costs it, whatever the client does with its CPU.  The first round
# warms the server up and is not counted; the script prints the median
# MB/s and server CPU of the other rounds.  Needs root (drop_caches), two
# CPUs, and a built nearfs.
#
# Environment:
#   COST_RUNS=5      counted rounds
#   COST_MIB=512     size of the object
#   COST_WORK=DIR    work folder (default /tmp/nearfs-cost.XXXXXX, removed)
#   COST_NEARFS_OPTS extra nearfs mount options, e.g. ",readahead=256M"
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/net.sh"
NEARFS=$ROOT/build/nearfs
S3RVER=$ROOT/tests/.s3rver/node_modules/.bin/s3rver
RUNS=${COST_RUNS:-5}
MIB=${COST_MIB:-512}
BUCKET=costbucket
WORK=${COST_WORK:-$(mktemp -d /tmp/nearfs-cost.XXXXXX)}
MNT=$WORK/mnt
SERVER_PID=

die() {
	echo "server_cost.sh: $*" >&2
	exit 1
}

cleanup() {
	mountpoint -q "$MNT" 2>/dev/null && fusermount3 -u "$MNT"
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
	[ -z "${COST_WORK:-}" ] && rm -rf "$WORK"
	return 0
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || die "run as root: each round drops the page cache"
[ "$(nproc)" -ge 2 ] || die "found $(nproc) CPU: two are needed, CPU 0 for the server and CPU 1 for the clients"
[ -x "$NEARFS" ] || die "$NEARFS is missing: run make first"
[ -x "$S3RVER" ] || NEARFS_S3_SERVER=s3rver "$ROOT/tools/install-deps.sh" ||
	die "installing s3rver failed"

mkdir -p "$WORK/data" "$MNT"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT/$BUCKET/big
NODE_OPTIONS=--openssl-legacy-provider taskset -c 0 "$S3RVER" \
	--address 127.0.0.1 --port "$PORT" --directory "$WORK/data" \
	--silent >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
	http_answers "http://127.0.0.1:$PORT/" && break
	sleep 0.1
done
use_test_credentials S3RVER S3RVER
S3CURL=(curl -sSf --aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER
	-H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
"${S3CURL[@]}" -X PUT "http://127.0.0.1:$PORT/$BUCKET" >/dev/null
head -c "$((MIB << 20))" /dev/urandom >"$WORK/big"
"${S3CURL[@]}" -T "$WORK/big" "$URL" >/dev/null
rm "$WORK/big"
OBJECT=$(find "$WORK/data" -name 'big._S3rver_object')

server_jiffies() {
	awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"
}

# Empty the page cache, then read the server's copy of the object back
# into it, so that each round measures the fetch and not the server's disk.
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	cat "$OBJECT" >/dev/null
}

# ranged_args N: curl arguments for N ranged GETs that cover the object
# in order, all on one connection.
ranged_args() {
	local n=$1 size i
	size=$(((MIB << 20) / n))
	ARGS=()
	for i in $(seq 0 $((n - 1))); do
		[ "$i" -gt 0 ] && ARGS+=(--next "${S3CURL[@]:1}")
		ARGS+=(-r "$((i * size))-$(((i + 1) * size - 1))" -o /dev/null
			"$URL")
	done
}

mount_nearfs() {
	rm -rf "$WORK/cache"
	mkdir -p "$WORK/cache"
	taskset -c 1 "$NEARFS" -f -o "endpoint=http://127.0.0.1:$PORT" \
		-o "path_style,cache_dir=$WORK/cache${COST_NEARFS_OPTS:-}" \
		"s3://$BUCKET" "$MNT" >"$WORK/nearfs.log" 2>&1 &
	for _ in $(seq 100); do
		mountpoint -q "$MNT" && break
		sleep 0.1
	done
	mountpoint -q "$MNT" || die "nearfs did not mount: $(cat "$WORK/nearfs.log")"
	stat "$MNT/big" >/dev/null
}

# fetch PATTERN: one fetch of the whole object, the client on CPU 1.
fetch() {
	case $1 in
	get) taskset -c 1 "${S3CURL[@]}" -o /dev/null "$URL" ;;
	get-300M) taskset -c 1 "${S3CURL[@]}" --limit-rate 300M -o /dev/null \
		"$URL" ;;
	ranged-*)
		ranged_args "${1#ranged-}"
		taskset -c 1 "${S3CURL[@]}" "${ARGS[@]}"
		;;
	nearfs) taskset -c 1 dd if="$MNT/big" of=/dev/null bs=1M status=none ;;
	esac
}

PATTERNS="get get-300M ranged-8 ranged-32 ranged-128 nearfs"
echo "pattern,round,mbps,server_jiffies" >"$WORK/cost.csv"
for round in $(seq 0 "$RUNS"); do
	for p in $PATTERNS; do
		[ "$p" = nearfs ] && mount_nearfs
		drop_caches
		j0=$(server_jiffies)
		t0=$(date +%s.%N)
		fetch "$p"
		t1=$(date +%s.%N)
		j1=$(server_jiffies)
		[ "$p" = nearfs ] && fusermount3 -u "$MNT"
		[ "$round" -gt 0 ] && echo "$p,$round,$(echo "$MIB / ($t1 - $t0)" |
			bc -l),$((j1 - j0))" >>"$WORK/cost.csv"
	done
done

python3 - "$WORK/cost.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("%-12s %10s %22s" % ("pattern", "MB/s", "server CPU (jiffies)"))
for p in dict.fromkeys(r["pattern"] for r in rows):
    mine = [r for r in rows if r["pattern"] == p]
    print("%-12s %10.0f %22.1f" % (
        p, statistics.median(float(r["mbps"]) for r in mine),
        statistics.median(int(r["server_jiffies"]) for r in mine)))
PY
