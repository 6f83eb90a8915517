#!/usr/bin/env bash
# test_kill_rounds.sh - SIGKILL of a write-back daemon at random moments
# while readers and writers run loses no completed write and never shows
# wrong bytes.
#
# Each round mounts the test S3 server in write-back mode with one
# cache_dir for all rounds, and runs three writers and two readers of
# tests/tools/kill_rw.py at once.  The writers write whole versions of
# their files (new files and overwrites, fsynced now and then), replace
# files by rename and unlink them.  The readers read known objects and
# the files of the two rounds before, checking every byte.  After a
# random delay the daemon gets SIGKILL, the dead mount is unmounted, and
# the same cache_dir is mounted again and flushed.  Then, reading the
# bucket directly:
#
# - every file whose close or fsync returned before the kill contains
#   that version, byte for byte, unless a later operation on it was in
#   progress at the kill, which may have taken effect whole;
# - every object is one whole version that a writer wrote;
# - no reader got a wrong byte, and every failed call failed with the
#   error of a dead mount;
# - nearfs-ctl verify accepts the cache folder after the unmount.
#
# KILL_ROUNDS sets the rounds (default 20), NEARFS_SEED the seed of the
# delays, options and writer operations (default: random, printed).
. "$(dirname "$0")/../lib.sh"

TOOL=$NEARFS_ROOT/tests/tools/kill_rw.py
ROUNDS=${KILL_ROUNDS:-20}
SEED=${NEARFS_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
WRITERS=3
READERS=2
MNT=$WORK/mnt
CACHE=$WORK/cache
RANDOM=$SEED

start_s3
s3 mb data
log "seed $SEED (NEARFS_SEED=$SEED NEARFS_TESTS=kill_rounds" \
	"tests/integration/run.sh repeats it)"

# Known objects for the readers, put directly into the bucket.
mkdir -p "$WORK/ro"
: >"$WORK/manifest"
for size in 1 5000 65536 65537 200000; do
	random_file "$WORK/ro/obj-$size" "$size"
	s3 put data "ro/obj-$size" "$WORK/ro/obj-$size"
	echo "$(sha256 "$WORK/ro/obj-$size") $MNT/ro/obj-$size" \
		>>"$WORK/manifest"
done

# wait_workers PID...: wait for the writers and readers to end, which
# they do at their first failed call; fail after 30 s.
wait_workers() {
	local pid i
	for pid in "$@"; do
		for i in $(seq 300); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null &&
			fail "a writer or reader (pid $pid) still runs 30 s" \
				"after the kill"
		wait "$pid" || fail "a writer or reader (pid $pid) failed"
	done
}

# check_readers ROUND: no reader log of ROUND names a wrong read, and
# every reader ended with the error of a dead mount.
check_readers() {
	local round=$1 file
	for file in "$WORK/$round"/reader-*.log; do
		if grep '^wrong' "$file" >&2; then
			fail "$round: a reader read wrong bytes (seed $SEED)"
		fi
		if grep '^error' "$file" | grep -vE '^error (ENOTCONN|ECONNABORTED) ' >&2; then
			fail "$round: a read failed with another error than" \
				"that of a dead mount (seed $SEED)"
		fi
	done
	log "ok: $round: readers got no wrong byte (reads per reader:" \
		"$(grep -ho 'after [0-9]* reads' "$WORK/$round"/reader-*.log |
			cut -d' ' -f2 | paste -sd' '))"
}

# run_verify ROUND WHEN: nearfs-ctl verify of the cache folder must pass.
run_verify() {
	local round=$1 when=$2 out=$WORK/$1/verify-$2.out status=0
	"$NEARFS_CTL" verify "$CACHE" >"$out" 2>&1 || status=$?
	if [ "$status" -ne 0 ]; then
		cat "$out" >&2
		fail "$round: nearfs-ctl verify $when exited with $status" \
			"(seed $SEED)"
	fi
	log "ok: $round: verify $when: $(tail -n 1 "$out")"
}

run_round() {
	local n=$1 round=r$1 delay_ms wb fsync opts pids=() i dirs=() status
	delay_ms=$((50 + RANDOM % 1500))
	wb=$(echo "0 200ms 1s" | cut -d' ' -f$((RANDOM % 3 + 1)))
	fsync=$(echo "origin local" | cut -d' ' -f$((RANDOM % 2 + 1)))
	opts="cache_dir=$CACHE,chunk_size=64K,write_mode=back"
	opts="$opts,writeback_delay=$wb,fsync=$fsync,ttl=1s"
	check "$round: SIGKILL after $delay_ms ms (writeback_delay=$wb," \
		"fsync=$fsync)"
	mkdir -p "$WORK/$round"
	mount_nearfs s3://data "$MNT" "$opts"
	mkdir "$MNT/$round"
	for i in $(seq "$WRITERS"); do
		python3 "$TOOL" write "$MNT/$round" --writer "$i" \
			--seed $((SEED * 1000 + n)) \
			--log "$WORK/$round/w$i.log" &
		pids+=("$!")
	done
	[ "$n" -gt 1 ] && dirs+=(--dir "$MNT/r$((n - 1))")
	[ "$n" -gt 2 ] && dirs+=(--dir "$MNT/r$((n - 2))")
	for i in $(seq "$READERS"); do
		python3 "$TOOL" read "$WORK/$round/reader-$i.log" \
			--seed $((SEED * 1000 + n)) \
			--manifest "$WORK/manifest" "${dirs[@]}" &
		pids+=("$!")
	done
	CLEANUP_PIDS+=("${pids[@]}")
	# The delay counts from the first operation of every writer, so that
	# the start of Python is not part of it.
	for i in $(seq "$WRITERS"); do
		wait_for_line "$WORK/$round/w$i.log" '^begin'
	done
	sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"

	kill -9 "${NEARFS_PID[$MNT]}"
	wait "${NEARFS_PID[$MNT]}" 2>/dev/null || true
	unset "NEARFS_PID[$MNT]"
	wait_workers "${pids[@]}"
	fusermount3 -u "$MNT" || fail "fusermount3 -u of the dead mount $MNT"
	log "killed the daemon and unmounted $MNT;" \
		"$(cat "$WORK/$round"/w*.log | grep -c '^end' || true) operations done"
	check_readers "$round"

	mount_nearfs s3://data "$MNT" "$opts"
	"$NEARFS_CTL" flush "$MNT" >"$WORK/$round/flush.out" 2>&1 ||
		fail "$round: nearfs-ctl flush after the restart:" \
			"$(tail -n 3 "$WORK/$round/flush.out")"
	assert_eq 0 "$(stat_field "$MNT" uploads_pending)" \
		"$round: uploads_pending after the flush"
	unmount_nearfs "$MNT"

	status=0
	python3 "$TOOL" check "$WORK/$round"/w*.log --prefix "$round" \
		>"$WORK/$round/check.out" 2>&1 || status=$?
	if [ "$status" -ne 0 ]; then
		cat "$WORK/$round/check.out" >&2
		for i in $(seq "$WRITERS"); do
			echo "--- writer $i, last operations:" >&2
			tail -n 6 "$WORK/$round/w$i.log" >&2
		done
		fail "$round: the bucket does not hold the completed writes" \
			"(seed $SEED)"
	fi
	log "ok: $round: $(tail -n 1 "$WORK/$round/check.out")"
	run_verify "$round" "after the unmount"
}

for n in $(seq "$ROUNDS"); do
	run_round "$n"
done
