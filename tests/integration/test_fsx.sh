#!/usr/bin/env bash
# test_fsx.sh - tests/tools/fsx.py, random operations compared with a
# reference directory, over each origin (S3 on the test server, a
# directory) in each write mode (through, back, around), with chunk_size
# 64K so that most operations touch a chunk boundary.
#
# Each pass runs FSX_OPS operations (default 300) with the fixed seeds
# FSX_SEEDS (default 1 and 2), and then with a random seed that the log
# prints.  NEARFS_FSX_SEED replaces
# the random seed, to repeat a failed run; fsx.py prints the command that
# repeats one pass alone.
. "$(dirname "$0")/../lib.sh"

FSX=$NEARFS_ROOT/tests/tools/fsx.py
OPS=${FSX_OPS:-300}
FIXED_SEEDS=${FSX_SEEDS:-1 2}
RANDOM_SEED=${NEARFS_FSX_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
# Flags for fsx.py, for example --no-stale-readers to close read-only
# descriptors before each write.  Seed 2 over S3 in write-through mode
# reads through a descriptor opened before a writer.
FSX_FLAGS=${FSX_FLAGS-}
RUN=0

# run_fsx KIND MODE SEED: one fsx.py run on a fresh origin, cache and
# reference.
run_fsx() {
	local kind=$1 mode=$2 seed=$3 origin dir status=0
	RUN=$((RUN + 1))
	dir=$WORK/run$RUN
	mkdir -p "$dir/ref"
	if [ "$kind" = s3 ]; then
		origin=s3://data/run$RUN
	else
		origin=$dir/origin
		mkdir -p "$origin"
	fi
	check "fsx $kind/$mode, seed $seed, $OPS ops"
	python3 "$FSX" --origin "$origin" --mountpoint "$dir/mnt" \
		--ref "$dir/ref" --seed "$seed" --ops "$OPS" \
		--log "$dir/nearfs.log" $FSX_FLAGS \
		--nearfs "$NEARFS_BIN" --ctl "$NEARFS_CTL" \
		--options "$(nearfs_options "$origin" \
			"cache_dir=$dir/cache,chunk_size=64K,write_mode=$mode")" \
		>"$dir/fsx.out" 2>&1 || status=$?
	cat "$dir/fsx.out"
	if [ "$status" -ne 0 ]; then
		echo "----- nearfs log of the run (last 60 lines)" >&2
		tail -n 60 "$dir/nearfs.log" >&2
		fail "fsx.py $kind/$mode seed $seed exited with $status"
	fi
}

start_s3
s3 mb data
log "random seed of this run: $RANDOM_SEED (NEARFS_FSX_SEED=$RANDOM_SEED" \
	"repeats it)"
for kind in s3 dir; do
	for mode in through back around; do
		for seed in $FIXED_SEEDS $RANDOM_SEED; do
			run_fsx "$kind" "$mode" "$seed"
		done
	done
done
