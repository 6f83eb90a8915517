#!/usr/bin/env bash
# test_concurrent.sh - tests/tools/concurrent_rw.py on one mount: several
# processes of several threads each rewrite their own byte range of one
# file (ranges that share chunks) and replace whole files by rename,
# and read them back while the others write.  After the run every byte
# is checked on the mount, again after a remount with the same cache,
# and in the origin.
#
# Each pass also runs tests/tools/replace_race.py: six threads replace
# one file by rename and read it back whole; and concurrent_rw.py
# neighbours: eight threads rewrite neighbouring ranges of one file,
# which share pages, and read back their own, while a ninth opens,
# fsyncs and closes the file for writing.
#
# CONCURRENT_PASSES lists the passes as ORIGIN/MODE, with ORIGIN s3 or
# dir and MODE a write mode (default "s3/through s3/back dir/through
# dir/back").  NEIGHBOUR_PASSES lists passes that run only the
# neighbours and replace_race.py (default "s3/around dir/around", about
# 40 s together on 2 CPUs, where the full passes take about 60 s).
# Either list set empty runs no such pass.
# CONCURRENT_ROUNDS sets the rounds per writer (default 15),
# NEIGHBOUR_ROUNDS those of the neighbours (default 2000), and
# NEARFS_CONCURRENT_SEED the seed (default: random, printed).
. "$(dirname "$0")/../lib.sh"

TOOL=$NEARFS_ROOT/tests/tools/concurrent_rw.py
RACE=$NEARFS_ROOT/tests/tools/replace_race.py
ROUNDS=${CONCURRENT_ROUNDS:-15}
NEIGHBOUR_ROUNDS=${NEIGHBOUR_ROUNDS:-2000}
SEED=${NEARFS_CONCURRENT_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
ARGS=(--seed "$SEED" --processes 3 --threads 3 --rounds "$ROUNDS"
	--chunk 64K)

# tool COMMAND DIR: run concurrent_rw.py; fail with its output.
tool() {
	local out=$WORK/tool.out
	python3 "$TOOL" "$1" "$2" "${ARGS[@]}" >"$out" 2>&1 || {
		cat "$out" >&2
		fail "concurrent_rw.py $1 $2 failed (seed $SEED):" \
			"$(grep -m 3 'concurrent: seed' "$out" | tr '\n' ' ')"
	}
	log "ok: $(tail -n 1 "$out")"
}

# fetch_prefix PREFIX DIR: copy every object below PREFIX/ into DIR,
# except directory markers (keys ending in /).
fetch_prefix() {
	local size key
	mkdir -p "$2"
	s3 ls data "$1/" >"$WORK/keys"
	while read -r size key; do
		case $key in
		*/) continue ;;
		esac
		s3 get data "$key" >"$2/${key#"$1"/}"
	done <"$WORK/keys"
}

# pass_options KIND MODE: the mount options of a pass.
pass_options() {
	local opts="cache_dir=$WORK/cache-$1-$2,chunk_size=64K"
	echo "$opts,write_mode=$2,writeback_delay=1s"
}

# check_neighbours KIND MODE DIR: run concurrent_rw.py neighbours in DIR
# on the mount of the pass.
check_neighbours() {
	check "$1/$2: writers of neighbouring ranges read their own bytes"
	# Each write shares pages with two others: a page cache dropped
	# while a WRITE is on its way must not bring back older bytes.  The
	# fsyncs and closes of a ninth thread commit the file while the
	# others write, and upload it in write-back mode.
	python3 "$TOOL" neighbours "$3" --seed "$SEED" --processes 1 \
		--threads 8 --rounds "$NEIGHBOUR_ROUNDS" --chunk 64K \
		--closer 0.05 ||
		fail "concurrent_rw.py neighbours failed (seed $SEED)"
}

# check_replace_race KIND MODE DIR: run replace_race.py in DIR, created
# here, on the mount of the pass.
check_replace_race() {
	check "$1/$2: readers of a file replaced by rename"
	mkdir "$3"
	assert_eq "reads 480, bad 0, errors 0" \
		"$(python3 "$RACE" "$3" --threads 6 --rounds 80 \
			--seed "$SEED")" "replace_race.py reads, seed $SEED"
}

# run_neighbours_pass KIND MODE: a pass with the neighbours and
# replace_race.py only.
run_neighbours_pass() {
	local kind=$1 mode=$2 origin mnt=$WORK/mnt-$1-$2
	origin=$(pass_origin "$kind" "$mode")
	mount_nearfs "$origin" "$mnt" "$(pass_options "$kind" "$mode")"
	mkdir "$mnt/neighbours"
	check_neighbours "$kind" "$mode" "$mnt/neighbours"
	check_replace_race "$kind" "$mode" "$mnt/race"
	unmount_nearfs "$mnt"
}

run_pass() {
	local kind=$1 mode=$2 origin opts mnt=$WORK/mnt-$1-$2
	origin=$(pass_origin "$kind" "$mode")
	opts=$(pass_options "$kind" "$mode")

	check "$kind/$mode: concurrent writers and readers, seed $SEED"
	mount_nearfs "$origin" "$mnt" "$opts"
	mkdir "$mnt/work"
	tool run "$mnt/work"
	tool verify "$mnt/work"

	check_neighbours "$kind" "$mode" "$mnt/work"

	check_replace_race "$kind" "$mode" "$mnt/race"

	check "$kind/$mode: every byte after a remount"
	unmount_nearfs "$mnt"
	mount_nearfs "$origin" "$mnt" "$opts"
	tool verify "$mnt/work"
	unmount_nearfs "$mnt"

	check "$kind/$mode: every byte in the origin"
	if [ "$kind" = s3 ]; then
		fetch_prefix "$mode/work" "$WORK/fetched-$mode"
		tool verify "$WORK/fetched-$mode"
	else
		tool verify "$origin/work"
	fi
}

start_s3
s3 mb data
log "seed $SEED (NEARFS_CONCURRENT_SEED=$SEED repeats it)"
for pass in ${CONCURRENT_PASSES-s3/through s3/back dir/through dir/back}; do
	run_pass "${pass%/*}" "${pass#*/}"
done
for pass in ${NEIGHBOUR_PASSES-s3/around dir/around}; do
	run_neighbours_pass "${pass%/*}" "${pass#*/}"
done
