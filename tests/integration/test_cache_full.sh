#!/usr/bin/env bash
# test_cache_full.sh - cache_dir on a small tmpfs that another process
# fills while four mounts use it: S3 and a directory origin, each in
# write-back and write-through mode.  While it is full, reads return the
# origin's bytes without caching, writes that need local space fail with
# ENOSPC, and each daemon serves nearfs-ctl stats and logs one line with
# the fix.  Once the filler is removed, reads are cached again, the
# pending upload reaches the origin, a file replaced while open reads
# whole past cache_size, and nearfs-ctl verify finds the cache folders
# intact.
. "$(dirname "$0")/../lib.sh"

[ "$(id -u)" = 0 ] || fail "mounting a tmpfs needs root"

FS=$WORK/cachefs
CACHE=$FS/cache
SRC=$WORK/src
mkdir -p "$FS" "$SRC"
mount -t tmpfs -o size=32m nearfs-test-cache "$FS"
mkdir -p "$CACHE"

random_file "$SRC/cold.bin" "$(mib 3)"
random_file "$SRC/late.bin" "$(mib 3)"
random_file "$SRC/pending.bin" "$(mib 1)"
random_file "$SRC/big.bin" "$(mib 4)"
random_file "$SRC/after.bin" "$(mib 4)"

start_s3
s3 mb data

# The four mounts: name, origin, options.  The S3 ones keep no free
# space (min_free=0), the directory ones the default 5%.
names=(s3-back s3-through dir-back dir-through)
declare -A ORIGIN=() MODE=() MNT=() big_sha=()
for name in "${names[@]}"; do
	MODE[$name]=${name#*-}
	MNT[$name]=$WORK/mnt-$name
	case $name in
	s3-*) ORIGIN[$name]=s3://data/$name ;;
	dir-*)
		ORIGIN[$name]=$WORK/origin-$name
		mkdir -p "${ORIGIN[$name]}" ;;
	esac
done

# put_origin NAME FILE: store FILE of $SRC on the origin of mount NAME.
put_origin() {
	case $1 in
	s3-*) s3 put data "$1/$2" "$SRC/$2" ;;
	dir-*) cp "$SRC/$2" "${ORIGIN[$1]}/$2" ;;
	esac
}

# origin_sha NAME FILE: sha256 of FILE on the origin of mount NAME, or
# "missing".
origin_sha() {
	case $1 in
	s3-*) object_sha data "$1/$2" ;;
	dir-*)
		if [ -e "${ORIGIN[$1]}/$2" ]; then
			sha256 "${ORIGIN[$1]}/$2"
		else
			echo missing
		fi ;;
	esac
}

# mount_sha NAME FILE: sha256 of FILE read through mount NAME after
# dropping its pages, or "missing".
mount_sha() {
	local path=${MNT[$1]}/$2
	if [ -e "$path" ]; then
		drop_page_cache "$path"
		sha256 "$path"
	else
		echo missing
	fi
}

# try_write SRC DST: write SRC to DST in 1 MiB writes, then fsync and
# close.  Prints "ok", or the failed step and its errno name ("write
# ENOSPC").
try_write() {
	python3 - "$1" "$2" <<'PY'
import errno, os, sys
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
step = "write"
try:
    off = 0
    while off < len(data):
        off += os.write(fd, data[off:off + (1 << 20)])
    step = "fsync"
    os.fsync(fd)
    step = "close"
    fd, closing = -1, fd
    os.close(closing)
    print("ok")
except OSError as exc:
    print(step, errno.errorcode.get(exc.errno, exc.errno))
finally:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
PY
}

# read_stats MNT: the top-level counters of nearfs-ctl stats into STAT,
# with one call where stat_field makes one per counter.
declare -A STAT=()
read_stats() {
	local key value
	STAT=()
	while IFS='=' read -r key value; do
		STAT[$key]=$value
	done < <(stats_json "$1" | python3 -c '
import json, sys
for key, value in json.load(sys.stdin).items():
    if not isinstance(value, dict):
        print("%s=%s" % (key, value))')
}

mount_all() {
	local name
	for name in "${names[@]}"; do
		opts="cache_dir=$CACHE,chunk_size=1M,cache_size=4M,ttl=1h"
		opts+=",write_mode=${MODE[$name]},writeback_delay=1h"
		case $name in
		s3-*) opts+=",min_free=0" ;;
		esac
		# fsync only makes the file durable in the journal.
		[ "${MODE[$name]}" = back ] && opts+=",fsync=local"
		mount_nearfs "${ORIGIN[$name]}" "${MNT[$name]}" "$opts"
	done
}

for name in "${names[@]}"; do
	for file in cold.bin late.bin; do
		put_origin "$name" "$file"
	done
done
mount_all

check "a write-back file waits for upload before the disk fills"
for name in s3-back dir-back; do
	assert_eq ok "$(try_write "$SRC/pending.bin" \
		"${MNT[$name]}/pending.bin")" "writing pending.bin on $name"
	assert_eq 1 "$(stat_field "${MNT[$name]}" uploads_pending)" \
		"uploads_pending on $name"
done

check "another process fills the tmpfs of cache_dir"
dd if=/dev/zero of="$FS/filler" bs=1M status=none 2>/dev/null || true
avail=$(df --output=avail -B1 "$FS" | tail -n 1 | tr -d ' ')
assert_num "$avail" -lt "$(mib 1)" "bytes free on the tmpfs"

check "reads while full: the origin's bytes, nothing cached"
for name in "${names[@]}"; do
	mnt=${MNT[$name]}
	assert_eq "$(sha256 "$SRC/cold.bin")" "$(mount_sha "$name" cold.bin)" \
		"sha256 of cold.bin on $name"
	assert_eq "$(sha256 "$SRC/cold.bin")" "$(mount_sha "$name" cold.bin)" \
		"sha256 of cold.bin read again on $name"
	read_stats "$mnt"
	assert_eq 0 "${STAT[chunks_cached]}" "chunks_cached on $name"
	assert_eq 0 "${STAT[hits]}" "hits on $name"
	assert_num "${STAT[misses]}" -ge 6 "misses on $name"
	assert_eq 1 "${STAT[cache_dir_full]}" "cache_dir_full on $name"
	assert_num "${STAT[cache_dir_errors]}" -gt 0 \
		"cache_dir_errors on $name"
done

check "writes while full: ENOSPC, and no version the origin lacks"
for name in "${names[@]}"; do
	result=$(try_write "$SRC/big.bin" "${MNT[$name]}/big.bin")
	assert_eq "write ENOSPC" "$result" "writing big.bin on $name"
done
# Short of space, the write-back writer had the pending file uploaded
# before it gave up, in case that freed room.
for name in s3-back dir-back; do
	assert_eq 1 "$(stat_field "${MNT[$name]}" uploads_done)" \
		"uploads_done on $name after the failed write"
	assert_eq "$(sha256 "$SRC/pending.bin")" \
		"$(origin_sha "$name" pending.bin)" \
		"sha256 of pending.bin on the origin of $name"
done
for name in "${names[@]}"; do
	[ "${MODE[$name]}" = back ] && "$NEARFS_CTL" flush "${MNT[$name]}" \
		>/dev/null
	assert_eq "$(origin_sha "$name" big.bin)" \
		"$(mount_sha "$name" big.bin)" \
		"big.bin on $name: the mount shows what the origin has"
	assert_ne "$(sha256 "$SRC/big.bin")" "$(origin_sha "$name" big.bin)" \
		"big.bin on the origin of $name: not the whole file"
done

check "the daemons answer and log the shortage once, with the fix"
for name in "${names[@]}"; do
	log=${NEARFS_LOG[${MNT[$name]}]}
	kill -0 "${NEARFS_PID[${MNT[$name]}]}" ||
		fail "the daemon of $name exited"
	"$NEARFS_CTL" stats "${MNT[$name]}" >/dev/null
	assert_eq 1 "$(grep -c "cache_dir $CACHE is full" "$log")" \
		"lines reporting the full cache_dir in the log of $name"
	line=$(grep "cache_dir $CACHE is full" "$log")
	assert_contains "$line" "free space" "the line of $name"
	assert_contains "$line" "cache_size" "the line of $name"
	assert_contains "$line" "min_free" "the line of $name"
	# With min_free=0 the disk itself is full, so min_free is not the
	# cause.
	case $name in
	s3-*) case $line in
		*"below min_free"*) fail "the line of $name blames" \
			"min_free=0: $line" ;;
		esac ;;
	esac
	assert_eq 1 "$(grep -c "No space left" "$log")" \
		"lines naming ENOSPC in the log of $name"
done

check "space returns: reads are cached again"
rm -f "$FS/filler"
for name in "${names[@]}"; do
	mnt=${MNT[$name]}
	chunks=$(stat_field "$mnt" chunks_cached)
	assert_eq "$(sha256 "$SRC/late.bin")" "$(mount_sha "$name" late.bin)" \
		"sha256 of late.bin on $name"
	assert_eq 0 "$(stat_field "$mnt" cache_dir_full)" \
		"cache_dir_full on $name"
	assert_eq $((chunks + 3)) "$(stat_field "$mnt" chunks_cached)" \
		"chunks_cached on $name after reading late.bin"
	hits=$(stat_field "$mnt" hits)
	assert_eq "$(sha256 "$SRC/late.bin")" "$(mount_sha "$name" late.bin)" \
		"sha256 of late.bin read again on $name"
	assert_num "$(stat_field "$mnt" hits)" -ge $((hits + 3)) \
		"hits on $name after reading late.bin again"
	assert_eq 1 "$(grep -c "cache_dir $CACHE has room again" \
		"${NEARFS_LOG[$mnt]}")" "recovery lines in the log of $name"
done

check "space returns: writes work, the pending upload reaches the origin"
for name in "${names[@]}"; do
	assert_eq ok "$(try_write "$SRC/after.bin" "${MNT[$name]}/after.bin")" \
		"writing after.bin on $name"
done
for name in s3-back dir-back; do
	"$NEARFS_CTL" flush "${MNT[$name]}" >/dev/null
	assert_eq 0 "$(stat_field "${MNT[$name]}" uploads_pending)" \
		"uploads_pending on $name after the flush"
done
for name in "${names[@]}"; do
	for file in after.bin; do
		assert_eq "$(sha256 "$SRC/$file")" "$(origin_sha "$name" $file)" \
			"sha256 of $file on the origin of $name"
	done
done
for name in s3-back dir-back; do
	assert_eq "$(sha256 "$SRC/pending.bin")" \
		"$(origin_sha "$name" pending.bin)" \
		"sha256 of pending.bin on the origin of $name"
done

check "a file replaced while open reads whole, past cache_size"
# Once the rename is done, the cache keeps the only copy (6 MiB of a
# 4 MiB budget) until the reader closes the file.
random_file "$SRC/replaced.bin" "$(mib 6)"
for name in "${names[@]}"; do
	mnt=${MNT[$name]}
	put_origin "$name" replaced.bin
	got=$(python3 - "$mnt" <<'PY'
import hashlib, os, sys
mnt = sys.argv[1]
with open(os.path.join(mnt, "replaced.bin"), "rb", buffering=0) as f:
    digest = hashlib.sha256(f.read(4096))
    with open(os.path.join(mnt, "new.bin"), "wb") as w:
        w.write(b"new")
    os.rename(os.path.join(mnt, "new.bin"),
              os.path.join(mnt, "replaced.bin"))
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
print(digest.hexdigest())
PY
)
	assert_eq "$(sha256 "$SRC/replaced.bin")" "$got" \
		"sha256 of replaced.bin read on $name across the rename"
	assert_eq new "$(cat "$mnt/replaced.bin")" \
		"replaced.bin on $name after the rename"
	assert_num "$(stat_field "$mnt" bytes_cached)" -le "$(mib 4)" \
		"bytes_cached on $name once the reader closed"
	rm "$mnt/replaced.bin"
done

check "after unmounting: verify passes, a remount has the same bytes"
for name in "${names[@]}"; do
	big_sha[$name]=$(origin_sha "$name" big.bin)
	unmount_nearfs "${MNT[$name]}"
done
status=0
"$NEARFS_CTL" verify "$CACHE" >"$WORK/verify.out" 2>&1 || status=$?
assert_eq 0 "$status" "exit status of nearfs-ctl verify ($(tail -n 3 \
	"$WORK/verify.out" | tr '\n' ' '))"
mount_all
for name in "${names[@]}"; do
	for file in cold.bin late.bin after.bin; do
		assert_eq "$(sha256 "$SRC/$file")" "$(mount_sha "$name" $file)" \
			"sha256 of $file on $name after the remount"
	done
	assert_eq "${big_sha[$name]}" "$(mount_sha "$name" big.bin)" \
		"big.bin on $name after the remount: as on the origin"
	unmount_nearfs "${MNT[$name]}"
done
umount "$FS"
