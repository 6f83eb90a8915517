#!/usr/bin/env bash
# test_s3_remount.sh - the cache survives an unmount: a remount with the
# same cache_dir reads without GETs within ttl, revalidates with a HEAD
# after ttl, fetches again only an object that really changed, and
# detects a chunk damaged on disk.
. "$(dirname "$0")/../lib.sh"

SRC=$WORK/src
MNT=$WORK/mnt
CACHE=$WORK/cache
mkdir -p "$SRC"
random_file "$SRC/one.bin" $(($(mib 5) + 77))
random_file "$SRC/two.bin" $(($(mib 3) + 1))
echo "a short text object" >"$SRC/note.txt"
names=(one.bin two.bin note.txt)

start_s3
s3 mb data
for name in "${names[@]}"; do
	s3 put data "$name" "$SRC/$name"
done

read_all_and_compare() {
	local name
	for name in "${names[@]}"; do
		assert_eq "$(sha256 "$SRC/$name")" "$(sha256 "$MNT/$name")" \
			"$1: sha256 of $name"
	done
}

# ttl=10m: far longer than the test, but shorter than the uptime of most
# machines, so that a check time lost over the remount shows.
check "first mount reads from the origin"
mount_nearfs s3://data "$MNT" "cache_dir=$CACHE,chunk_size=1M,ttl=10m"
read_all_and_compare "first mount"
first_gets=$(stat_field "$MNT" requests.GET)
assert_num "$first_gets" -gt 0 "requests.GET of the first mount"
chunks=$(stat_field "$MNT" chunks_cached)
unmount_nearfs "$MNT"

check "remount within ttl makes no GET"
mount_nearfs s3://data "$MNT" "cache_dir=$CACHE,chunk_size=1M,ttl=10m"
assert_eq "$chunks" "$(stat_field "$MNT" chunks_cached)" \
	"chunks_cached after the remount"
read_all_and_compare "remount within ttl"
assert_eq 0 "$(stat_field "$MNT" requests.GET)" \
	"requests.GET after the remount"
assert_eq 0 "$(stat_field "$MNT" misses)" "misses after the remount"
assert_eq 0 "$(stat_field "$MNT" revalidations)" \
	"revalidations after the remount within ttl"
assert_num "$(stat_field "$MNT" hits)" -gt 0 "hits after the remount"
unmount_nearfs "$MNT"

check "remount after ttl revalidates with HEAD, still no GET"
sleep 2
mount_nearfs s3://data "$MNT" "cache_dir=$CACHE,chunk_size=1M,ttl=1s"
heads=$(stat_field "$MNT" requests.HEAD)
cat "$MNT/one.bin" >"$WORK/one.out"
assert_same_file "$SRC/one.bin" "$WORK/one.out" "one.bin after ttl"
assert_num "$(stat_field "$MNT" requests.HEAD)" -gt "$heads" \
	"requests.HEAD after opening one.bin"
assert_num "$(stat_field "$MNT" revalidations)" -ge 1 "revalidations"
assert_eq 0 "$(stat_field "$MNT" requests.GET)" \
	"requests.GET after revalidating one.bin"
assert_eq 0 "$(stat_field "$MNT" invalidations)" "invalidations"
unmount_nearfs "$MNT"

check "object changed while unmounted is fetched again"
random_file "$SRC/two.bin" $(($(mib 2) + 5))
s3 put data two.bin "$SRC/two.bin"
sleep 2
mount_nearfs s3://data "$MNT" "cache_dir=$CACHE,chunk_size=1M,ttl=1s"
assert_eq $(($(mib 2) + 5)) "$(stat -c %s "$MNT/two.bin")" \
	"size of the changed two.bin"
read_all_and_compare "after the change"
assert_num "$(stat_field "$MNT" invalidations)" -ge 1 \
	"invalidations after the change"
assert_eq $(($(mib 2) + 5)) "$(stat_field "$MNT" bytes_from_origin)" \
	"bytes_from_origin: the new two.bin only"
unmount_nearfs "$MNT"

check "damaged chunk on disk is detected and fetched again"
# The data file of an object in cache_dir has the object's size and keeps
# each chunk at its offset.  one.bin is the only object of that size.
size=$(stat -c %s "$SRC/one.bin")
data_file=$(find "$CACHE" -type f -size "${size}c" | head -n 1)
[ -n "$data_file" ] || fail "no file of $size bytes (one.bin) in $CACHE"
printf 'damage' | dd of="$data_file" bs=1 seek=4000 conv=notrunc status=none
mount_nearfs s3://data "$MNT" "cache_dir=$CACHE,chunk_size=1M,ttl=1h"
cat "$MNT/one.bin" >"$WORK/one.out"
assert_same_file "$SRC/one.bin" "$WORK/one.out" "one.bin after the damage"
assert_eq 1 "$(stat_field "$MNT" checksum_failures)" "checksum_failures"
assert_eq "$(mib 1)" "$(stat_field "$MNT" bytes_from_origin)" \
	"bytes_from_origin: the damaged chunk only"
unmount_nearfs "$MNT"
