#!/usr/bin/env bash
# test_leftovers.sh - what an upload killed with SIGKILL leaves at the
# origin is removed at the next start with the same cache_dir.  Until its
# last step, an upload to a directory origin has a temporary file
# .nearfs-tmp-XXXXXX beside the target, and one to S3 above the part size
# has an unfinished multipart upload.  The daemon records each in the
# folder leftovers/ of its cache folder while the write runs.  The next
# start unlinks the file or aborts the upload in a thread of its own and
# logs "left by an interrupted upload" at info level.  An abort that
# fails is logged as a warning and tried again at the start after.  The
# write-back journal then uploads the file again.
. "$(dirname "$0")/../lib.sh"

MNT=$WORK/mnt
LEFT_BY="left by an interrupted upload"

# leftover_folders CACHE_DIR: the leftovers/ folders of the origin
# folders in CACHE_DIR, one a line.
leftover_folders() {
	find "$1" -mindepth 2 -maxdepth 2 -type d -name leftovers
}

# assert_leftover_entries CACHE_DIR COUNT WHEN: CACHE_DIR has one
# leftovers/ folder, and it contains COUNT entries.
assert_leftover_entries() {
	local cache=$1 count=$2 when=$3 folders
	folders=$(leftover_folders "$cache")
	assert_eq 1 "$(count_lines "$folders")" \
		"leftovers/ folders in the cache $when"
	assert_eq "$count" "$(find "$folders" -mindepth 1 | wc -l)" \
		"entries in leftovers/ $when"
}

# assert_verify_lists CACHE_DIR TEXT: nearfs-ctl verify of CACHE_DIR exits
# 0 and lists one leftover, described by TEXT.
assert_verify_lists() {
	local out status=0
	out=$("$NEARFS_CTL" verify "$1" 2>&1) || status=$?
	printf '%s\n' "$out" >"$WORK/verify.out"
	assert_eq 0 "$status" \
		"exit status of nearfs-ctl verify (output: $WORK/verify.out)"
	assert_eq 1 "$(printf '%s\n' "$out" | grep -c '^leftover: ')" \
		"leftover lines of nearfs-ctl verify"
	assert_contains "$out" "$2" "the output of nearfs-ctl verify"
	assert_contains "$out" "; 1 leftovers at the origin" \
		"the output of nearfs-ctl verify"
}

# info_lines MNT TEXT: the info lines of the daemon log of MNT that
# contain TEXT.
info_lines() {
	grep -F "nearfs: info: " "${NEARFS_LOG[$1]}" | grep -F -- "$2" || true
}

# count_lines TEXT: the count of non-empty lines in TEXT.
count_lines() {
	printf '%s' "$1" | grep -c . || true
}

# ---- directory origin

# reap_killed_nearfs MNT: reap the daemon of MNT, which another process
# killed with SIGKILL, and unmount the dead mount.
reap_killed_nearfs() {
	local mnt=$1 pid=${NEARFS_PID[$1]}
	wait "$pid" 2>/dev/null || true
	unset "NEARFS_PID[$mnt]"
	fusermount3 -u "$mnt" || fail "fusermount3 -u of the dead mount $mnt"
	log "the daemon (pid $pid) got SIGKILL; unmounted $mnt"
}

# kill_at_temporary_file FOLDER NAME SIZE PID OUT: in the background,
# list FOLDER every millisecond.  Once a .nearfs-tmp-* entry is there,
# SIGKILL process PID and write "caught ENTRY" to OUT.  Write "finished"
# when NAME has SIZE bytes first, and "timeout" after 300 s.
kill_at_temporary_file() {
	python3 - "$@" <<'PY' &
import os, signal, sys, time
folder, name, size, pid, out = sys.argv[1:6]
result = "timeout"
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    names = os.listdir(folder)
    temporary = [n for n in names if n.startswith(".nearfs-tmp-")]
    if temporary:
        os.kill(int(pid), signal.SIGKILL)
        result = "caught " + temporary[0]
        break
    if name in names and \
            os.stat(os.path.join(folder, name)).st_size == int(size):
        result = "finished"
        break
    time.sleep(0.001)
with open(out, "w") as f:
    f.write(result + "\n")
PY
	CLEANUP_PIDS+=("$!")
	WATCHER=$!
}

# Copying 512 MiB into the temporary file and its fsync took about 0.4 s
# on an ext4 disk of a VM, so polling every millisecond finds the file.
REF=$WORK/big.bin
random_file "$REF" $(mib 512)

check "dir: SIGKILL while the temporary file of an upload exists"
# An attempt whose upload ends before the watcher finds the temporary
# file, or whose rename comes before the kill, is repeated in new
# folders.
CAUGHT=
for attempt in 1 2 3; do
	ORIGIN=$WORK/origin-$attempt
	CACHE=$WORK/cache-dir-$attempt
	DIR_OPTS="cache_dir=$CACHE,write_mode=back,writeback_delay=100ms"
	mkdir -p "$ORIGIN/sub"
	mount_nearfs "$ORIGIN" "$MNT" "$DIR_OPTS"
	kill_at_temporary_file "$ORIGIN/sub" big.bin "$(stat -c %s "$REF")" \
		"${NEARFS_PID[$MNT]}" "$WORK/watch-$attempt"
	write_file "$REF" "$MNT/sub/big.bin" ||
		fail "writing sub/big.bin through the mount failed"
	wait "$WATCHER"
	result=$(cat "$WORK/watch-$attempt")
	case $result in
	"caught "*)
		TMP_NAME=${result#caught }
		reap_killed_nearfs "$MNT"
		if [ -e "$ORIGIN/sub/$TMP_NAME" ]; then
			CAUGHT=$attempt
			break
		fi
		log "attempt $attempt: sub/$TMP_NAME was renamed before" \
			"the kill" ;;
	finished)
		unmount_nearfs "$MNT"
		log "attempt $attempt: the upload ended before its" \
			"temporary file was seen" ;;
	*)
		fail "attempt $attempt: neither a temporary file nor all of" \
			"sub/big.bin appeared in $ORIGIN/sub within 300 s" ;;
	esac
done
[ -n "$CAUGHT" ] ||
	fail "in 3 attempts no upload was killed with its temporary file"
log "ok: attempt $CAUGHT killed the daemon with sub/$TMP_NAME in the origin"
assert_eq "$ORIGIN/sub/$TMP_NAME" \
	"$(find "$ORIGIN" -name '.nearfs-tmp-*')" \
	"temporary files in the origin after the kill"
assert_leftover_entries "$CACHE" 1 "after the kill"
assert_verify_lists "$CACHE" "temporary file sub/$TMP_NAME at the origin"

check "dir: the next start removes the temporary file"
mount_nearfs "$ORIGIN" "$MNT" "$DIR_OPTS"
# A thread removes the leftovers after the mount is ready.
wait_for_line "${NEARFS_LOG[$MNT]}" "$LEFT_BY"
[ ! -e "$ORIGIN/sub/$TMP_NAME" ] ||
	fail "sub/$TMP_NAME is still in the origin after the restart"
log "ok: sub/$TMP_NAME is gone from the origin"
LINES=$(info_lines "$MNT" "$LEFT_BY")
assert_eq 1 "$(count_lines "$LINES")" \
	"info lines with '$LEFT_BY' in the log"
assert_contains "$LINES" "sub/$TMP_NAME" "the info line"

check "dir: the journal uploads the file again"
timeout 120 "$NEARFS_CTL" flush "$MNT" >"$WORK/flush-dir.out" 2>&1 ||
	fail "nearfs-ctl flush failed: $(cat "$WORK/flush-dir.out")"
assert_eq "$(sha256 "$REF")" "$(sha256 "$ORIGIN/sub/big.bin")" \
	"sha256 of sub/big.bin in the origin"
assert_eq "" "$(find "$ORIGIN" -name '.nearfs-tmp-*')" \
	"temporary files in the origin after the flush"
unmount_nearfs "$MNT"
assert_leftover_entries "$CACHE" 0 "after the unmount"

check "dir: a temporary file that cannot be removed keeps its entry"
# In an append-only folder (chattr +a) a file can be created but not
# removed or renamed away, so the store of a.txt fails after its
# temporary file exists, and the file cannot be removed.
ORIGIN=$WORK/origin-append
CACHE=$WORK/cache-append
mkdir -p "$ORIGIN/sub"
if chattr +a "$ORIGIN/sub" 2>/dev/null; then
	mount_nearfs "$ORIGIN" "$MNT" "cache_dir=$CACHE,write_mode=through"
	# A shell redirection would not see the error: the shell closes the
	# file with dup2(2), which ignores it.
	if python3 -c 'import sys
with open(sys.argv[1], "w") as f:
    f.write("hello\n")' "$MNT/sub/a.txt" 2>/dev/null; then
		chattr -a "$ORIGIN/sub"
		fail "a write-through close into an append-only folder succeeded"
	fi
	unmount_nearfs "$MNT"
	TMP_LEFT=$(find "$ORIGIN" -name '.nearfs-tmp-*')
	chattr -a "$ORIGIN/sub"
	assert_eq 1 "$(count_lines "$TMP_LEFT")" \
		"temporary files in the append-only folder"
	assert_leftover_entries "$CACHE" 1 "after the failed removal"
	mount_nearfs "$ORIGIN" "$MNT" "cache_dir=$CACHE,write_mode=through"
	wait_for_line "${NEARFS_LOG[$MNT]}" "$LEFT_BY"
	assert_eq "" "$(find "$ORIGIN" -name '.nearfs-tmp-*')" \
		"temporary files after the next start"
	unmount_nearfs "$MNT"
	assert_leftover_entries "$CACHE" 0 "after the next start"
else
	log "skipped: chattr +a is not supported under $WORK"
fi

# ---- S3 origin

start_s3
s3 mb data
start_fault_proxy
# Above 16 MiB, the part size, a write is a multipart upload: initiate,
# two parts, complete.
MP_REF=$WORK/multipart.bin
random_file "$MP_REF" $(mib 20)

# s3_options CACHE: the mount options of the S3 checks.
s3_options() {
	echo "endpoint=$PROXY_URL,cache_dir=$1,chunk_size=1M,write_mode=back,writeback_delay=100ms"
}

# kill_during_multipart KEY CACHE: write KEY in back mode, hold every
# request after the CreateMultipartUpload of its upload, SIGKILL the
# daemon, and drop the held requests.  Sets UPLOAD_ID to the id of the
# upload that the server then lists for KEY.
kill_during_multipart() {
	local key=$1 cache=$2 uploads
	mount_nearfs s3://data "$MNT" "$(s3_options "$cache")"
	proxy_set '{"hold_after": {"kind": "MULTIPART", "count": 1}}'
	write_file "$MP_REF" "$MNT/$key" ||
		fail "writing $key through the mount failed"
	wait_proxy_holding "after the CreateMultipartUpload of $key"
	kill_nearfs "$MNT"
	# Mode refuse resets the held requests instead of forwarding them.
	proxy_set '{"mode": "refuse"}'
	proxy_set '{}'
	uploads=$(s3 uploads data)
	assert_eq 1 "$(count_lines "$uploads")" \
		"multipart uploads in progress after the kill"
	assert_eq "$key" "${uploads%% *}" "key of the upload in progress"
	UPLOAD_ID=${uploads#* }
	assert_leftover_entries "$cache" 1 "after the kill"
	assert_verify_lists "$cache" "upload $UPLOAD_ID of $key at the origin"
}

check "s3: SIGKILL during a multipart upload leaves it in progress"
CACHE=$WORK/cache-s3
kill_during_multipart killed.bin "$CACHE"
KILLED_ID=$UPLOAD_ID

check "s3: the next start aborts the upload"
mount_nearfs s3://data "$MNT" "$(s3_options "$CACHE")"
wait_for_line "${NEARFS_LOG[$MNT]}" "$LEFT_BY"
# The journal may have started a new upload of killed.bin by now.
assert_eq 0 "$(s3 uploads data | grep -c -F -- "$KILLED_ID" || true)" \
	"uploads with the id $KILLED_ID after the restart"
LINES=$(info_lines "$MNT" "$LEFT_BY")
assert_eq 1 "$(count_lines "$LINES")" \
	"info lines with '$LEFT_BY' in the log"
assert_contains "$LINES" killed.bin "the info line"

check "s3: the journal uploads the file again"
timeout 120 "$NEARFS_CTL" flush "$MNT" >"$WORK/flush-s3.out" 2>&1 ||
	fail "nearfs-ctl flush failed: $(cat "$WORK/flush-s3.out")"
assert_eq "" "$(s3 uploads data)" "multipart uploads after the flush"
assert_eq "$(sha256 "$MP_REF")" "$(object_sha data killed.bin)" \
	"sha256 of object killed.bin"
unmount_nearfs "$MNT"
assert_leftover_entries "$CACHE" 0 "after the unmount"

check "s3: a failed abort is logged and the entry kept"
CACHE=$WORK/cache-s3-abort
kill_during_multipart abort-fails.bin "$CACHE"
KILLED_ID=$UPLOAD_ID
# The abort, a DELETE with ?uploadId=, is of kind MULTIPART, as are the
# requests of the upload that the journal starts.  That upload fails
# until the faults end.  The start-up check is a LIST request.
proxy_set '{"rates": {"error500": 1.0}, "kinds": ["MULTIPART"]}'
mount_nearfs s3://data "$MNT" "$(s3_options "$CACHE")"
wait_for_line "${NEARFS_LOG[$MNT]}" "cannot abort the multipart upload"
assert_num "$(proxy_field faults.error500)" -gt 0 \
	"requests answered with the injected 500"
WARNINGS=$(grep -F "nearfs: warning: " "${NEARFS_LOG[$MNT]}" |
	grep -F -- "$KILLED_ID" || true)
assert_num "$(count_lines "$WARNINGS")" -ge 1 \
	"warnings that name the upload $KILLED_ID"
assert_contains "$WARNINGS" abort-fails.bin "the warning"
assert_eq 0 "$(count_lines "$(info_lines "$MNT" "$LEFT_BY")")" \
	"info lines with '$LEFT_BY' in the log"
assert_eq "abort-fails.bin $KILLED_ID" "$(s3 uploads data)" \
	"multipart uploads after the failed abort"
assert_leftover_entries "$CACHE" 1 "after the failed abort"

check "s3: the upload of the journal succeeds once the faults end"
proxy_set '{}'
timeout 120 "$NEARFS_CTL" flush "$MNT" >"$WORK/flush-abort.out" 2>&1 ||
	fail "nearfs-ctl flush failed: $(cat "$WORK/flush-abort.out")"
assert_eq "$(sha256 "$MP_REF")" "$(object_sha data abort-fails.bin)" \
	"sha256 of object abort-fails.bin"
unmount_nearfs "$MNT"
# The abort is tried again only at a start, so the old upload remains.
assert_eq "abort-fails.bin $KILLED_ID" "$(s3 uploads data)" \
	"multipart uploads after the unmount"

check "s3: the start after aborts the upload"
mount_nearfs s3://data "$MNT" "$(s3_options "$CACHE")"
wait_for_line "${NEARFS_LOG[$MNT]}" "$LEFT_BY"
assert_eq "" "$(s3 uploads data)" "multipart uploads after the restart"
LINES=$(info_lines "$MNT" "$LEFT_BY")
assert_eq 1 "$(count_lines "$LINES")" \
	"info lines with '$LEFT_BY' in the log"
assert_contains "$LINES" abort-fails.bin "the info line"
unmount_nearfs "$MNT"
assert_leftover_entries "$CACHE" 0 "after the unmount"
assert_eq "$(sha256 "$MP_REF")" "$(object_sha data abort-fails.bin)" \
	"sha256 of object abort-fails.bin after the last start"
