#!/usr/bin/env bash
# run.sh - run the nearfs integration tests: every
# tests/integration/test_*.sh, each under `timeout 600`.
#
#   tests/integration/run.sh
#   NEARFS_TESTS='s3_read|dir' tests/integration/run.sh
#
# NEARFS_TESTS is an extended regular expression matched against the test
# names (test_s3_read, ...).  Prints PASS, FAIL or SKIP per test and the
# log of each failure.  Because a long log may be cut, it then repeats
# the first FAIL line of each failure and ends with "N passed, N
# failed".  Exits 1 when a test failed.  A test that exits 77 is skipped
# (counted apart).  Needs
# build/nearfs, /dev/fuse and permission to mount (root, or a user
# allowed to use fusermount3).  NEARFS_BUILD=build-asan tests the
# programs of another build folder.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
limit=${NEARFS_TEST_TIMEOUT:-600}
pattern=${NEARFS_TESTS:-}
logdir=$(mktemp -d "${TMPDIR:-/tmp}/nearfs-integration.XXXXXX")

# The build folder under test, as in tests/lib.sh.
build=${NEARFS_BUILD:-build}
case $build in
/*) ;;
*) build=$root/$build ;;
esac
if [ ! -x "$build/nearfs" ] || [ ! -x "$build/nearfs-ctl" ]; then
	echo "run.sh: $build/nearfs or $build/nearfs-ctl is missing: run" \
		"make" >&2
	exit 1
fi
if [ ! -c /dev/fuse ]; then
	echo "run.sh: /dev/fuse is missing, so nothing can be mounted:" \
		"load the fuse module or give the container --device" \
		"/dev/fuse" >&2
	exit 1
fi

passed=0
failed=0
skipped=0
failed_names=()
failed_lines=()

run_one() {
	local test=$1 name start status log
	name=$(basename "$test" .sh)
	log=$logdir/$name.log
	start=$(date +%s)
	NEARFS_UNDER_TIMEOUT=1 timeout -k 10 "$limit" bash "$test" \
		>"$log" 2>&1
	status=$?
	local took=$(($(date +%s) - start))
	case $status in
	0)
		echo "PASS $name (${took}s)"
		passed=$((passed + 1)) ;;
	77)
		echo "SKIP $name: $(tail -n 1 "$log")"
		skipped=$((skipped + 1)) ;;
	*)
		if [ "$status" -eq 124 ]; then
			echo "FAIL $name: timed out after ${limit}s"
		else
			echo "FAIL $name: exit status $status (${took}s)"
		fi
		sed 's/^/    /' "$log"
		failed=$((failed + 1))
		failed_names+=("$name")
		failed_lines+=("$name: $(grep -m 1 'FAIL:' "$log" ||
			tail -n 1 "$log")") ;;
	esac
}

for test in "$here"/test_*.sh; do
	[ -e "$test" ] || continue
	name=$(basename "$test" .sh)
	if [ -n "$pattern" ] && ! [[ $name =~ $pattern ]]; then
		continue
	fi
	run_one "$test"
done

rm -rf "$logdir"
if [ "$skipped" -gt 0 ]; then
	echo "$skipped skipped"
fi
if [ "$failed" -gt 0 ]; then
	echo "failed: ${failed_names[*]}"
	printf '  %s\n' "${failed_lines[@]}"
fi
# What a failure may depend on, where a CI log keeps only its last lines.
tmp=${TMPDIR:-/tmp}
echo "on $(uname -sr), $(nproc) CPUs, $(df -h --output=avail "$tmp" |
	tail -n 1 | tr -d ' ') free in $tmp"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
