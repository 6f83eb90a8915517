#!/usr/bin/env bash
# test_writeback_unmount.sh - in back mode with writeback_delay=60s the
# daemon uploads every pending file before it exits, whether it stops
# through fusermount3 -u, SIGTERM or SIGINT, and it exits with status 0.
. "$(dirname "$0")/../lib.sh"

MNT=$WORK/mnt

start_s3
s3 mb data

# bucket_sums PREFIX: "sha256 key" for every object below PREFIX/.
bucket_sums() {
	python3 - "$1" <<'PY'
import hashlib, os, sys
import botocore.config, botocore.session
client = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["NEARFS_TEST_ENDPOINT"],
    region_name="us-east-1",
    config=botocore.config.Config(s3={"addressing_style": "path"}))
prefix = sys.argv[1] + "/"
pages = client.get_paginator("list_objects_v2").paginate(
    Bucket="data", Prefix=prefix)
for page in pages:
    for item in page.get("Contents", []):
        body = client.get_object(Bucket="data", Key=item["Key"])["Body"]
        # The format of sha256sum: two spaces between sum and name.
        print("%s  %s" % (hashlib.sha256(body.read()).hexdigest(),
                          item["Key"][len(prefix):]))
PY
}

# write_files DIR: a few files of several sizes, a nested one, and an
# overwrite of a file that the bucket already holds.
write_files() {
	local dir=$1 i
	mkdir -p "$dir/sub"
	for i in 1 2 3 4 5; do
		random_file "$dir/small$i.bin" $((i * 1000 + 7))
	done
	random_file "$dir/big.bin" $(($(mib 6) + 5))
	random_file "$dir/sub/nested.bin" 100000
	echo "new content" >"$dir/existing.txt"
	: >"$dir/empty"
}

# stop_daemon HOW: stop the daemon of MNT by HOW (unmount, TERM or INT)
# and check that it exits with status 0.
stop_daemon() {
	local how=$1
	if [ "$how" = unmount ]; then
		unmount_nearfs "$MNT"
		log "ok: the daemon exited with status 0 after fusermount3 -u"
		return
	fi
	signal_nearfs "$MNT" "$how"
	is_mounted "$MNT" && fail "$MNT is still mounted after SIG$how"
	log "ok: $MNT is no longer mounted"
}

# bash starts background commands with SIGINT ignored, and libfuse
# installs its handler only over the default action, so the SIGINT round
# starts the daemon through a wrapper that restores the default first.
REAL_NEARFS_BIN=$NEARFS_BIN
cat >"$WORK/nearfs-sigint" <<PY
#!/usr/bin/env python3
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv("$REAL_NEARFS_BIN", ["$REAL_NEARFS_BIN"] + sys.argv[1:])
PY
chmod +x "$WORK/nearfs-sigint"

for how in unmount TERM INT; do
	prefix=$how
	NEARFS_BIN=$REAL_NEARFS_BIN
	[ "$how" != INT ] || NEARFS_BIN=$WORK/nearfs-sigint
	ref=$WORK/ref-$how
	write_files "$ref"
	s3 put-bytes data "$prefix/existing.txt" "old content"

	mount_nearfs "s3://data/$prefix" "$MNT" \
		"cache_dir=$WORK/cache-$how,chunk_size=1M,write_mode=back,writeback_delay=60s"
	check "$how: files written in back mode are held back"
	cp -r "$ref/." "$MNT/"
	assert_num "$(stat_field "$MNT" uploads_pending)" -ge 9 \
		"uploads_pending before stopping"
	assert_num "$(stat_field "$MNT" dirty_bytes)" -gt "$(mib 6)" \
		"dirty_bytes before stopping"
	assert_eq "old content" "$(s3 get data "$prefix/existing.txt")" \
		"object $prefix/existing.txt before stopping"

	check "$how: the daemon uploads everything before it exits"
	stop_daemon "$how"
	(cd "$ref" && find . -type f | sed 's|^\./||' | sort |
		xargs sha256sum) | sort -k2 >"$WORK/expected.$how"
	bucket_sums "$prefix" | grep -v '/$' | sort -k2 >"$WORK/actual.$how"
	diff "$WORK/expected.$how" "$WORK/actual.$how" ||
		fail "the bucket under $prefix/ differs from the files written"
	log "ok: the bucket under $prefix/ holds the $(wc -l \
		<"$WORK/expected.$how") files written, byte for byte"
	grep -q "all data uploaded" "${NEARFS_LOG[$MNT]}" ||
		fail "the daemon log does not report 'all data uploaded'"
	log "ok: the daemon log reports 'all data uploaded'"
done

check "a mount on the cache folder of a stopping daemon waits for it"
# The first daemon is unmounted while the PUT of its pending file is
# held, so it still has the lock of the cache folder when the second one
# starts.  Only PUTs are held: the start-up check of the second daemon
# must pass, or it could reach the lock after the first one released it.
NEARFS_BIN=$REAL_NEARFS_BIN
start_fault_proxy
random_file "$WORK/late.bin" 300000
OPTS="endpoint=$PROXY_URL,cache_dir=$WORK/cache-restart,write_mode=back,writeback_delay=60s"
mount_nearfs s3://data/restart "$MNT" "$OPTS"
cp "$WORK/late.bin" "$MNT/late.bin"
FIRST_PID=${NEARFS_PID[$MNT]}
proxy_set '{"hold_after": {"kind": "PUT", "count": 0, "only": true}}'
fusermount3 -u "$MNT" || fail "fusermount3 -u $MNT failed"
wait_proxy_holding "from the upload at exit"
kill -0 "$FIRST_PID" || fail "the first daemon exited with its PUT held"
(sleep 5 && proxy_set '{}') &
RELEASER=$!
mount_nearfs s3://data/restart "$MNT" "$OPTS"
wait "$RELEASER"
wait_pid_gone "$FIRST_PID" "unmounting $MNT"
FIRST_STATUS=0
wait "$FIRST_PID" || FIRST_STATUS=$?
assert_eq 0 "$FIRST_STATUS" "exit status of the first daemon"
grep -q "waiting for nearfs pid $FIRST_PID, which is stopping" \
	"${NEARFS_LOG[$MNT]}" ||
	fail "the second daemon did not log that it waits for $FIRST_PID"
log "ok: the second daemon waited for pid $FIRST_PID"
assert_eq "$(sha256 "$WORK/late.bin")" "$(object_sha data restart/late.bin)" \
	"sha256 of restart/late.bin in the bucket"
assert_eq "$(sha256 "$WORK/late.bin")" "$(sha256 "$MNT/late.bin")" \
	"sha256 of late.bin through the second mount"
unmount_nearfs "$MNT"
