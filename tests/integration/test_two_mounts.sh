#!/usr/bin/env bash
# test_two_mounts.sh - two mounts of one origin with separate caches, as
# two machines would have.  A change made through mount A (new file,
# overwrite, rewrite with appended bytes, truncate, rename, delete) shows
# on mount B once B's ttl, attr_ttl, neg_ttl and dir_ttl (1 s each) have
# passed.  B never reads anything but the old or the new content.
# Then A writes whole versions of one file in a loop, each once a reader
# on B has read the one before, while readers on B read it, one of them
# through a descriptor held open across the changes: every read must be
# one whole version.
#
# Passes, ORIGIN/MODE: s3/through, s3/back (A flushes after each change),
# dir/through and dir/back (two mounts of one directory).
# TWO_MOUNTS_PASSES chooses a subset.  B's deadline for each change is DEADLINE
# seconds (default 20): a bound on failure, not a timing check.
. "$(dirname "$0")/../lib.sh"

TOOL=$NEARFS_ROOT/tests/tools/versions_rw.py
DEADLINE=${DEADLINE:-20}
VERSIONS=6
REF=$WORK/ref
mkdir -p "$REF"

random_file "$REF/v1" 100000
random_file "$REF/v2" 150000
cat "$REF/v2" >"$REF/v3"
head -c 5000 /dev/urandom >>"$REF/v3"
head -c 70000 "$REF/v3" >"$REF/v4"

# content_of PATH: the sha256 of PATH, or "missing" when it does not
# exist, or "error: ..." when the read fails otherwise.
content_of() {
	local out
	if out=$(sha256sum "$1" 2>&1); then
		echo "${out%% *}"
	elif [[ $out == *"No such file or directory"* ]]; then
		echo missing
	else
		echo "error: $out"
	fi
}

# name_of SHA: the reference version whose sha256 is SHA, or SHA itself.
name_of() {
	local v
	for v in v1 v2 v3 v4; do
		[ "$(sha256 "$REF/$v")" = "$1" ] && {
			echo "$v"
			return
		}
	done
	echo "$1"
}

# await_b PATH EXPECTED OLD: poll PATH on mount B until its content is
# EXPECTED (a reference version or "missing").  Every read before must
# be OLD, so B never shows anything else on the way.
await_b() {
	local path=$1 expected=$2 old=$3 want was got polls=0 end
	want=$expected
	[ "$want" = missing ] || want=$(sha256 "$REF/$expected")
	was=$old
	[ "$was" = missing ] || was=$(sha256 "$REF/$old")
	end=$(($(date +%s) + DEADLINE))
	while :; do
		got=$(content_of "$path")
		polls=$((polls + 1))
		[ "$got" = "$want" ] && break
		[ "$got" = "$was" ] ||
			fail "$PASS: read $polls of ${path#"$WORK"/} on B is" \
				"$(name_of "$got"), neither $old nor $expected"
		[ "$(date +%s)" -le "$end" ] ||
			fail "$PASS: ${path#"$WORK"/} on B is still $old" \
				"$DEADLINE s after the change through A"
		sleep 0.2
	done
	log "ok: $PASS: ${path#"$WORK"/} on B is $expected after $polls reads"
}

# await_listing DIR EXPECTED: poll the listing of DIR on mount B until it
# is EXPECTED (names separated by spaces, sorted).
await_listing() {
	local dir=$1 expected=$2 got end
	end=$(($(date +%s) + DEADLINE))
	while :; do
		got=$(ls "$dir" | tr '\n' ' ' | sed 's/ $//')
		[ "$got" = "$expected" ] && break
		[ "$(date +%s)" -le "$end" ] ||
			fail "$PASS: listing of ${dir#"$WORK"/} on B is '$got'" \
				"$DEADLINE s after the change, expected '$expected'"
		sleep 0.2
	done
	log "ok: $PASS: listing of ${dir#"$WORK"/} on B is '$expected'"
}

# sync_a: make the change through A reach the origin (write-back: flush).
sync_a() {
	if [ "$MODE" = back ]; then
		"$NEARFS_CTL" flush "$MNT_A" >/dev/null
	fi
}

run_pass() {
	local kind=$1 origin opts status=0 writer reader held
	MODE=$2
	PASS=$kind/$MODE
	MNT_A=$WORK/a-$kind-$MODE
	MNT_B=$WORK/b-$kind-$MODE
	origin=$(pass_origin "$kind" "$MODE")
	opts="chunk_size=64K,ttl=1s,attr_ttl=1s,neg_ttl=1s,dir_ttl=1s"
	opts="$opts,write_mode=$MODE,writeback_delay=0"
	mount_nearfs "$origin" "$MNT_A" "cache_dir=$WORK/cache-a-$PASS,$opts"
	mount_nearfs "$origin" "$MNT_B" "cache_dir=$WORK/cache-b-$PASS,$opts"

	check "$PASS: each change through A shows on B"
	mkdir "$MNT_A/d"
	sync_a
	await_listing "$MNT_B" d
	await_listing "$MNT_B/d" ""
	write_file "$REF/v1" "$MNT_A/d/f.bin"
	sync_a
	await_b "$MNT_B/d/f.bin" v1 missing
	write_file "$REF/v2" "$MNT_A/d/f.bin"
	sync_a
	await_b "$MNT_B/d/f.bin" v2 v1
	write_file "$REF/v3" "$MNT_A/d/f.bin"
	sync_a
	await_b "$MNT_B/d/f.bin" v3 v2
	truncate -s 70000 "$MNT_A/d/f.bin"
	sync_a
	await_b "$MNT_B/d/f.bin" v4 v3
	assert_eq 70000 "$(stat -c %s "$MNT_B/d/f.bin")" \
		"$PASS: size of d/f.bin on B after the truncate"
	mv "$MNT_A/d/f.bin" "$MNT_A/d/g.bin"
	sync_a
	await_b "$MNT_B/d/g.bin" v4 missing
	await_b "$MNT_B/d/f.bin" missing v4
	await_listing "$MNT_B/d" g.bin
	rm "$MNT_A/d/g.bin"
	sync_a
	await_b "$MNT_B/d/g.bin" missing v4
	await_listing "$MNT_B/d" ""

	check "$PASS: readers on B see whole versions while A rewrites"
	python3 "$TOOL" write "$MNT_A/d/loop.bin" --versions 1
	sync_a
	await_listing "$MNT_B/d" loop.bin
	python3 "$TOOL" read "$MNT_B/d/loop.bin" --until "$VERSIONS" \
		--timeout 90 --log "$WORK/reader-$kind-$MODE.log" \
		>"$WORK/reader-$kind-$MODE.out" 2>&1 &
	reader=$!
	python3 "$TOOL" read "$MNT_B/d/loop.bin" --until "$VERSIONS" \
		--held --timeout 90 >"$WORK/held-$kind-$MODE.out" 2>&1 &
	held=$!
	CLEANUP_PIDS+=("$reader" "$held")
	local flush_args=()
	[ "$MODE" = back ] && flush_args=(--flush "$MNT_A" --ctl "$NEARFS_CTL")
	python3 "$TOOL" write "$MNT_A/d/loop.bin" --versions "$VERSIONS" \
		--wait-log "$WORK/reader-$kind-$MODE.log" "${flush_args[@]}" \
		>"$WORK/writer-$kind-$MODE.out" 2>&1 &
	writer=$!
	CLEANUP_PIDS+=("$writer")
	if ! wait "$writer"; then
		stop_pid "$reader"
		stop_pid "$held"
		fail "$PASS: the writer on A failed:" \
			"$(cat "$WORK/writer-$kind-$MODE.out"); reader on B:" \
			"$(cat "$WORK/reader-$kind-$MODE.out"); held reader" \
			"on B: $(cat "$WORK/held-$kind-$MODE.out")"
	fi
	wait "$reader" || status=$?
	[ "$status" -eq 0 ] || fail "$PASS: a reader on B:" \
		"$(cat "$WORK/reader-$kind-$MODE.out")"
	log "ok: $PASS: reader on B: $(cat "$WORK/reader-$kind-$MODE.out")"
	wait "$held" || status=$?
	[ "$status" -eq 0 ] || fail "$PASS: a reader on B with a held" \
		"descriptor: $(cat "$WORK/held-$kind-$MODE.out")"
	log "ok: $PASS: held reader on B: $(cat "$WORK/held-$kind-$MODE.out")"
	python3 "$TOOL" check "$MNT_B/d/loop.bin" --version "$VERSIONS" \
		>"$WORK/check.out" 2>&1 ||
		fail "$PASS: $(cat "$WORK/check.out")"
	log "ok: $PASS: $(cat "$WORK/check.out")"

	unmount_nearfs "$MNT_B"
	unmount_nearfs "$MNT_A"
}

start_s3
s3 mb data
for pass in ${TWO_MOUNTS_PASSES:-s3/through s3/back dir/through dir/back}; do
	run_pass "${pass%/*}" "${pass#*/}"
done
