#!/usr/bin/env bash
# test_secrets.sh - no secret key, session token or signature reaches the
# daemon's log, also at log_level=debug, in reads, writes, listings and
# rejected requests.
. "$(dirname "$0")/../lib.sh"

start_s3
s3 mb data
random_file "$WORK/src.bin" "$(mib 3)"
s3 put data big.bin "$WORK/src.bin"
MNT=$WORK/mnt

# assert_clean LOG SECRET...: none of the strings, and no signature, in LOG.
assert_clean() {
	local logfile=$1 secret
	shift
	for secret in "$@"; do
		if grep -qF -- "$secret" "$logfile"; then
			fail "the log $logfile contains the secret '$secret':" \
				"$(grep -F -- "$secret" "$logfile" | head -3)"
		fi
	done
	if grep -qiE 'signature=|x-amz-signature|authorization:' "$logfile"; then
		fail "the log $logfile contains a signature:" \
			"$(grep -iE 'signature=|x-amz-signature|authorization:' \
				"$logfile" | head -3)"
	fi
}

# A proxy in front of the server checks every signature against this
# secret, because the test servers accept any secret.
SECRET=nearfs-log-secret-7f3a9c
KEY_ID=$AWS_ACCESS_KEY_ID
PROXY_PORT=$(free_port)
python3 "$NEARFS_ROOT/tests/tools/sigv4_proxy.py" --port "$PROXY_PORT" \
	--upstream "${NEARFS_TEST_ENDPOINT#http://}" --access-key "$KEY_ID" \
	--secret-key "$SECRET" --stats "$WORK/proxy.json" --reject \
	>"$WORK/proxy.log" 2>&1 &
CLEANUP_PIDS+=("$!")
for i in $(seq 100); do
	http_answers "http://127.0.0.1:$PROXY_PORT/" && break
	sleep 0.1
done
use_test_credentials "$KEY_ID" "$SECRET"
export AWS_SESSION_TOKEN=nearfs-log-session-token-51d2e8
PROXIED=endpoint=http://127.0.0.1:$PROXY_PORT

check "a debug run that reads, writes and lists logs no secret"
mount_nearfs s3://data "$MNT" "$PROXIED,chunk_size=1M,log_level=debug"
assert_same_file "$WORK/src.bin" "$MNT/big.bin" "big.bin read through the mount"
echo "new bytes" >"$MNT/new.txt"
ls -l "$MNT" >/dev/null
rm "$MNT/new.txt"
unmount_nearfs "$MNT"
LOG=${NEARFS_LOG[$MNT]}
assert_contains "$(cat "$LOG")" "s3: GET" "the debug log"
assert_clean "$LOG" "$SECRET" "$AWS_SESSION_TOKEN"

check "a rejected signature logs no secret"
WRONG=nearfs-wrong-secret-3e91b0
LOG=$WORK/rejected.log
mkdir "$WORK/mnt2"
CLEANUP_MOUNTS+=("$WORK/mnt2")
if AWS_SECRET_ACCESS_KEY=$WRONG timeout 60 "$NEARFS_BIN" -f \
	-o "$PROXIED,log_level=debug,cache_dir=$WORK/cache2" \
	s3://data "$WORK/mnt2" >"$LOG" 2>&1; then
	fail "a mount with a wrong secret succeeded: $(cat "$LOG")"
fi
assert_contains "$(cat "$LOG")" "403" "the log of the rejected mount"
assert_clean "$LOG" "$WRONG" "$AWS_SESSION_TOKEN"
