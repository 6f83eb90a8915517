#!/usr/bin/env bash
# test_s3_evict.sh - a cache smaller than the data: bytes_cached and the
# disk usage of cache_dir stay within cache_size while evicting, and every
# read still returns the right content.
. "$(dirname "$0")/../lib.sh"

BUDGET=$(mib 8)
# Room for the index and the folders of cache_dir, beyond the chunk
# budget, in KiB as du prints it.
SLACK_KIB=1024
SRC=$WORK/src
MNT=$WORK/mnt
CACHE=$WORK/cache
SAMPLES=$WORK/samples
mkdir -p "$SRC"
names=(a.bin b.bin c.bin)
for name in "${names[@]}"; do
	random_file "$SRC/$name" "$(mib 6)"
done

start_s3
s3 mb data
for name in "${names[@]}"; do
	s3 put data "$name" "$SRC/$name"
done

mount_nearfs s3://data "$MNT" \
	"cache_dir=$CACHE,cache_size=8M,chunk_size=1M,ttl=1h"
assert_eq "$BUDGET" "$(stat_field "$MNT" cache_size)" "cache_size counter"

# Sample bytes_cached and the disk usage of cache_dir while files are
# read, in the background, one "bytes_cached du_kib" line per sample.
sample_usage() {
	trap - ERR
	set +e
	while :; do
		echo "$(stat_field "$MNT" bytes_cached) \
$(du -sk "$CACHE" | cut -f1)" >>"$SAMPLES"
		sleep 0.05
	done
}
sample_usage 2>/dev/null &
sampler=$!
CLEANUP_PIDS+=("$sampler")

check_budget() {
	local what=$1 cached du_kib
	cached=$(stat_field "$MNT" bytes_cached)
	du_kib=$(du -sk "$CACHE" | cut -f1)
	assert_num "$cached" -le "$BUDGET" "bytes_cached $what"
	assert_num "$du_kib" -le $((BUDGET / 1024 + SLACK_KIB)) \
		"du -sk of cache_dir in KiB $what"
}

for name in "${names[@]}"; do
	check "read $name"
	assert_eq "$(sha256 "$SRC/$name")" "$(sha256 "$MNT/$name")" \
		"sha256 of $name"
	check_budget "after reading $name"
done

check "evictions happened"
assert_num "$(stat_field "$MNT" evictions)" -gt 0 "evictions"
assert_num "$(stat_field "$MNT" chunks_cached)" -le 8 "chunks_cached"

check "reread of an evicted file"
gets=$(stat_field "$MNT" requests.GET)
drop_page_cache "$MNT/a.bin"
assert_eq "$(sha256 "$SRC/a.bin")" "$(sha256 "$MNT/a.bin")" \
	"sha256 of a.bin read again"
assert_num "$(stat_field "$MNT" requests.GET)" -gt "$gets" \
	"requests.GET after rereading the evicted a.bin"
check_budget "after rereading a.bin"

check "budget held in every sample taken during the reads"
stop_pid "$sampler"
count=$(wc -l <"$SAMPLES")
assert_num "$count" -ge 3 "number of samples"
max_cached=$(awk '$1 > m { m = $1 } END { print m + 0 }' "$SAMPLES")
max_du=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$SAMPLES")
assert_num "$max_cached" -le "$BUDGET" "max bytes_cached over $count samples"
assert_num "$max_du" -le $((BUDGET / 1024 + SLACK_KIB)) \
	"max du -sk of cache_dir in KiB over $count samples"

unmount_nearfs "$MNT"
