#!/usr/bin/env bash
# test_verify.sh - nearfs-ctl verify on a cache filled through a real
# mount over the test S3 server.  It reports exactly the damage done to
# the folder while no daemon ran, and --repair removes it.  The next
# mount then fetches the dropped chunks again and serves the bucket's
# bytes.  verify rejects a folder that a daemon uses, and keeps a pending
# write-back upload, which the next mount uploads, also when its file is
# shorter or longer than the journal records.
. "$(dirname "$0")/../lib.sh"

SRC=$WORK/src
MNT=$WORK/mnt
CACHE=$WORK/cache
MIB=$(mib 1)
mkdir -p "$SRC"
random_file "$SRC/one.bin" $((5 * MIB + 77))
random_file "$SRC/two.bin" $((3 * MIB + 1))
echo "a short text object" >"$SRC/note.txt"
names=(one.bin two.bin note.txt)
OPTS="cache_dir=$CACHE,chunk_size=1M,ttl=10m"

start_s3
s3 mb data
for name in "${names[@]}"; do
	s3 put data "$name" "$SRC/$name"
done

# run_verify OUT ARGS...: run nearfs-ctl verify, output in OUT, and print
# its exit status.
run_verify() {
	local out=$1 status=0
	shift
	"$NEARFS_CTL" verify "$@" >"$out" 2>&1 || status=$?
	echo "$status"
}

# count_kind OUT KIND: the problem lines of KIND in OUT.
count_kind() {
	grep -c "^$2: " "$1" || true
}

# data_file SIZE: the data file of the cached object of SIZE bytes (data
# files have the size of their object).
data_file() {
	find "$CACHE" -path '*/data/*' -type f -size "$1c"
}

check "verify of a clean cache exits 0"
mount_nearfs s3://data "$MNT" "$OPTS"
for name in "${names[@]}"; do
	assert_eq "$(sha256 "$SRC/$name")" "$(sha256 "$MNT/$name")" \
		"first read of $name"
done
unmount_nearfs "$MNT"
status=$(run_verify "$WORK/clean.out" "$CACHE")
cat "$WORK/clean.out"
assert_eq 0 "$status" "exit status of verify on a clean cache"
assert_contains "$(cat "$WORK/clean.out")" "3 objects, 11 chunks" \
	"summary of the clean cache"
assert_contains "$(cat "$WORK/clean.out")" "0 problems" \
	"summary of the clean cache"

check "verify reports each damage once and exits 1"
one=$(data_file $((5 * MIB + 77)))
two=$(data_file $((3 * MIB + 1)))
[ -n "$one" ] && [ -n "$two" ] || fail "data files not found below $CACHE"
folder=$(dirname "$(dirname "$(dirname "$one")")")
# Flip one bit inside chunk 2 of one.bin.
python3 - "$one" $((2 * MIB + 100)) <<'PY'
import sys
path, offset = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(offset)
    byte = f.read(1)[0]
    f.seek(offset)
    f.write(bytes([byte ^ 0x01]))
PY
# Cut two.bin inside chunk 2: chunks 2 (1 MiB) and 3 (1 byte) are lost.
truncate -s $((2 * MIB + 500)) "$two"
mkdir -p "$folder/data/ee"
echo orphan >"$folder/data/ee/00000000000000ee"
echo "left over" >"$folder/tmp/w4242-1"
status=$(run_verify "$WORK/damaged.out" "$CACHE")
cat "$WORK/damaged.out"
assert_eq 1 "$status" "exit status of verify on the damaged cache"
assert_eq 1 "$(count_kind "$WORK/damaged.out" checksum)" "checksum lines"
assert_eq 1 "$(count_kind "$WORK/damaged.out" short)" "short lines"
assert_eq 1 "$(count_kind "$WORK/damaged.out" orphan)" "orphan lines"
assert_eq 1 "$(count_kind "$WORK/damaged.out" tmp)" "tmp lines"
assert_eq 4 "$(grep -cE '^[a-z]+: /' "$WORK/damaged.out")" \
	"problem lines in all"
assert_contains "$(grep '^checksum: ' "$WORK/damaged.out")" "$one" \
	"the checksum line"
assert_contains "$(grep '^short: ' "$WORK/damaged.out")" "$two" \
	"the short line"
assert_contains "$(tail -n 1 "$WORK/damaged.out")" \
	"4 problems (checksum 1, short 1, orphan 1, tmp 1)" "summary"
assert_eq 1 "$(run_verify "$WORK/damaged2.out" "$folder")" \
	"exit status of verify on the origin folder itself"
assert_eq 4 "$(grep -cE '^[a-z]+: /' "$WORK/damaged2.out")" \
	"problem lines of the origin folder (nothing changed)"

check "verify --repair removes the damage, then verify exits 0"
status=$(run_verify "$WORK/repair.out" --repair "$CACHE")
cat "$WORK/repair.out"
assert_eq 1 "$status" "exit status of verify --repair"
assert_contains "$(tail -n 1 "$WORK/repair.out")" "4 repaired, 0 kept" \
	"summary of the repair"
[ ! -e "$folder/data/ee/00000000000000ee" ] ||
	fail "the orphan data file is still there"
[ ! -e "$folder/tmp/w4242-1" ] || fail "the tmp file is still there"
status=$(run_verify "$WORK/repaired.out" "$CACHE")
cat "$WORK/repaired.out"
assert_eq 0 "$status" "exit status of verify after the repair"
assert_contains "$(cat "$WORK/repaired.out")" "3 objects, 8 chunks" \
	"summary after the repair"

check "the next mount fetches exactly the repaired chunks"
mount_nearfs s3://data "$MNT" "$OPTS"
for name in "${names[@]}"; do
	cat "$MNT/$name" >"$WORK/read.out"
	assert_eq "$(object_sha data "$name")" "$(sha256 "$WORK/read.out")" \
		"$name after the repair against the bucket"
done
assert_eq $((2 * MIB + 1)) "$(stat_field "$MNT" bytes_from_origin)" \
	"bytes_from_origin after the repair (the three dropped chunks)"
assert_eq 0 "$(stat_field "$MNT" checksum_failures)" \
	"checksum_failures after the repair"

check "verify exits 2 and names the pid while a daemon runs"
pid=${NEARFS_PID[$MNT]}
status=$(run_verify "$WORK/busy.out" "$CACHE")
cat "$WORK/busy.out"
assert_eq 2 "$status" "exit status of verify on a mounted cache"
assert_contains "$(cat "$WORK/busy.out")" "pid $pid" "the message"
unmount_nearfs "$MNT"

check "a pending write-back upload is reported, kept and uploaded later"
WB_CACHE=$WORK/cache-wb
WB_OPTS="cache_dir=$WB_CACHE,chunk_size=1M,write_mode=back,writeback_delay=1h"
mount_nearfs s3://data/wb "$MNT" "$WB_OPTS"
random_file "$WORK/new.bin" $((MIB + 5))
write_file "$WORK/new.bin" "$MNT/new.bin"
assert_eq 1 "$(stat_field "$MNT" uploads_pending)" "uploads_pending"
kill_nearfs "$MNT"
assert_eq missing "$(object_sha data wb/new.bin)" "wb/new.bin before"
wb_folder=$(find "$WB_CACHE" -mindepth 1 -maxdepth 1 -type d)
echo "left over" >"$wb_folder/tmp/w4242-2"
status=$(run_verify "$WORK/wb.out" "$WB_CACHE")
cat "$WORK/wb.out"
assert_eq 1 "$status" "exit status of verify with a tmp file"
assert_eq 1 "$(grep -c '^pending: .*upload of new.bin' "$WORK/wb.out")" \
	"pending lines"
assert_contains "$(tail -n 1 "$WORK/wb.out")" "1 upload pending" \
	"summary with the pending upload"
status=$(run_verify "$WORK/wb-repair.out" --repair "$WB_CACHE")
cat "$WORK/wb-repair.out"
assert_eq 1 "$status" "exit status of verify --repair"
assert_eq 1 "$(find "$wb_folder/dirty" -type f | wc -l)" \
	"files in dirty/ after the repair"
status=$(run_verify "$WORK/wb-after.out" "$WB_CACHE")
assert_eq 0 "$status" "exit status of verify after the repair"
assert_contains "$(tail -n 1 "$WORK/wb-after.out")" "1 upload pending" \
	"summary after the repair"
mount_nearfs s3://data/wb "$MNT" "$WB_OPTS"
"$NEARFS_CTL" flush "$MNT" >"$WORK/flush.out" 2>&1 ||
	fail "nearfs-ctl flush: $(cat "$WORK/flush.out")"
assert_eq "$(sha256 "$WORK/new.bin")" "$(object_sha data wb/new.bin)" \
	"wb/new.bin in the bucket after the next mount"
unmount_nearfs "$MNT"

check "a pending file of another size than the journal records is kept"
SZ_CACHE=$WORK/cache-size
SZ_OPTS="cache_dir=$SZ_CACHE,chunk_size=1M,write_mode=back,writeback_delay=1h"
mount_nearfs s3://data/sz "$MNT" "$SZ_OPTS"
random_file "$WORK/a.bin" 3000
random_file "$WORK/b.bin" 7000
write_file "$WORK/a.bin" "$MNT/a.bin"
write_file "$WORK/b.bin" "$MNT/b.bin"
kill_nearfs "$MNT"
sz_folder=$(find "$SZ_CACHE" -mindepth 1 -maxdepth 1 -type d)
# a.bin was closed first, so it is dirty/...1 and b.bin dirty/...2.
truncate -s 1000 "$sz_folder/dirty/0000000000000001"
head -c 500 /dev/zero >>"$sz_folder/dirty/0000000000000002"
status=$(run_verify "$WORK/size.out" "$SZ_CACHE")
cat "$WORK/size.out"
assert_eq 1 "$status" "exit status of verify with pending files of other sizes"
assert_eq 2 "$(count_kind "$WORK/size.out" size)" "size lines"
assert_eq "size: $sz_folder/dirty/0000000000000001: the journal records 3000 bytes for a.bin, but the file has 1000 bytes (2000 bytes shorter)" \
	"$(grep '0000000000000001: ' "$WORK/size.out" | grep '^size: ')" \
	"the size line of a.bin"
assert_eq "size: $sz_folder/dirty/0000000000000002: the journal records 7000 bytes for b.bin, but the file has 7500 bytes (500 bytes longer)" \
	"$(grep '0000000000000002: ' "$WORK/size.out" | grep '^size: ')" \
	"the size line of b.bin"
assert_eq 2 "$(grep -c '^pending: ' "$WORK/size.out")" "pending lines"
assert_contains "$(tail -n 1 "$WORK/size.out")" \
	"2 uploads pending (8500 bytes); 2 problems (size 2)" "summary"
status=$(run_verify "$WORK/size-repair.out" --repair "$SZ_CACHE")
cat "$WORK/size-repair.out"
assert_eq 1 "$status" "exit status of verify --repair"
assert_eq 2 "$(grep -c '^size: .*; kept: verify never removes a pending upload, and the next mount uploads the file as it is now$' "$WORK/size-repair.out")" \
	"size lines that say the files are kept"
assert_contains "$(tail -n 1 "$WORK/size-repair.out")" "0 repaired, 2 kept" \
	"summary of the repair"
assert_eq 1000 "$(stat -c %s "$sz_folder/dirty/0000000000000001")" \
	"size of dirty/...1 after the repair"
assert_eq 7500 "$(stat -c %s "$sz_folder/dirty/0000000000000002")" \
	"size of dirty/...2 after the repair"
mount_nearfs s3://data/sz "$MNT" "$SZ_OPTS"
"$NEARFS_CTL" flush "$MNT" >"$WORK/flush.out" 2>&1 ||
	fail "nearfs-ctl flush: $(cat "$WORK/flush.out")"
s3 get data sz/a.bin >"$WORK/a.out"
s3 get data sz/b.bin >"$WORK/b.out"
assert_eq 1000 "$(stat -c %s "$WORK/a.out")" "size of sz/a.bin in the bucket"
assert_eq 7500 "$(stat -c %s "$WORK/b.out")" "size of sz/b.bin in the bucket"
unmount_nearfs "$MNT"
assert_eq 0 "$(run_verify "$WORK/size-after.out" "$SZ_CACHE")" \
	"exit status of verify after the uploads"
