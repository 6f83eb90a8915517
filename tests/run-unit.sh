#!/usr/bin/env bash
# run-unit.sh - run each unit test binary given, print its output, and
# finish with "N passed, N failed" counted in binaries.
#
#   tests/run-unit.sh build/test_options build/test_cache ...
#
# Exits 1 when any binary failed, 2 when none was given (make unit names
# them all), 0 otherwise.
# Each binary runs under `timeout`, so a hang counts as a failure;
# NEARFS_UNIT_TIMEOUT sets the limit in seconds (default 300).
set -uo pipefail

if [ "$#" -eq 0 ]; then
	echo "run-unit.sh: no test binary given: run make unit, or name" \
		"the binaries, e.g. tests/run-unit.sh build/test_cache" >&2
	exit 2
fi

limit=${NEARFS_UNIT_TIMEOUT:-300}
passed=0
failed=0
failed_names=()

for bin in "$@"; do
	name=$(basename "$bin")
	echo "=== $name"
	if [ ! -x "$bin" ]; then
		echo "FAIL $name: $bin is missing or not executable"
		failed=$((failed + 1))
		failed_names+=("$name")
		continue
	fi
	timeout -k 10 "$limit" "$bin"
	status=$?
	if [ "$status" -eq 0 ]; then
		echo "PASS $name"
		passed=$((passed + 1))
		continue
	fi
	if [ "$status" -eq 124 ]; then
		echo "FAIL $name: timed out after ${limit}s"
	else
		echo "FAIL $name: exit status $status"
	fi
	failed=$((failed + 1))
	failed_names+=("$name")
done

if [ "$failed" -gt 0 ]; then
	echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
