#!/usr/bin/env bash
# test_faults.sh - nearfs over tests/tools/fault_proxy.py, a proxy between
# nearfs and the S3 server that injects faults.  Errors and broken
# transfers are retried and never cached.  An unreachable server leaves
# the cached data readable.  An object that changes during a read never
# gives the reader bytes of two versions.
#
# NEARFS_FAULT_SEED sets the seed of the proxy's fault draws (default 1);
# the proxy log in the failure output names it.
. "$(dirname "$0")/../lib.sh"

SEED=${NEARFS_FAULT_SEED:-1}
REF=$WORK/ref
mkdir -p "$REF"

start_s3
s3 mb data
start_fault_proxy --seed "$SEED"
log "fault proxy at $PROXY_URL, seed $SEED"

# expect_eio WHAT COMMAND...: COMMAND fails with "Input/output error"
# within 60 s.
expect_eio() {
	local what=$1 status=0
	shift
	timeout 60 "$@" >/dev/null 2>"$WORK/eio.err" || status=$?
	assert_num "$status" -ne 124 "$what returned within 60 s"
	assert_num "$status" -ne 0 "exit status of $what"
	assert_contains "$(cat "$WORK/eio.err")" "Input/output error" \
		"error of $what"
}

# sha256_within_60s FILE: the sha256 of FILE, read under `timeout 60`.
sha256_within_60s() {
	timeout 60 sha256sum "$1" | cut -d' ' -f1
}

# assert_mount_answers NAME: a stat of NAME and an ls of MNT2 return
# within 60 s, and ls lists what it listed before the origin went away.
assert_mount_answers() {
	timeout 60 stat "$MNT2/$1" >/dev/null ||
		fail "stat of cached $1 failed or hung"
	timeout 60 ls "$MNT2" >"$WORK/ls.after" ||
		fail "ls of the mount failed or hung"
	assert_same_file "$WORK/ls.before" "$WORK/ls.after" "ls of the mount"
}

# Files of 1 to 3 MiB, with sizes that are no multiple of the chunk, and
# one of 16 MiB read sequentially, so that readahead runs get cut too.
for i in $(seq -w 1 20); do
	random_file "$REF/f$i.bin" $((1048576 + 10#$i * 104729))
	s3 put data "f$i.bin" "$REF/f$i.bin"
done
random_file "$REF/big.bin" $(mib 16)
s3 put data big.bin "$REF/big.bin"

MNT=$WORK/mnt
# Above 16 MiB, the part size, a write is a multipart upload.
random_file "$REF/w-large.bin" $(mib 20)
for i in 1 2 3 4 5; do
	random_file "$REF/w-small$i.bin" $((i * 150001))
done
WRITTEN="w-small1.bin w-small2.bin w-small3.bin w-small4.bin w-small5.bin
w-large.bin"

check "10% faults: every read succeeds, bytes equal"
proxy_set '{"rates": {"error500": 0.025, "error503": 0.025,
	"reset": 0.025, "truncate": 0.025}}'
mount_nearfs s3://data "$MNT" \
	"endpoint=$PROXY_URL,chunk_size=1M,timeout=10s"
for i in $(seq -w 1 20); do
	assert_eq "$(sha256 "$REF/f$i.bin")" "$(sha256 "$MNT/f$i.bin")" \
		"sha256 of f$i.bin"
done
dd if="$MNT/big.bin" of="$WORK/big.out" bs=1M status=none
assert_same_file "$REF/big.bin" "$WORK/big.out" "big.bin read sequentially"
assert_num "$(stat_field "$MNT" readaheads)" -gt 0 "readaheads"

check "10% faults: every write-through succeeds, objects equal"
for name in $WRITTEN; do
	cp "$REF/$name" "$MNT/$name" || fail "cp of $name failed"
done
for name in $WRITTEN; do
	assert_eq "$(sha256 "$REF/$name")" "$(object_sha data "$name")" \
		"sha256 of object $name"
done
assert_num "$(stat_field "$MNT" requests.MULTIPART)" -ge 4 \
	"requests.MULTIPART (initiate, 2 parts, complete)"

check "10% faults: faults injected, retried, none left"
log "proxy: $(proxy_field requests) requests, faults" \
	"$(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["faults"])' "$PROXY_STATS")"
for fault in error500 error503 reset truncate; do
	assert_num "$(proxy_field "faults.$fault")" -gt 0 "faults.$fault"
done
# An error response always costs nearfs an attempt.  A broken connection
# may cost none, when libcurl sends the request again by itself.
answered=$(($(proxy_field faults.error500) + $(proxy_field faults.error503)))
assert_num "$(stat_field "$MNT" origin_retries)" -ge "$answered" \
	"origin_retries (one per error response at least)"
assert_eq 0 "$(stat_field "$MNT" origin_errors)" "origin_errors"
assert_eq 0 "$(stat_field "$MNT" checksum_failures)" "checksum_failures"

check "origin refused: the cache serves only whole, correct copies"
proxy_set '{"mode": "refuse"}'
refused_before=$(proxy_field refused)
if [ -w /proc/sys/vm/drop_caches ]; then
	echo 3 >/proc/sys/vm/drop_caches
else
	drop_page_cache "$MNT"/*.bin
fi
for i in $(seq -w 1 20); do
	assert_eq "$(sha256 "$REF/f$i.bin")" "$(sha256 "$MNT/f$i.bin")" \
		"sha256 of f$i.bin from the cache"
done
for name in big.bin $WRITTEN; do
	assert_eq "$(sha256 "$REF/$name")" "$(sha256 "$MNT/$name")" \
		"sha256 of $name from the cache"
done
assert_eq "$refused_before" "$(proxy_field refused)" \
	"connections refused while reading cached files (none attempted)"
assert_eq 0 "$(stat_field "$MNT" checksum_failures)" "checksum_failures"
unmount_nearfs "$MNT"

MNT5=$WORK/mnt5
CUT_FILES="f01.bin f02.bin f03.bin f04.bin f05.bin f06.bin f07.bin f08.bin"
random_file "$REF/w-cut.bin" 700000

check "responses cut within their headers: retried, never taken"
# A cut after 100 bytes falls within the headers, after the status line,
# where libcurl takes the response for complete, without a body and an
# ETag.  With ttl=0 every open checks the version with a HEAD.
proxy_set '{"rates": {"cut": 0.2}, "cut_bytes": 100}'
mount_nearfs s3://data "$MNT5" \
	"endpoint=$PROXY_URL,cache_dir=$WORK/cache5,chunk_size=1M,timeout=5s,ttl=0"
for pass in 1 2 3; do
	for name in $CUT_FILES; do
		assert_eq "$(sha256 "$REF/$name")" "$(sha256 "$MNT5/$name")" \
			"sha256 of $name, pass $pass"
		assert_eq "$(stat -c %s "$REF/$name")" \
			"$(stat -c %s "$MNT5/$name")" \
			"size of $name, pass $pass"
	done
done
cp "$REF/w-cut.bin" "$MNT5/w-cut.bin" || fail "cp of w-cut.bin failed"
assert_eq "$(sha256 "$REF/w-cut.bin")" "$(object_sha data w-cut.bin)" \
	"sha256 of object w-cut.bin"
assert_num "$(proxy_field faults.cut)" -gt 0 "faults.cut"
assert_num "$(stat_field "$MNT5" origin_retries)" -gt 0 "origin_retries"
assert_eq 0 "$(stat_field "$MNT5" invalidations)" "invalidations"
assert_eq 0 "$(stat_field "$MNT5" origin_errors)" "origin_errors"
unmount_nearfs "$MNT5"

MNT2=$WORK/mnt2
proxy_set '{}'
mount_nearfs s3://data "$MNT2" \
	"endpoint=$PROXY_URL,cache_dir=$WORK/cache2,chunk_size=1M,timeout=2s,ttl=1s,attr_ttl=1s,dir_ttl=1h"
CACHED="f01.bin f02.bin f03.bin"
for name in $CACHED; do
	cat "$MNT2/$name" >/dev/null
done
random_file "$REF/wt.v1" 150000
random_file "$REF/wt.v2" 160000
cp "$REF/wt.v1" "$MNT2/wt.bin"
# The first chunk of big.bin, and the next ones that readahead fetches.
dd if="$MNT2/big.bin" of=/dev/null iflag=direct bs=1M count=1 status=none
ls "$MNT2" >"$WORK/ls.before"

check "origin refused after ttl: cached files still served"
proxy_set '{"mode": "refuse"}'
errors_before=$(stat_field "$MNT2" origin_errors)
sleep 1.5	# ttl and attr_ttl pass
for name in $CACHED; do
	assert_eq "$(sha256 "$REF/$name")" \
		"$(sha256_within_60s "$MNT2/$name")" \
		"sha256 of $name after ttl, origin refused"
done
assert_num "$(stat_field "$MNT2" origin_errors)" -gt "$errors_before" \
	"origin_errors (the version checks failed)"
assert_eq 0 "$(stat_field "$MNT2" invalidations)" "invalidations"
grep -q "using the cached version" "${NEARFS_LOG[$MNT2]}" ||
	fail "the log does not say that the cached version is used"
log "ok: the log says that the cached version is used"

check "origin refused: uncached reads fail with EIO, the mount answers"
expect_eio "cat of uncached f10.bin" cat "$MNT2/f10.bin"
status=0
timeout 60 cat "$MNT2/big.bin" >"$WORK/part.out" 2>"$WORK/part.err" ||
	status=$?
assert_num "$status" -ne 124 "cat of partly cached big.bin returned"
assert_num "$status" -ne 0 "exit status of cat of partly cached big.bin"
assert_contains "$(cat "$WORK/part.err")" "Input/output error" \
	"error of cat of partly cached big.bin"
part_size=$(stat -c %s "$WORK/part.out")
assert_num "$part_size" -ge "$(mib 1)" \
	"bytes of big.bin read before the error (its cached chunks)"
cmp -s -n "$part_size" "$WORK/part.out" "$REF/big.bin" ||
	fail "the bytes of big.bin read before the error are not its start"
log "ok: the bytes of big.bin read before the error are its start"
assert_mount_answers f01.bin

check "origin stalled: uncached reads fail with EIO, the mount answers"
proxy_set '{"rates": {"delay": 1.0}, "delay_ms": 20000}'
expect_eio "cat of uncached f11.bin" cat "$MNT2/f11.bin"
assert_mount_answers f02.bin
assert_eq "$(sha256 "$REF/f02.bin")" "$(sha256_within_60s "$MNT2/f02.bin")" \
	"sha256 of f02.bin, origin stalled"

check "write-through, origin refused: close fails, no version kept"
proxy_set '{"mode": "refuse"}'
status=0
write_file "$REF/wt.v2" "$MNT2/wt.bin" || status=$?
assert_eq 1 "$status" "close of the rewritten wt.bin fails (1 = OSError)"
assert_eq "$(sha256 "$REF/wt.v1")" "$(sha256 "$MNT2/wt.bin")" \
	"sha256 of wt.bin after the failed close (the first version)"
assert_eq "$(stat -c %s "$REF/wt.v1")" "$(stat -c %s "$MNT2/wt.bin")" \
	"size of wt.bin after the failed close"
status=0
write_file "$REF/wt.v2" "$MNT2/wt-new.bin" || status=$?
assert_eq 1 "$status" "close of the new wt-new.bin fails (1 = OSError)"
if stat "$MNT2/wt-new.bin" >/dev/null 2>&1; then
	fail "wt-new.bin exists on the mount although the origin lacks it"
fi
log "ok: wt-new.bin does not exist on the mount"
proxy_set '{}'
assert_eq "$(sha256 "$REF/wt.v1")" "$(object_sha data wt.bin)" \
	"sha256 of object wt.bin (the first version)"
assert_eq missing "$(object_sha data wt-new.bin)" "object wt-new.bin"
unmount_nearfs "$MNT2"

MNT3=$WORK/mnt3
mount_nearfs s3://data "$MNT3" \
	"endpoint=$PROXY_URL,cache_dir=$WORK/cache3,chunk_size=1M,timeout=2s,write_mode=back,writeback_delay=0,max_dirty=4M"
# With a fresh listing of the root, creating a file needs no request.
ls "$MNT3" >/dev/null
WB_FILES="wb1.bin wb2.bin wb3.bin"
for name in $WB_FILES wb4.bin; do
	random_file "$REF/$name" 1500000
done

check "write-back, origin refused: writes accepted up to max_dirty"
proxy_set '{"mode": "refuse"}'
for name in $WB_FILES; do
	cp "$REF/$name" "$MNT3/$name" || fail "cp of $name failed"
done
assert_eq 4500000 "$(stat_field "$MNT3" dirty_bytes)" "dirty_bytes"
assert_eq 3 "$(stat_field "$MNT3" uploads_pending)" "uploads_pending"
cp "$REF/wb4.bin" "$MNT3/wb4.bin" &
WRITER=$!
CLEANUP_PIDS+=("$WRITER")
for i in $(seq 150); do
	[ "$(stat_field "$MNT3" upload_retries)" -gt 0 ] && break
	sleep 0.2
done
assert_num "$(stat_field "$MNT3" upload_retries)" -gt 0 "upload_retries"
kill -0 "$WRITER" 2>/dev/null ||
	fail "the write of wb4.bin past max_dirty did not wait"
log "ok: the write of wb4.bin past max_dirty waits"
for name in $WB_FILES; do
	assert_eq "$(sha256 "$REF/$name")" "$(sha256 "$MNT3/$name")" \
		"sha256 of $name through the mount, not uploaded"
	assert_eq missing "$(object_sha data "$name")" "object $name"
done

check "write-back: nearfs-ctl uploads shows the origin's reason"
proxy_set '{"rates": {"error500": 1}, "kinds": ["PUT"]}'
timeout 120 "$NEARFS_CTL" flush "$MNT3" >"$WORK/flush500.out" 2>&1 &&
	fail "nearfs-ctl flush succeeded while every PUT failed"
"$NEARFS_CTL" uploads "$MNT3" >"$WORK/uploads500.txt"
assert_contains "$(grep ' wb1.bin ' "$WORK/uploads500.txt")" \
	"last error: Input/output error, HTTP 500 InternalError: We encountered an internal error. Please try again.;" \
	"nearfs-ctl uploads, line of wb1.bin"
"$NEARFS_CTL" uploads --json "$MNT3" >"$WORK/uploads500.json"
assert_eq "HTTP 500 InternalError: We encountered an internal error. Please try again." \
	"$(python3 -c 'import json, sys
u = json.load(open(sys.argv[1]))["uploads"]
print([x for x in u if x["path"] == "/wb1.bin"][0]["last_error_detail"])' \
	"$WORK/uploads500.json")" "last_error_detail of wb1.bin"

check "write-back: uploads once the origin answers again"
proxy_set '{}'
wait "$WRITER" || fail "cp of wb4.bin failed"
timeout 120 "$NEARFS_CTL" flush "$MNT3" >"$WORK/flush.out" 2>&1 ||
	fail "nearfs-ctl flush failed: $(cat "$WORK/flush.out")"
for name in $WB_FILES wb4.bin; do
	assert_eq "$(sha256 "$REF/$name")" "$(object_sha data "$name")" \
		"sha256 of object $name"
done
assert_eq 0 "$(stat_field "$MNT3" dirty_bytes)" "dirty_bytes"
assert_eq 0 "$(stat_field "$MNT3" uploads_pending)" "uploads_pending"
unmount_nearfs "$MNT3"

MNT4=$WORK/mnt4
mount_nearfs s3://data "$MNT4" \
	"endpoint=$PROXY_URL,cache_dir=$WORK/cache4,chunk_size=1M"
random_file "$REF/change.v1" $(mib 8)
random_file "$REF/change.v2" $(mib 8)
s3 put data change.bin "$REF/change.v1"
s3 put data fresh.bin "$REF/change.v1"

# read_during_change NAME HOLD_AFTER: read NAME through MNT4 with cat
# while the proxy holds every request after HOLD_AFTER GETs, replace the
# object with change.v2 meanwhile, and release.  Sets READ_STATUS and
# leaves the bytes read in $WORK/read.out, the errors in $WORK/read.err.
read_during_change() {
	local name=$1 after=$2 reader i
	stat "$MNT4/$name" >/dev/null
	proxy_set "{\"hold_after\": {\"kind\": \"GET\", \"count\": $after}}"
	cat "$MNT4/$name" >"$WORK/read.out" 2>"$WORK/read.err" &
	reader=$!
	wait_proxy_holding "after $after GETs of $name"
	s3 put data "$name" "$REF/change.v2"
	proxy_set '{}'
	READ_STATUS=0
	wait "$reader" || READ_STATUS=$?
	log "read of $name: status $READ_STATUS, $(stat -c %s \
		"$WORK/read.out") bytes, $(cat "$WORK/read.err")"
}

# assert_one_version WHAT: the read that left $READ_STATUS,
# $WORK/read.out and $WORK/read.err returned change.v1 or change.v2
# whole, or failed with EIO after bytes of one of them only.
assert_one_version() {
	local what=$1 got v
	got=$(sha256 "$WORK/read.out")
	if [ "$READ_STATUS" -eq 0 ]; then
		for v in 1 2; do
			if [ "$got" = "$(sha256 "$REF/change.v$v")" ]; then
				log "ok: $what returned version $v whole"
				return 0
			fi
		done
		fail "$what returned $(stat -c %s "$WORK/read.out") bytes" \
			"that are neither version whole (sha256 $got)"
	fi
	assert_contains "$(cat "$WORK/read.err")" "Input/output error" \
		"error of $what"
	for v in 1 2; do
		if cmp -s -n "$(stat -c %s "$WORK/read.out")" \
			"$WORK/read.out" "$REF/change.v$v"; then
			log "ok: $what returned the start of version $v" \
				"before the error"
			return 0
		fi
	done
	fail "$what returned bytes of both versions before the error"
}

check "object changes before the first byte: the new version whole"
read_during_change fresh.bin 0
assert_eq 0 "$READ_STATUS" "exit status of the read of fresh.bin"
assert_eq "$(sha256 "$REF/change.v2")" "$(sha256 "$WORK/read.out")" \
	"sha256 of fresh.bin read (the new version)"

check "object changes between chunks: no mix, no short file"
stale_before=$(proxy_field statuses.412)
read_during_change change.bin 1
assert_num "$(proxy_field statuses.412)" -gt "$stale_before" \
	"412 responses (a chunk fetch found the object changed)"
assert_one_version "the read of change.bin"

check "object changed: the next read has the new version"
assert_eq "$(sha256 "$REF/change.v2")" "$(sha256 "$MNT4/change.bin")" \
	"sha256 of change.bin read again"

check "partly cached object changed: no mix of two versions"
# One handle of race.bin, whose first chunks are cached from version 1,
# reads its chunk 4 first: the GET finds version 2.  dd returned bytes of
# version 1 before, which the page cache may still give to any handle,
# so the read fails at once and asks for no new version.  If it did ask,
# the proxy would hold back that HEAD.  Then a read of chunk 0 returns
# cached bytes of version 1, and chunk 4 must not come from version 2.
# O_DIRECT sends each read to nearfs as one request if it is no longer
# than the largest FUSE request (512 KiB by default), so each read takes
# half a chunk.
s3 put data race.bin "$REF/change.v1"
dd if="$MNT4/race.bin" of=/dev/null iflag=direct bs=1M count=1 status=none
s3 put data race.bin "$REF/change.v2"
proxy_set '{"hold_after": {"kind": "GET", "count": 1}}'
python3 - "$MNT4/race.bin" "$WORK" <<'PY' &
import mmap, os, sys, threading, time

path, work = sys.argv[1:3]
MIB = 1 << 20
fd = os.open(path, os.O_RDONLY | os.O_DIRECT)


def read_chunk(index):
    """Read the first half of chunk index into readN.out, or its error
    into readN.err."""
    buf = mmap.mmap(-1, MIB // 2)   # page-aligned, as O_DIRECT needs
    name = os.path.join(work, "read%d" % index)
    try:
        n = os.preadv(fd, [buf], index * MIB)
    except OSError as e:
        with open(name + ".err", "w") as f:
            f.write(os.strerror(e.errno))
        return
    with open(name + ".out", "wb") as f:
        f.write(buf[:n])


later = threading.Thread(target=read_chunk, args=(4,))
later.start()
while not os.path.exists(os.path.join(work, "go")):
    time.sleep(0.05)
read_chunk(0)
later.join()
PY
RACER=$!
CLEANUP_PIDS+=("$RACER")
for i in $(seq 150); do
	[ -e "$WORK/read4.out" ] || [ -e "$WORK/read4.err" ] && break
	[ "$(proxy_field holding)" -gt 0 ] && break
	sleep 0.2
done
assert_eq 0 "$(proxy_field holding)" \
	"requests held after the GET of chunk 4 of race.bin"
touch "$WORK/go"
for i in $(seq 150); do
	[ -e "$WORK/read0.out" ] || [ -e "$WORK/read0.err" ] && break
	sleep 0.2
done
proxy_set '{}'
wait "$RACER" || fail "the reads of race.bin did not finish"
[ -e "$WORK/read0.out" ] ||
	fail "the read of chunk 0 failed: $(cat "$WORK/read0.err")"
assert_eq "$(head -c $(($(mib 1) / 2)) "$REF/change.v1" |
	sha256sum | cut -d' ' -f1)" \
	"$(sha256 "$WORK/read0.out")" "sha256 of chunk 0 read (version 1)"
if [ -e "$WORK/read4.out" ]; then
	fail "the read of chunk 4 returned $(stat -c %s "$WORK/read4.out")" \
		"bytes after chunk 0 of version 1 was returned"
fi
assert_eq "Input/output error" "$(cat "$WORK/read4.err")" \
	"error of the read of chunk 4"
unmount_nearfs "$MNT4"

check "rename killed between copy and delete: completed at the next start"
# An S3 rename is a CopyObject and a DeleteObject.  The proxy stops the
# requests after the CopyObject of a rename, and the daemon gets SIGKILL
# meanwhile.  The next mount with the same cache_dir must finish the
# rename: only the new name remains, with the bytes of the old one.  Before the journal
# recorded renames, both names stayed in the bucket.
MNT5=$WORK/mnt5
OPTS5="endpoint=$PROXY_URL,cache_dir=$WORK/cache5,chunk_size=1M,write_mode=back"
random_file "$REF/moved.bin" 70000
s3 put data moved/old.bin "$REF/moved.bin"
mount_nearfs s3://data "$MNT5" "$OPTS5"
stat "$MNT5/moved/old.bin" >/dev/null
proxy_set '{"hold_after": {"kind": "COPY", "count": 1}}'
mv "$MNT5/moved/old.bin" "$MNT5/moved/new.bin" 2>"$WORK/mv.err" &
MOVER=$!
CLEANUP_PIDS+=("$MOVER")
wait_proxy_holding "after the CopyObject of the rename"
assert_eq "$(sha256 "$REF/moved.bin")" "$(object_sha data moved/new.bin)" \
	"sha256 of moved/new.bin in the bucket before the kill (copied)"
kill_nearfs "$MNT5" "$MOVER"
# Mode refuse resets the held requests instead of forwarding them.
proxy_set '{"mode": "refuse"}'
proxy_set '{}'
assert_eq "$(sha256 "$REF/moved.bin")" "$(object_sha data moved/old.bin)" \
	"sha256 of moved/old.bin after the kill (not deleted yet)"
mount_nearfs s3://data "$MNT5" "$OPTS5"
assert_eq missing "$(object_sha data moved/old.bin)" \
	"moved/old.bin in the bucket after the restart"
assert_eq "$(sha256 "$REF/moved.bin")" "$(object_sha data moved/new.bin)" \
	"sha256 of moved/new.bin in the bucket after the restart"
assert_eq "$(sha256 "$REF/moved.bin")" "$(sha256 "$MNT5/moved/new.bin")" \
	"sha256 of moved/new.bin on the mount after the restart"
if [ -e "$MNT5/moved/old.bin" ]; then
	fail "moved/old.bin exists on the mount after the restart"
fi
log "ok: moved/old.bin is gone from the mount"
unmount_nearfs "$MNT5"

check "write-back: a folder renamed during an upload below it"
# The PUT of D/x is slow.  D is renamed to E meanwhile, and Y, whose x
# already is in the bucket, to D.  The rename of D waits for the upload,
# which would otherwise land on D/x after Y/x was copied there, and then
# delete D/x as a key it had left behind.
MNT6=$WORK/mnt6
s3 put-bytes data dirs/Y/x "precious"
mount_nearfs s3://data/dirs "$MNT6" \
	"endpoint=$PROXY_URL,cache_dir=$WORK/cache6,write_mode=back,writeback_delay=0"
mkdir "$MNT6/D"
proxy_set '{"kinds": ["PUT"], "rates": {"delay": 1.0}, "delay_ms": 3000}'
echo new >"$MNT6/D/x"
# uploading_x: the state of D/x in the write-back queue.
uploading_x() {
	"$NEARFS_CTL" uploads --json "$MNT6" | python3 -c '
import json, sys
print(" ".join(u["state"] for u in json.load(sys.stdin)["uploads"]))'
}
for i in $(seq 100); do
	[ "$(uploading_x)" = uploading ] && break
	sleep 0.05
done
assert_eq uploading "$(uploading_x)" "state of D/x before the renames"
mv "$MNT6/D" "$MNT6/E"
mv "$MNT6/Y" "$MNT6/D"
proxy_set '{}'
"$NEARFS_CTL" flush "$MNT6" >/dev/null || fail "nearfs-ctl flush failed"
assert_eq precious "$(s3 get data dirs/D/x)" "object dirs/D/x"
assert_eq new "$(s3 get data dirs/E/x)" "object dirs/E/x"
assert_eq precious "$(cat "$MNT6/D/x")" "D/x on the mount"
assert_eq new "$(cat "$MNT6/E/x")" "E/x on the mount"
unmount_nearfs "$MNT6"

check "write-through: a folder renamed while a file below it is stored"
# The close of F/x stores it (a slow PUT) when F is renamed to G: the
# rename waits for the close, and x moves with F.
mount_nearfs s3://data/dirs "$MNT6" \
	"endpoint=$PROXY_URL,cache_dir=$WORK/cache7,write_mode=through"
mkdir "$MNT6/F"
proxy_set '{"kinds": ["PUT"], "rates": {"delay": 1.0}, "delay_ms": 3000}'
echo stored >"$MNT6/F/x" &
WRITER=$!
sleep 1
mv "$MNT6/F" "$MNT6/G"
wait "$WRITER" || fail "writing F/x failed"
proxy_set '{}'
assert_eq stored "$(s3 get data dirs/G/x)" "object dirs/G/x"
assert_eq missing "$(object_sha data dirs/F/x)" "object dirs/F/x"
assert_eq stored "$(cat "$MNT6/G/x")" "G/x on the mount"
unmount_nearfs "$MNT6"

check "write-through: a shared mapping written during a slow chmod"
# The kernel orders neither the open nor the write-back of mapped pages
# with a chmod in flight.  The daemon makes the open wait for the chmod,
# because the writer's upload would otherwise store the old mode.
mount_nearfs s3://data/dirs "$MNT6" \
	"endpoint=$PROXY_URL,cache_dir=$WORK/cache8,write_mode=through"
head -c 100000 /dev/urandom >"$MNT6/mapped.bin"
proxy_set '{"kinds": ["PUT", "COPY"], "rates": {"delay": 1.0}, "delay_ms": 3000}'
chmod 600 "$MNT6/mapped.bin" &
SETTER=$!
sleep 1
python3 - "$MNT6/mapped.bin" <<'PY' || fail "the write through a shared mapping failed"
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 100000)
m[0:6] = b"MAPPED"
m.close()
os.close(fd)
PY
wait "$SETTER" || fail "chmod 600 mapped.bin failed"
proxy_set '{}'
assert_eq MAPPED "$(s3 get data dirs/mapped.bin 0-5)" \
	"first bytes of object dirs/mapped.bin"
assert_eq 600 "$(s3 head data dirs/mapped.bin | python3 -c '
import json, sys
print("%o" % (int(json.load(sys.stdin)["metadata"]["mode"]) & 0o7777))')" \
	"mode stored for dirs/mapped.bin"
assert_eq 600 "$(stat -c %a "$MNT6/mapped.bin")" "mode of mapped.bin"
unmount_nearfs "$MNT6"
