#!/usr/bin/env bash
# soak.sh - the long run of the random and concurrent tests (make soak):
# tests/integration/test_fsx.sh with SOAK_OPS operations (default 5000)
# for each of SOAK_SEEDS fixed seeds (default "1 2 3") and one random
# seed, over every origin and write mode, then
# tests/integration/test_concurrent.sh with SOAK_ROUNDS rounds (default
# 100) over both origins in write_mode=through and back
# (SOAK_CONCURRENT_PASSES, as CONCURRENT_PASSES of that test).  Each test prints its seeds; exits 1
# when either failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
ops=${SOAK_OPS:-5000}
seeds=${SOAK_SEEDS:-1 2 3}
rounds=${SOAK_ROUNDS:-100}
passes=${SOAK_CONCURRENT_PASSES:-s3/through s3/back dir/through dir/back}
# The time limit of each of the two tests, in seconds.
limit=${SOAK_TIMEOUT:-7200}
status=0

echo "soak: fsx with $ops operations, seeds $seeds and one random seed"
FSX_OPS=$ops FSX_SEEDS=$seeds NEARFS_TEST_TIMEOUT=$limit \
	bash "$here/integration/test_fsx.sh" || status=1
echo "soak: concurrent readers and writers, $rounds rounds"
CONCURRENT_PASSES=$passes CONCURRENT_ROUNDS=$rounds NEARFS_TEST_TIMEOUT=$limit \
	bash "$here/integration/test_concurrent.sh" || status=1
if [ "$status" -eq 0 ]; then
	echo "soak: PASS"
else
	echo "soak: FAIL"
fi
exit "$status"
