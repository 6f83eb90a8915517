#!/usr/bin/env bash
# test_service.sh - the daemon sends its state to a service manager of
# Type=notify through NOTIFY_SOCKET, as systemd expects: READY=1 once the
# mount is in place, STOPPING=1 at the stop and STATUS= lines in between,
# over a socket path or a name in the abstract namespace.  A socket that
# does not exist costs one warning and nothing else.
. "$(dirname "$0")/../lib.sh"

ORIGIN=$WORK/origin
MNT=$WORK/mnt
mkdir -p "$ORIGIN"
random_file "$ORIGIN/data.bin" 300000

check "READY=1 over a socket path once mounted"
OUT=$WORK/notify-path.txt
listen_datagrams "$WORK/notify.sock" "$OUT"
NEARFS_ENV=(NOTIFY_SOCKET="$WORK/notify.sock")
mount_nearfs "$ORIGIN" "$MNT" "cache_dir=$WORK/cache"
wait_for_line "$OUT" "^READY=1$"
assert_eq "$(sha256 "$ORIGIN/data.bin")" "$(sha256 "$MNT/data.bin")" \
	"sha256 of data.bin read after READY=1"
grep -qxF "STATUS=mounted $ORIGIN on $MNT" "$OUT" ||
	fail "no 'STATUS=mounted $ORIGIN on $MNT' line; received:" \
		"$(cat "$OUT")"
log "ok: the status line names the origin and the mount point"
assert_eq 0 "$(grep -c '^STOPPING=1$' "$OUT" || true)" \
	"STOPPING=1 messages while mounted"

check "STOPPING=1 at the unmount"
unmount_nearfs "$MNT"
wait_for_line "$OUT" "^STOPPING=1$"
assert_eq 1 "$(grep -c '^READY=1$' "$OUT")" "READY=1 messages in all"

check "abstract socket: the upload at SIGTERM is in the status"
OUT=$WORK/notify-abstract.txt
name="@nearfs-test-$$-$RANDOM"
listen_datagrams "$name" "$OUT"
NEARFS_ENV=(NOTIFY_SOCKET="$name")
mount_nearfs "$ORIGIN" "$MNT" \
	"cache_dir=$WORK/cache,write_mode=back,writeback_delay=60s"
wait_for_line "$OUT" "^READY=1$"
random_file "$WORK/new.bin" 200000
cp "$WORK/new.bin" "$MNT/new.bin"
[ ! -e "$ORIGIN/new.bin" ] ||
	fail "new.bin reached the origin before the stop, within" \
		"writeback_delay=60s"
signal_nearfs "$MNT" TERM
wait_for_line "$OUT" "^STOPPING=1$"
grep -q '^STATUS=uploading 1 file (.*) before exit$' "$OUT" ||
	fail "no 'STATUS=uploading 1 file' line; received: $(cat "$OUT")"
log "ok: the status line reported the upload before exit"
assert_same_file "$WORK/new.bin" "$ORIGIN/new.bin" \
	"new.bin on the origin after SIGTERM"

check "a file still open for writing at SIGTERM reaches the origin"
NEARFS_ENV=()
mount_nearfs "$ORIGIN" "$MNT" \
	"cache_dir=$WORK/cache,write_mode=back,writeback_delay=60s"
random_file "$WORK/open.bin" 150000
# The writer keeps its descriptor until the daemon has exited, so the
# kernel never sends the RELEASE of that handle.
python3 - "$WORK/open.bin" "$MNT/open.bin" "$WORK/written" <<'PY' &
import os, sys, time
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, data)
open(sys.argv[3], "w").close()
time.sleep(30)
PY
writer=$!
CLEANUP_PIDS+=("$writer")
for i in $(seq 100); do
	[ -e "$WORK/written" ] && break
	sleep 0.1
done
[ -e "$WORK/written" ] || fail "the writer did not write open.bin"
signal_nearfs "$MNT" TERM
kill "$writer" 2>/dev/null || true
assert_same_file "$WORK/open.bin" "$ORIGIN/open.bin" \
	"open.bin on the origin after SIGTERM"

check "a missing notify socket: one warning, the mount works"
NEARFS_ENV=(NOTIFY_SOCKET="$WORK/missing.sock")
mount_nearfs "$ORIGIN" "$MNT" "cache_dir=$WORK/cache"
assert_eq "$(sha256 "$ORIGIN/data.bin")" "$(sha256 "$MNT/data.bin")" \
	"sha256 of data.bin without a notify socket"
unmount_nearfs "$MNT"
assert_eq 1 "$(grep -c "cannot notify the service manager at NOTIFY_SOCKET=$WORK/missing.sock" \
	"${NEARFS_LOG[$MNT]}")" "warnings about the missing notify socket"
