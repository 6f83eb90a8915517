#!/usr/bin/env bash
# run.sh - run each libFuzzer harness given for a bounded time over its
# seed corpus, and finish with "N passed, N failed" counted in harnesses.
#
#   tests/fuzz/run.sh build-fuzz/fuzz_s3_xml build-fuzz/fuzz_options ...
#
# Harness fuzz_NAME reads its seeds from tests/fuzz/corpus/NAME, which it
# never changes, and adds what it finds to build-fuzz/corpus/NAME.  It
# uses tests/fuzz/NAME.dict when present.  FUZZ_SECONDS sets the time of
# each run in seconds (default 30).  A crash, a leak, a timeout or a
# failed property leaves its input in build-fuzz/artifacts/ and makes the
# script exit 1; add that input to the seed corpus and a unit test once
# the product is fixed.
set -uo pipefail

cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-30}
out=build-fuzz
passed=0
failed=0
failed_names=()

mkdir -p "$out/artifacts"
for bin in "$@"; do
	name=$(basename "$bin")
	short=${name#fuzz_}
	seeds=tests/fuzz/corpus/$short
	found=$out/corpus/$short
	args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
		-print_final_stats=1 -artifact_prefix="$out/artifacts/$name-")
	echo "=== $name (${seconds}s)"
	if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
		echo "FAIL $name: $bin or its corpus $seeds is missing"
		failed=$((failed + 1))
		failed_names+=("$name")
		continue
	fi
	[ -f "tests/fuzz/$short.dict" ] &&
		args+=(-dict="tests/fuzz/$short.dict")
	mkdir -p "$found"
	# A run's log is long, so it goes to a file, and only its end is
	# shown on failure.
	log=$out/$name.log
	"$bin" "${args[@]}" "$found" "$seeds" >"$log" 2>&1
	status=$?
	if [ "$status" -eq 0 ]; then
		grep -E '^Done' "$log"
		echo "PASS $name"
		passed=$((passed + 1))
		continue
	fi
	tail -n 60 "$log"
	echo "FAIL $name: exit status $status (log: $log)"
	failed=$((failed + 1))
	failed_names+=("$name")
done

if [ "$failed" -gt 0 ]; then
	echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
