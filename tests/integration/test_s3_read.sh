#!/usr/bin/env bash
# test_s3_read.sh - reads of multi-chunk S3 objects through a mount with
# ordinary programs (cat, cp, dd, tar, sha256sum), the counters of cold
# and warm reads, and the origin traffic of a read at the end of a file.
. "$(dirname "$0")/../lib.sh"

CHUNK=$(mib 1)
SRC=$WORK/src
MNT=$WORK/mnt
OUT=$WORK/out
mkdir -p "$SRC/tree/sub/deeper" "$OUT"

# Sizes chosen so that no file ends on a chunk boundary.
declare -A SIZE=(
	[big1.bin]=$(($(mib 9) + 4097))
	[big2.bin]=$(($(mib 13) + 1))
	[big3.bin]=$(($(mib 20) - 123))
)
for name in "${!SIZE[@]}"; do
	random_file "$SRC/$name" "${SIZE[$name]}"
done
echo "first file of the tree" >"$SRC/tree/a.txt"
seq 1 20000 >"$SRC/tree/sub/numbers.txt"
random_file "$SRC/tree/sub/deeper/blob.bin" $((CHUNK + 333))
: >"$SRC/tree/sub/empty.txt"

# Bytes and chunks of every object, which is what a full read must fetch.
total_bytes=0
total_chunks=0
while IFS= read -r -d '' file; do
	size=$(stat -c %s "$file")
	total_bytes=$((total_bytes + size))
	total_chunks=$((total_chunks + (size + CHUNK - 1) / CHUNK))
done < <(find "$SRC" -type f -print0)

start_s3
s3 mb data
(cd "$SRC" && find . -type f | sed 's|^\./||') | while read -r key; do
	s3 put data "$key" "$SRC/$key"
done

mount_nearfs s3://data "$MNT" \
	"chunk_size=1M,cache_size=1G,ttl=1h,attr_ttl=1h,dir_ttl=1h"

check "listing and sizes"
assert_eq "big1.bin big2.bin big3.bin tree" "$(ls "$MNT" | xargs)" \
	"ls of the root"
assert_eq "a.txt sub" "$(ls "$MNT/tree" | xargs)" "ls of tree"
for name in "${!SIZE[@]}"; do
	assert_eq "${SIZE[$name]}" "$(stat -c %s "$MNT/$name")" \
		"size of $name"
done
assert_eq 0 "$(stat -c %s "$MNT/tree/sub/empty.txt")" "size of empty.txt"

if [ "$(id -u)" -eq 0 ]; then
	check "the kernel reads ahead 4 MiB on the mount"
	ra=/sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb
	# The daemon raises it from a thread once a stat of the mount returns.
	for _ in $(seq 50); do
		[ "$(cat "$ra")" = 4096 ] && break
		sleep 0.1
	done
	assert_eq 4096 "$(cat "$ra")" "$ra"
fi

check "cold read of the last 4 KiB makes exactly one GET"
size=${SIZE[big3.bin]}
last_chunk_bytes=$((size % CHUNK))
gets=$(stat_field "$MNT" requests.GET)
dd if="$MNT/big3.bin" of="$OUT/tail" bs=4096 count=1 \
	iflag=skip_bytes skip=$((size - 4096)) status=none
tail -c 4096 "$SRC/big3.bin" >"$OUT/tail.expected"
assert_same_file "$OUT/tail.expected" "$OUT/tail" "last 4 KiB of big3.bin"
assert_eq $((gets + 1)) "$(stat_field "$MNT" requests.GET)" \
	"requests.GET after reading the last 4 KiB"
assert_eq "$last_chunk_bytes" "$(stat_field "$MNT" bytes_from_origin)" \
	"bytes_from_origin after reading the last 4 KiB (one short chunk)"

check "dd at odd offsets, cold"
# bs skip count: inside a chunk, across the first chunk boundary (4 KiB
# blocks 255..257), one byte at a time across a boundary at an odd
# offset, and a large block straddling several chunks.
dd_cases=(
	"4096 3 7"
	"4096 255 3"
	"4096 511 2"
	"1 1048573 7"
	"1 3145727 2"
	"1 12345 777"
	"65536 7 40"
	"1000000 3 2"
)
for name in big1.bin big2.bin; do
	for spec in "${dd_cases[@]}"; do
		read -r bs skip count <<<"$spec"
		dd if="$SRC/$name" of="$OUT/dd.expected" bs="$bs" \
			skip="$skip" count="$count" status=none
		dd if="$MNT/$name" of="$OUT/dd.actual" bs="$bs" \
			skip="$skip" count="$count" status=none
		assert_same_file "$OUT/dd.expected" "$OUT/dd.actual" \
			"dd bs=$bs skip=$skip count=$count of $name"
	done
done

check "full reads with cat, cp and dd"
cat "$MNT/big1.bin" >"$OUT/big1.bin"
assert_same_file "$SRC/big1.bin" "$OUT/big1.bin" "cat of big1.bin"
cp "$MNT/big2.bin" "$OUT/big2.bin"
assert_same_file "$SRC/big2.bin" "$OUT/big2.bin" "cp of big2.bin"
dd if="$MNT/big3.bin" of="$OUT/big3.bin" bs=1M status=none
assert_same_file "$SRC/big3.bin" "$OUT/big3.bin" "dd bs=1M of big3.bin"

check "tar of a directory"
tar -C "$SRC" -cf "$OUT/expected.tar" tree
tar -C "$MNT" -cf "$OUT/actual.tar" tree
assert_eq "$(tar -tf "$OUT/expected.tar" | sort | xargs)" \
	"$(tar -tf "$OUT/actual.tar" | sort | xargs)" "tar listing of tree"
mkdir "$OUT/untar"
tar -C "$OUT/untar" -xf "$OUT/actual.tar"
diff -r "$SRC/tree" "$OUT/untar/tree" ||
	fail "content of tree extracted from the tar differs"
log "ok: tar content equal"

check "sha256sum of everything"
(cd "$SRC" && find . -type f | sort | xargs sha256sum) >"$OUT/sums"
(cd "$MNT" && sha256sum -c --quiet "$OUT/sums") ||
	fail "sha256sum -c over the mount reported mismatches"
log "ok: sha256 of every file equal"

check "counters after the cold reads"
assert_eq "$total_bytes" "$(stat_field "$MNT" bytes_from_origin)" \
	"bytes_from_origin after reading every file (each chunk once)"
assert_eq "$total_chunks" "$(stat_field "$MNT" chunks_cached)" \
	"chunks_cached after reading every file"
gets=$(stat_field "$MNT" requests.GET)
assert_num "$gets" -le "$total_chunks" "requests.GET at most one per chunk"
assert_num "$(stat_field "$MNT" bytes_cached)" -ge "$total_bytes" \
	"bytes_cached covers every file"
assert_eq 0 "$(stat_field "$MNT" evictions)" "evictions"
assert_eq 0 "$(stat_field "$MNT" checksum_failures)" "checksum_failures"

check "second full read is served from the cache"
misses=$(stat_field "$MNT" misses)
from_cache=$(stat_field "$MNT" bytes_from_cache)
mapfile -d '' mounted_files < <(find "$MNT" -type f -print0)
drop_page_cache "${mounted_files[@]}"
(cd "$MNT" && sha256sum -c --quiet "$OUT/sums") ||
	fail "second sha256sum -c over the mount reported mismatches"
assert_eq "$gets" "$(stat_field "$MNT" requests.GET)" \
	"requests.GET after the second read"
assert_eq "$misses" "$(stat_field "$MNT" misses)" \
	"misses after the second read"
assert_num "$(stat_field "$MNT" bytes_from_cache)" -ge \
	$((from_cache + total_bytes)) \
	"bytes_from_cache grew by at least every file's size"
# The warm reads were sent from the data files without a copy.
assert_num "$(stat_field "$MNT" bytes_zero_copy)" -ge "$total_bytes" \
	"bytes_zero_copy after the second read"

if [ "$(id -u)" -eq 0 ]; then
	check "warm reads are spliced from the data files"
	# libfuse copies a reply that does not fit its pipe into a buffer
	# and sends it with writev.  No reply of this read may be sent
	# that way.
	drop_page_cache "$MNT/big3.bin"
	read -r spliced copied < <(reply_calls "${NEARFS_PID[$MNT]}" \
		"$WORK/replies.log" dd if="$MNT/big3.bin" of=/dev/null bs=1M \
		status=none)
	assert_num "$spliced" -ge 20 "splice calls for a read of 20 MiB"
	assert_eq 0 "$copied" "replies of 64 KiB or more sent by writev"
fi

check "mount table names the origin"
assert_eq "s3://data fuse.nearfs" \
	"$(awk -v m="$MNT" '$2 == m { print $1, $3 }' /proc/mounts)" \
	"source and type of the mount in /proc/mounts"

check "data files removed behind the daemon are fetched again"
one=${mounted_files[0]}
gets=$(stat_field "$MNT" requests.GET)
cat "$one" >/dev/null
find "$WORK/cache" -path '*/data/*' -type f -delete
drop_page_cache "$one"
cmp "$one" "$SRC/${one#"$MNT"/}" ||
	fail "$one differs after its data file was removed"
assert_num "$(stat_field "$MNT" requests.GET)" -gt "$gets" \
	"requests.GET after the data files were removed"
assert_num "$(stat_field "$MNT" checksum_failures)" -gt 0 \
	"checksum_failures after the data files were removed"

unmount_nearfs "$MNT"

if [ "$(id -u)" -eq 0 ]; then
	check "cold reads are spliced once readahead stored them"
	# With the default chunk size of 4 MiB, most of the kernel's
	# parallel reads find their chunk being fetched by readahead, so
	# they wait for it and splice it.  Only a read that comes first
	# fetches its chunk itself and copies it.  Before the wait, 22 of
	# about 35 replies were copied.
	MNT2=$WORK/mnt2
	mount_nearfs s3://data "$MNT2" "cache_dir=$WORK/cache2"
	read -r spliced copied < <(reply_calls "${NEARFS_PID[$MNT2]}" \
		"$WORK/cold-replies.log" dd if="$MNT2/big3.bin" of=/dev/null \
		bs=1M status=none)
	assert_num "$spliced" -ge 30 "splice calls for a cold read of 20 MiB"
	assert_num "$copied" -le 8 "cold replies sent by writev"
	unmount_nearfs "$MNT2"
fi
