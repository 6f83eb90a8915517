#!/usr/bin/env bash
# test_writeback_failure.sh - the S3 server becomes unreachable during and
# before uploads.  A TCP gate (tests/tools/tcp_gate.py) between nearfs and
# the server cuts it off.  Back mode keeps the data readable, counts the
# failures and uploads everything once the gate opens.  Write-through
# returns the error from close and fsync, and keeps serving the version
# the bucket still holds.
. "$(dirname "$0")/../lib.sh"

GATE=$NEARFS_ROOT/tests/tools/tcp_gate.py
REF=$WORK/ref
MNT=$WORK/mnt
MNT_WT=$WORK/mnt-through
CONTROL=$WORK/gate.control
GATE_STATS=$WORK/gate.json
mkdir -p "$REF"

start_s3
s3 mb data

# Upstream bytes limited to 4 MiB/s, so that a 12 MiB upload is in flight
# for about 3 s and the gate can close in the middle of it.
GATE_PORT=$(free_port)
echo open >"$CONTROL"
python3 "$GATE" --port "$GATE_PORT" \
	--upstream "${NEARFS_TEST_ENDPOINT#http://}" --control "$CONTROL" \
	--stats "$GATE_STATS" --rate $((4 * 1024 * 1024)) \
	>"$WORK/gate.log" 2>&1 &
GATE_PID=$!
CLEANUP_PIDS+=("$GATE_PID")
wait_until [ -s "$GATE_STATS" ] ||
	fail "tcp_gate.py did not start: $(cat "$WORK/gate.log")"
GATE_URL=http://127.0.0.1:$GATE_PORT

gate() {
	echo "$1" >"$CONTROL"
	sleep 0.2
	log "gate $1"
}

gate_field() {
	python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$GATE_STATS" "$1"
}

# failures MNT: failed files plus retries so far.
failures() {
	echo $(($(stat_field "$1" uploads_failed) + \
		$(stat_field "$1" upload_retries)))
}

# wait_failures MNT: wait up to 30 s for a failed upload to be counted.
wait_failures() {
	local i
	for i in $(seq 150); do
		[ "$(failures "$1")" -gt 0 ] && return 0
		sleep 0.2
	done
	return 1
}

mount_nearfs s3://data "$MNT" \
	"endpoint=$GATE_URL,chunk_size=1M,timeout=5s,write_mode=back,writeback_delay=1s"

check "back mode: baseline upload with the gate open"
random_file "$REF/base.bin" 200000
cp "$REF/base.bin" "$MNT/base.bin"
"$NEARFS_CTL" flush "$MNT" || fail "nearfs-ctl flush with the gate open"
assert_eq "$(sha256 "$REF/base.bin")" "$(object_sha data base.bin)" \
	"sha256 of object base.bin"

check "back mode: the gate closes during an upload"
# With a fresh listing of the root, lookups of new names need no request
# while the gate is closed.  Without it, creating a file needs a HEAD,
# which fails with EIO.
ls "$MNT" >/dev/null
random_file "$REF/inflight.bin" $(mib 12)
cp "$REF/inflight.bin" "$MNT/inflight.bin"
up_before=$(gate_field bytes_up)
for i in $(seq 100); do
	[ "$(gate_field bytes_up)" -gt $((up_before + $(mib 2))) ] && break
	sleep 0.1
done
assert_num "$(gate_field bytes_up)" -gt $((up_before + $(mib 2))) \
	"bytes sent upstream before the gate closes (upload in flight)"
gate closed
wait_failures "$MNT" || fail "no failed upload counted 30 s after the" \
	"gate closed: $("$NEARFS_CTL" stats "$MNT")"
assert_num "$(failures "$MNT")" -gt 0 "uploads_failed + upload_retries"
assert_eq missing "$(object_sha data inflight.bin)" \
	"object inflight.bin after the cut upload"

check "back mode: writes while the gate is closed"
random_file "$REF/closed.bin" 300000
cp "$REF/closed.bin" "$MNT/closed.bin"
random_file "$REF/base.bin" 250000
cp "$REF/base.bin" "$MNT/base.bin"
sleep 2
assert_num "$(stat_field "$MNT" uploads_pending)" -ge 3 "uploads_pending"
assert_num "$(stat_field "$MNT" dirty_bytes)" -gt 0 "dirty_bytes"
for name in inflight.bin closed.bin base.bin; do
	drop_page_cache "$MNT/$name"
	assert_eq "$(sha256 "$REF/$name")" "$(sha256 "$MNT/$name")" \
		"sha256 of $name through the mount while the gate is closed"
done
assert_eq missing "$(object_sha data closed.bin)" "object closed.bin"
assert_ne "$(sha256 "$REF/base.bin")" "$(object_sha data base.bin)" \
	"object base.bin (still the first version)"
status=0
timeout 60 "$NEARFS_CTL" flush "$MNT" >"$WORK/flush.out" 2>&1 || status=$?
assert_eq 3 "$status" "exit status of nearfs-ctl flush with the gate closed"
assert_num "$(stat_field "$MNT" uploads_failed)" -gt 0 \
	"uploads_failed after the failed flush"

check "back mode: the gate opens, a flush uploads everything"
gate open
done_before=$(stat_field "$MNT" uploads_done)
"$NEARFS_CTL" flush "$MNT" >"$WORK/flush.out" 2>&1 ||
	fail "nearfs-ctl flush after the gate opened: $(cat "$WORK/flush.out")"
for name in inflight.bin closed.bin base.bin; do
	assert_eq "$(sha256 "$REF/$name")" "$(object_sha data "$name")" \
		"sha256 of object $name"
done
assert_eq 0 "$(stat_field "$MNT" uploads_pending)" "uploads_pending"
assert_eq 0 "$(stat_field "$MNT" dirty_bytes)" "dirty_bytes"
assert_eq 0 "$(stat_field "$MNT" uploads_failed)" "uploads_failed"
assert_num "$(stat_field "$MNT" uploads_done)" -ge $((done_before + 3)) \
	"uploads_done"
unmount_nearfs "$MNT"

mount_nearfs s3://data "$MNT_WT" \
	"endpoint=$GATE_URL,cache_dir=$WORK/cache-through,chunk_size=1M,timeout=5s,write_mode=through"

check "write-through: close fails while the gate is closed"
random_file "$REF/wt.v1" 150000
random_file "$REF/wt.v2" 160000
cp "$REF/wt.v1" "$MNT_WT/wt.bin"
assert_eq "$(sha256 "$REF/wt.v1")" "$(sha256 "$MNT_WT/wt.bin")" \
	"sha256 of wt.bin (first version) through the mount"
gate closed
status=0
write_file "$REF/wt.v2" "$MNT_WT/wt.bin" || status=$?
assert_eq 1 "$status" "close of the rewritten wt.bin fails (1 = OSError)"

check "write-through: fsync fails while the gate is closed"
status=0
python3 - "$REF/wt.v2" "$MNT_WT/wt.bin" <<'PY' || status=$?
import os, sys
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_TRUNC)
os.write(fd, data)
try:
    os.fsync(fd)
except OSError as exc:
    print("fsync failed:", exc)
    sys.exit(1)
finally:
    try:
        os.close(fd)
    except OSError:
        pass
sys.exit(0)
PY
assert_eq 1 "$status" "fsync of the rewritten wt.bin fails (1 = OSError)"

check "write-through: after the gate opens, the old version everywhere"
gate open
# Both values first, so that a failure shows where each version went.
sleep 1
bucket_sum=$(object_sha data wt.bin)
drop_page_cache "$MNT_WT/wt.bin"
mount_sum=$(sha256 "$MNT_WT/wt.bin")
log "first version $(sha256 "$REF/wt.v1"), rejected $(sha256 "$REF/wt.v2"):" \
	"the bucket has $bucket_sum, the mount shows $mount_sum"
assert_eq "$(sha256 "$REF/wt.v1")" "$bucket_sum" \
	"sha256 of object wt.bin (the first version)"
assert_eq "$(sha256 "$REF/wt.v1")" "$mount_sum" \
	"sha256 of wt.bin through the mount (no version the bucket lacks)"
assert_eq "$(stat -c %s "$REF/wt.v1")" "$(stat -c %s "$MNT_WT/wt.bin")" \
	"size of wt.bin through the mount"
unmount_nearfs "$MNT_WT"
