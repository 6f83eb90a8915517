#!/usr/bin/env bash
# test_s3_ttl.sh - an object overwritten behind the mount's back: reads
# within ttl return the cached version, reads after ttl the new one.
. "$(dirname "$0")/../lib.sh"

SRC=$WORK/src
MNT=$WORK/mnt
mkdir -p "$SRC"
random_file "$SRC/same.v1" $(($(mib 2) + 10))
random_file "$SRC/same.v2" $(($(mib 2) + 10))
random_file "$SRC/grow.v1" 5000
random_file "$SRC/grow.v2" $(($(mib 1) + 999))

start_s3
s3 mb data
s3 put data same.bin "$SRC/same.v1"
s3 put data grow.bin "$SRC/grow.v1"

mount_nearfs s3://data "$MNT" "chunk_size=1M,ttl=6s,attr_ttl=1s"

check "first read"
started=$(date +%s%N)
assert_eq "$(sha256 "$SRC/same.v1")" "$(sha256 "$MNT/same.bin")" \
	"sha256 of same.bin, first read"
assert_eq "$(sha256 "$SRC/grow.v1")" "$(sha256 "$MNT/grow.bin")" \
	"sha256 of grow.bin, first read"
invalidations=$(stat_field "$MNT" invalidations)

check "overwrite behind the mount, read within ttl"
s3 put data same.bin "$SRC/same.v2"
drop_page_cache "$MNT/same.bin"
within=$(sha256 "$MNT/same.bin")
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
# ttl is 6 s so that a machine slowed by sanitizers still reads within
# it: the first reads and two S3 client runs come before this read.
[ "$elapsed_ms" -lt 6000 ] ||
	fail "the read within ttl came ${elapsed_ms} ms after the first" \
		"read, later than ttl=6s: this machine is too slow for the test"
assert_eq "$(sha256 "$SRC/same.v1")" "$within" \
	"sha256 of same.bin within ttl (${elapsed_ms} ms): the cached version"

check "read after ttl returns the new version"
s3 put data grow.bin "$SRC/grow.v2"
sleep 6.5
assert_eq "$(sha256 "$SRC/same.v2")" "$(sha256 "$MNT/same.bin")" \
	"sha256 of same.bin after ttl"
assert_eq $(($(mib 1) + 999)) "$(stat -c %s "$MNT/grow.bin")" \
	"size of grow.bin after attr_ttl"
assert_eq "$(sha256 "$SRC/grow.v2")" "$(sha256 "$MNT/grow.bin")" \
	"sha256 of grow.bin after ttl"
assert_num "$(stat_field "$MNT" invalidations)" -ge $((invalidations + 2)) \
	"invalidations after both objects changed"
assert_num "$(stat_field "$MNT" revalidations)" -ge 2 "revalidations"

# The version of grow.bin read above counts as checked for ttl, so its
# deletion shows once both ttl and attr_ttl have passed.
check "deleted object disappears after ttl"
s3 rm data grow.bin
sleep 6.5
if [ -e "$MNT/grow.bin" ]; then
	fail "grow.bin still exists 6.5 s after its deletion (ttl=6s," \
		"attr_ttl=1s)"
fi
log "ok: grow.bin is gone"

unmount_nearfs "$MNT"
