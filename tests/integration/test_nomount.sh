#!/usr/bin/env bash
# test_nomount.sh - nearfs -o nomount: the daemon serves ROOT over its
# control socket, without FUSE, to a client that speaks the path requests
# of fs/preload/protocol.h (tests/tools/nomount_client.py).  It runs over
# S3 in write-through and write-back mode and over a directory.  The
# checks cover stat, list, read-only and writable opens, namespace
# changes and their errno values, the .nomount file, and cat, ls, cp, a
# shell redirection, mv and rm under libnearfs-preload.so.  They also cover
# a second daemon for the same root, a client of another uid, nearfs-ctl,
# SIGTERM with a file still open for writing and uploads pending, and
# the write-back journal across a killed daemon.
# Nothing is mounted, so /dev/fuse is not needed.
NEARFS_NEEDS_FUSE=0
. "$(dirname "$0")/../lib.sh"

CLIENT_PY=$NEARFS_ROOT/tests/tools/nomount_client.py
# open(2) flags of Linux on x86-64 and arm64, in decimal.
O_WRONLY=1
O_RDWR=2
O_CREAT=64
O_EXCL=128
O_TRUNC=512
O_DIRECTORY=65536
# errno values of Linux.
ENOENT=2
EEXIST=17
ENOTDIR=20
EISDIR=21
EINVAL=22
ENOTEMPTY=39
EACCES=13

SRC=$WORK/src
mkdir -p "$SRC"
random_file "$SRC/small.bin" 70000
random_file "$SRC/big.bin" $(($(mib 5) + 333))
random_file "$SRC/huge.bin" $(($(mib 9) + 17))
random_file "$SRC/new.bin" $(($(mib 2) + 4099))
random_file "$SRC/patch.bin" 5000
printf 'keep me\n' >"$SRC/keep.txt"

# ---- helpers

# The folders where the daemon may put its control socket.
socket_dirs() {
	echo /run/nearfs
	[ -z "${XDG_RUNTIME_DIR:-}" ] || echo "$XDG_RUNTIME_DIR/nearfs"
	echo "/tmp/nearfs-$(id -u)"
}

# start_nomount ORIGIN ROOT OPTS: run nearfs -f -o nomount in the
# background, under `env "${NEARFS_ENV[@]}"`, and wait for its .nomount
# file.  Sets NM_PID, NM_SOCK, NM_FILE, NM_LOG and NM_ROOT.
start_nomount() {
	local origin=$1 root=$2 opts dir i
	opts=$(nearfs_options "$origin" "nomount,${3:-}")
	NM_LOG=$WORK/nearfs-nomount-$RANDOM.log
	NM_ROOT=${root%/}
	log "start: nearfs -f -o $opts $origin $root"
	env "${NEARFS_ENV[@]}" "$NEARFS_BIN" -f -o "$opts" "$origin" "$root" \
		>"$NM_LOG" 2>&1 &
	NM_PID=$!
	CLEANUP_PIDS+=("$NM_PID")
	for i in $(seq 200); do
		for dir in $(socket_dirs); do
			if [ -e "$dir/$NM_PID.nomount" ]; then
				NM_FILE=$dir/$NM_PID.nomount
				NM_SOCK=$dir/$NM_PID.sock
				return 0
			fi
		done
		kill -0 "$NM_PID" 2>/dev/null ||
			fail "nearfs exited before serving $root: $(cat "$NM_LOG")"
		sleep 0.1
	done
	fail "nearfs wrote no .nomount file within 20 s: $(cat "$NM_LOG")"
}

# stop_nomount: SIGTERM, then wait for the exit; fails unless the status
# is 0 and the log names the signal that stopped the daemon.
stop_nomount() {
	local status=0
	kill -TERM "$NM_PID"
	wait_pid_gone "$NM_PID" SIGTERM
	wait "$NM_PID" || status=$?
	assert_eq 0 "$status" "exit status after SIGTERM"
	assert_contains "$(cat "$NM_LOG")" \
		"stopped on SIGTERM: $NM_ROOT is no longer served" "daemon log"
}

client() {
	python3 "$CLIENT_PY" "$NM_SOCK" "$@"
}

# read_sha PATH: the SHA-256 of a read-only path-open of PATH; fails
# unless the reply is "ok SIZE" and the descriptor is read-only.
read_sha() {
	local out
	out=$(client read "$1")
	assert_contains "$(sed -n 1p <<<"$out")" "ok " "reply to read $1" >&2
	assert_contains "$(sed -n 2p <<<"$out")" "access ro" \
		"descriptor of $1" >&2
	sed -n 2p <<<"$out" | awk '{ print $2 }'
}

# write_file PATH FLAGS MODE FILE [OPTION...]: a writable path-open; fails
# unless the open and the close reply ok.
write_file() {
	local out
	out=$(client write "$@")
	assert_contains "$(sed -n 1p <<<"$out")" "ok " "reply to open $1" >&2
	assert_eq "close ok" "$(tail -n 1 <<<"$out")" "reply to close $1" >&2
}

bucket_sha() {
	s3 get "$1" "$2" | sha256sum | cut -d' ' -f1
}

# expect_err ERRNO WHAT LINE: the reply to a raw request LINE must be
# "err ERRNO".
expect_err() {
	assert_eq "err $1" "$(client raw "$3")" "$2"
}

# ---- S3, write-through

start_s3
s3 mb data
s3 put data small.bin "$SRC/small.bin"
s3 put data dir/big.bin "$SRC/big.bin"
s3 put data dir/keep.txt "$SRC/keep.txt"
s3 put data huge.bin "$SRC/huge.bin"

ROOT=$WORK/not/there/root
check "the daemon serves a root that does not exist and publishes it"
listen_datagrams "$WORK/notify.sock" "$WORK/notify.log"
NEARFS_ENV=(NOTIFY_SOCKET="$WORK/notify.sock")
METRICS_PORT=$(free_port)
start_nomount s3://data "$ROOT/" \
	"chunk_size=1M,cache_size=8M,readahead=0,metrics=127.0.0.1:$METRICS_PORT"
NEARFS_ENV=()
[ ! -e "$WORK/not" ] || fail "the daemon created $WORK/not"
wait_for_line "$WORK/notify.log" "^READY=1"
assert_contains "$(cat "$WORK/notify.log")" \
	"STATUS=serving s3://data at $ROOT without FUSE" \
	"state sent to the service manager"
assert_eq "$ROOT" "$(cat "$NM_FILE")" "content of $NM_FILE"
assert_eq 600 "$(stat -c %a "$NM_SOCK")" "mode of the control socket"
assert_eq "mountpoint: $ROOT" \
	"$("$NEARFS_CTL" stats "$ROOT" | grep '^mountpoint:')" \
	"nearfs-ctl stats of the root"
assert_eq "pid: $NM_PID" \
	"$("$NEARFS_CTL" stats "$ROOT/dir/big.bin" | grep '^pid:')" \
	"nearfs-ctl stats of a path below the root"
assert_contains "$(curl -sS "http://127.0.0.1:$METRICS_PORT/metrics")" \
	"mountpoint=\"$ROOT\"" "metrics served over HTTP"

check "a second daemon for the same root is rejected"
status=0
out=$("$NEARFS_BIN" -f -o "$(nearfs_options s3://data \
	"nomount,cache_dir=$WORK/cache-second")" s3://data "$ROOT" 2>&1) ||
	status=$?
assert_eq 4 "$status" "exit status of the second daemon"
assert_contains "$out" "is served already by nearfs pid $NM_PID" \
	"message of the second daemon"

check "path-stat shows the attributes a mount would show"
read -r ok mode uid gid size sec nsec nlink <<<"$(client stat /)"
assert_eq "ok" "$ok" "reply to stat /"
assert_eq 40755 "$(printf '%o' "$mode")" "mode of the root"
assert_eq "$(id -u) $(id -g)" "$uid $gid" "owner of the root"
read -r ok mode uid gid size sec nsec nlink <<<"$(client stat /small.bin)"
assert_eq "ok 100644 70000 1" "$ok $(printf '%o' "$mode") $size $nlink" \
	"stat of small.bin"
assert_eq "err $ENOENT" "$(client stat /missing.bin)" "stat of a missing file"
assert_eq "err $ENOTDIR" "$(client stat /small.bin/x)" \
	"stat below a regular file"
assert_eq "ok" "$(client stat /dir/../small.bin | cut -d' ' -f1)" \
	"stat through '..'"
assert_eq "err $EINVAL" "$(client raw "path-stat /..")" "stat above the root"

check "path-list lists names with their attributes"
out=$(client list /)
assert_eq "ok" "$(sed -n 1p <<<"$out")" "first line of the listing"
assert_eq "end" "$(tail -n 1 <<<"$out")" "last line of the listing"
assert_eq "33188 70000 small.bin" \
	"$(awk '$5 == "small.bin" { print $1, $2, $5 }' <<<"$out")" \
	"listing entry of small.bin"
assert_eq "16877 dir" "$(awk '$5 == "dir" { print $1, $5 }' <<<"$out")" \
	"listing entry of dir"
assert_eq 5 "$(wc -l <<<"$out")" "lines of the listing of /"
assert_eq "err $ENOTDIR" "$(client list /small.bin)" "list of a file"
assert_eq "err $ENOENT" "$(client list /nodir)" "list of a missing folder"

check "a read-only open lends the complete local copy"
assert_eq "$(sha256 "$SRC/big.bin")" "$(read_sha /dir/big.bin)" \
	"sha256 of the lent dir/big.bin"
assert_eq 1 "$(stat_field "$ROOT" lends)" "lends after the first open"
assert_eq "$(sha256 "$SRC/small.bin")" "$(read_sha /small.bin)" \
	"sha256 of the lent small.bin"
assert_eq 2 "$(stat_field "$ROOT" lends)" "lends after the second open"
# huge.bin does not fit in cache_size=8M: it comes as a private copy.
out=$(client read /huge.bin)
assert_eq "ok $(stat -c %s "$SRC/huge.bin")" "$(sed -n 1p <<<"$out")" \
	"reply to the open of huge.bin"
assert_eq "$(sha256 "$SRC/huge.bin") access ro links 0" \
	"$(sed -n 2p <<<"$out" | cut -d' ' -f2-)" "copy of huge.bin"
expect_err "$EISDIR" "read-only open of a folder" "path-open /dir 0 0"
expect_err "$ENOTDIR" "open with O_DIRECTORY of a file" \
	"path-open /small.bin $O_DIRECTORY 0"
expect_err "$ENOENT" "open of a missing file" "path-open /missing 0 0"

check "a created file reaches the bucket before close replies"
write_file /dir/new.bin $((O_WRONLY | O_CREAT | O_TRUNC)) 416 "$SRC/new.bin"
assert_eq "$(sha256 "$SRC/new.bin")" "$(bucket_sha data dir/new.bin)" \
	"sha256 of dir/new.bin in the bucket"
read -r ok mode _ <<<"$(client stat /dir/new.bin)"
assert_eq 100640 "$(printf '%o' "$mode")" "mode of the created file"
assert_eq "$(sha256 "$SRC/new.bin")" "$(read_sha /dir/new.bin)" \
	"sha256 of dir/new.bin read back"

check "writes into an existing object, a truncation and an fsync"
cp "$SRC/small.bin" "$WORK/want.bin"
dd if="$SRC/patch.bin" of="$WORK/want.bin" bs=1 seek=60000 conv=notrunc \
	status=none
out=$(client write /small.bin "$O_RDWR" 0 "$SRC/patch.bin" --at 60000 \
	--fsync)
assert_eq "content $(sha256 "$SRC/small.bin")" "$(sed -n 2p <<<"$out")" \
	"content of the descriptor at open"
assert_eq "fsync ok" "$(sed -n 3p <<<"$out")" "reply to fsync"
assert_eq "close ok" "$(sed -n 4p <<<"$out")" "reply to close"
assert_eq "$(sha256 "$WORK/want.bin")" "$(bucket_sha data small.bin)" \
	"sha256 of the patched small.bin in the bucket"
head -c 1000 "$SRC/big.bin" >"$WORK/want.bin"
cat "$SRC/patch.bin" >>"$WORK/want.bin"
write_file /dir/big.bin "$O_WRONLY" 0 "$SRC/patch.bin" --truncate 1000 \
	--append
assert_eq "$(sha256 "$WORK/want.bin")" "$(bucket_sha data dir/big.bin)" \
	"sha256 of the cut and appended dir/big.bin in the bucket"
write_file /dir/big.bin "$((O_WRONLY | O_TRUNC))" 0 "$SRC/keep.txt"
assert_eq "$(sha256 "$SRC/keep.txt")" "$(bucket_sha data dir/big.bin)" \
	"sha256 of dir/big.bin after O_TRUNC"
expect_err "$EEXIST" "O_CREAT | O_EXCL of an existing file" \
	"path-open /small.bin $((O_WRONLY | O_CREAT | O_EXCL)) 420"
expect_err "$EISDIR" "writable open of a folder" \
	"path-open /dir $O_WRONLY 0"
expect_err "$ENOENT" "create in a missing folder" \
	"path-open /nodir/f $((O_WRONLY | O_CREAT)) 420"

check "namespace requests reach the bucket"
assert_eq "ok" "$(client raw "path-mkdir /made 493")" "mkdir /made"
assert_eq "0 made/" "$(s3 ls data made/)" "marker of made/ in the bucket"
expect_err "$EEXIST" "mkdir of an existing folder" "path-mkdir /made 493"
expect_err "$ENOENT" "mkdir in a missing folder" "path-mkdir /no/sub 493"
assert_eq "ok" "$(client raw "path-rename /dir/new.bin /made/moved.bin")" \
	"rename into /made"
assert_eq "$(sha256 "$SRC/new.bin")" "$(bucket_sha data made/moved.bin)" \
	"sha256 of the renamed object"
assert_eq "" "$(s3 ls data dir/new.bin)" "old key after the rename"
expect_err "$ENOENT" "rename of a missing file" \
	"path-rename /dir/new.bin /x"
expect_err "$ENOENT" "rename into a missing folder" \
	"path-rename /made/moved.bin /nodir/x"
expect_err "$ENOTDIR" "rename below a file" \
	"path-rename /made/moved.bin /small.bin/x"
expect_err "$ENOTEMPTY" "rmdir of a folder with a file" "path-rmdir /made"
expect_err "$ENOTDIR" "rmdir of a file" "path-rmdir /made/moved.bin"
expect_err "$EISDIR" "unlink of a folder" "path-unlink /made"
assert_eq "ok" "$(client raw "path-unlink /made/moved.bin")" "unlink"
assert_eq "" "$(s3 ls data made/moved.bin)" "key after the unlink"
expect_err "$ENOENT" "unlink of a missing file" "path-unlink /made/moved.bin"
assert_eq "ok" "$(client raw "path-rmdir /made")" "rmdir of the empty folder"
assert_eq "" "$(s3 ls data made/)" "marker after the rmdir"
assert_eq "ok" "$(client raw "path-truncate /huge.bin 4096")" "truncate"
assert_eq "$(head -c 4096 "$SRC/huge.bin" | sha256sum | cut -d' ' -f1)" \
	"$(bucket_sha data huge.bin)" "sha256 of huge.bin after truncate"
expect_err "$EISDIR" "truncate of a folder" "path-truncate /dir 0"
expect_err "$EINVAL" "request with a missing argument" "path-mkdir /m"

check "real programs under the preload library"
PRELOAD_LIB=$NEARFS_BUILD/libnearfs-preload.so
[ -f "$PRELOAD_LIB" ] || fail "$PRELOAD_LIB is missing: run make"
preloaded() {
	LD_PRELOAD=$PRELOAD_LIB "$@"
}
assert_eq "$(sha256 "$SRC/keep.txt")" \
	"$(preloaded cat "$ROOT/dir/keep.txt" | sha256sum | cut -d' ' -f1)" \
	"sha256 of cat of dir/keep.txt"
assert_eq "big.bin keep.txt" "$(preloaded ls "$ROOT/dir" | tr '\n' ' ' |
	sed 's/ $//')" "ls of dir"
preloaded cp "$SRC/new.bin" "$ROOT/dir/copied.bin"
assert_eq "$(sha256 "$SRC/new.bin")" "$(bucket_sha data dir/copied.bin)" \
	"sha256 of the object that cp wrote"
preloaded cp "$ROOT/dir/copied.bin" "$WORK/copied-out.bin"
assert_same_file "$SRC/new.bin" "$WORK/copied-out.bin" "cp out of the root"
preloaded bash -c 'echo "written by a shell" >"$1"' bash "$ROOT/echo.txt"
assert_eq "written by a shell" "$(s3 get data echo.txt)" \
	"object that a shell redirection wrote"
preloaded mv "$ROOT/echo.txt" "$ROOT/dir/echo.txt"
assert_eq "written by a shell" "$(s3 get data dir/echo.txt)" \
	"object after mv"
assert_eq "" "$(s3 ls data echo.txt)" "old key after mv"
preloaded rm "$ROOT/dir/echo.txt" "$ROOT/dir/copied.bin"
assert_eq "big.bin keep.txt" "$(s3 ls data dir/ | awk '{ print $2 }' |
	sed 's|^dir/||' | tr '\n' ' ' | sed 's/ $//')" "keys after rm"

check "clients of another uid are not served"
if [ "$(id -u)" -ne 0 ]; then
	log "not root: the checks with another user are skipped"
else
	for tool in useradd userdel setpriv; do
		command -v "$tool" >/dev/null ||
			fail "$tool is missing: install the passwd and" \
				"util-linux packages"
	done
	user=nearfs-nomount-$$
	useradd --no-create-home --no-user-group --gid nogroup \
		--shell /usr/sbin/nologin "$user"
	CLEANUP_USERS+=("$user")
	# The client comes on stdin: the user cannot read this tree.
	status=0
	out=$(setpriv --reuid="$user" --regid=nogroup --clear-groups -- \
		/usr/bin/python3 - "$NM_SOCK" stat / <"$CLIENT_PY" 2>&1) ||
		status=$?
	assert_eq 1 "$status" "exit status of the other user's client"
	assert_contains "$out" "Permission denied" \
		"connect of the other user"
	# With CAP_DAC_OVERRIDE it can connect, and the daemon rejects it
	# by its SO_PEERCRED credentials.
	out=$(setpriv --reuid="$user" --regid=nogroup --clear-groups \
		--inh-caps=+dac_override --ambient-caps=+dac_override -- \
		/usr/bin/python3 - "$NM_SOCK" stat / <"$CLIENT_PY")
	assert_eq "err $EACCES" "$out" "reply to the other user"
	assert_contains "$(cat "$NM_LOG")" \
		"rejected a client with uid $(id -u "$user")" "daemon log"
fi

check "SIGTERM removes the .nomount file and the socket"
stop_nomount
[ ! -e "$NM_FILE" ] || fail "$NM_FILE is still there after SIGTERM"
[ ! -e "$NM_SOCK" ] || fail "$NM_SOCK is still there after SIGTERM"

# ---- S3, write-back

check "write-back: close is local, nearfs-ctl flush uploads"
start_nomount s3://data "$ROOT" \
	"cache_dir=$WORK/cache-back,write_mode=back,writeback_delay=60s"
write_file /wb1.bin "$((O_WRONLY | O_CREAT))" 420 "$SRC/new.bin"
assert_eq "" "$(s3 ls data wb1.bin)" "wb1.bin in the bucket before flush"
assert_eq 1 "$(stat_field "$ROOT" uploads_pending)" "uploads_pending"
# A file waiting for upload cannot be lent: it comes as a copy.
out=$(client read /wb1.bin)
assert_eq "$(sha256 "$SRC/new.bin") access ro links 0" \
	"$(sed -n 2p <<<"$out" | cut -d' ' -f2-)" "copy of the pending wb1.bin"
"$NEARFS_CTL" flush "$ROOT" >/dev/null
assert_eq "$(sha256 "$SRC/new.bin")" "$(bucket_sha data wb1.bin)" \
	"sha256 of wb1.bin after nearfs-ctl flush"
assert_eq 0 "$(stat_field "$ROOT" uploads_pending)" \
	"uploads_pending after the flush"

check "write-back: SIGTERM commits an open file and uploads what waits"
write_file /wb2.bin "$((O_WRONLY | O_CREAT))" 420 "$SRC/big.bin"
assert_eq "" "$(s3 ls data wb2.bin)" "wb2.bin in the bucket before SIGTERM"
coproc HOLD { client hold /wb3.bin "$((O_RDWR | O_CREAT))" 420 \
	"$SRC/small.bin"; }
CLEANUP_PIDS+=("$HOLD_PID")
hold_pid=$HOLD_PID
# Bash unsets HOLD when the client exits: keep its output open.
exec {hold_out}<&"${HOLD[0]}"
read -r line <&"$hold_out"
assert_contains "$line" "ok 0" "reply to the held open"
read -r line <&"$hold_out"
read -r line <&"$hold_out"
assert_eq "written" "$line" "held client"
stop_nomount
read -r line <&"$hold_out"
assert_eq "ended" "$line" "held client after SIGTERM"
exec {hold_out}<&-
wait "$hold_pid" || true
assert_eq "$(sha256 "$SRC/big.bin")" "$(bucket_sha data wb2.bin)" \
	"sha256 of the pending wb2.bin after SIGTERM"
assert_eq "$(sha256 "$SRC/small.bin")" "$(bucket_sha data wb3.bin)" \
	"sha256 of the held wb3.bin after SIGTERM"
assert_contains "$(cat "$NM_LOG")" "all data uploaded" "daemon log at exit"
[ ! -e "$NM_FILE" ] || fail "$NM_FILE is still there after SIGTERM"

# ---- a directory origin

check "a directory origin: reads, writes and namespace requests"
ORIGIN=$WORK/origin
mkdir -p "$ORIGIN/sub"
cp "$SRC/big.bin" "$ORIGIN/sub/big.bin"
cp "$SRC/small.bin" "$ORIGIN/small.bin"
DROOT=/nearfs-test-$$/data
start_nomount "$ORIGIN" "$DROOT" \
	"cache_dir=$WORK/cache-dir,chunk_size=1M,uid=4321,gid=4322,umask=027"
assert_eq "$DROOT" "$(cat "$NM_FILE")" "content of $NM_FILE"
[ ! -e "/nearfs-test-$$" ] || fail "the daemon created /nearfs-test-$$"
# uid=, gid= and umask= show as on a mount: 0644 on the origin is 0640.
read -r ok mode uid gid size _ <<<"$(client stat /sub/big.bin)"
assert_eq "ok $(printf '%d' 0100640) 4321 4322 $(stat -c %s "$SRC/big.bin")" \
	"$ok $mode $uid $gid $size" "stat of sub/big.bin"
assert_eq "$(printf '%d' 040750)" \
	"$(client list / | awk '$5 == "sub" { print $1 }')" \
	"mode of sub in the listing of /"
assert_eq "$(printf '%d' 0100640)" \
	"$(client list /sub | awk '$5 == "big.bin" { print $1 }')" \
	"mode of big.bin in the listing of /sub"
assert_eq "$(sha256 "$SRC/big.bin")" "$(read_sha /sub/big.bin)" \
	"sha256 of the lent sub/big.bin"
cp "$SRC/big.bin" "$WORK/want.bin"
dd if="$SRC/patch.bin" of="$WORK/want.bin" bs=1 seek=$(mib 3) \
	conv=notrunc status=none
write_file /sub/big.bin "$O_RDWR" 0 "$SRC/patch.bin" --at "$(mib 3)"
assert_same_file "$WORK/want.bin" "$ORIGIN/sub/big.bin" \
	"sub/big.bin patched on the origin"
write_file /small.bin "$O_RDWR" 0 "$SRC/patch.bin" --truncate 100 --at 200
{ head -c 100 "$SRC/small.bin"; head -c 100 /dev/zero;
	cat "$SRC/patch.bin"; } >"$WORK/want.bin"
assert_same_file "$WORK/want.bin" "$ORIGIN/small.bin" \
	"small.bin cut and extended on the origin"
write_file "/sub/name with space%.txt" "$((O_WRONLY | O_CREAT))" 384 \
	"$SRC/keep.txt"
assert_same_file "$SRC/keep.txt" "$ORIGIN/sub/name with space%.txt" \
	"created file with an encoded name"
assert_eq 600 "$(stat -c %a "$ORIGIN/sub/name with space%.txt")" \
	"mode of the created file on the origin"
assert_contains "$(client list /sub)" "name with space%.txt" \
	"listing with the decoded name"
assert_eq "ok" "$(client raw "path-mkdir /sub/d 448")" "mkdir"
assert_eq 700 "$(stat -c %a "$ORIGIN/sub/d")" "mode of the new folder"
assert_eq "ok" "$(client raw "path-rename /small.bin /sub/d/s.bin")" \
	"rename"
assert_same_file "$WORK/want.bin" "$ORIGIN/sub/d/s.bin" "renamed file"
expect_err "$ENOTEMPTY" "rmdir of a folder with a file" "path-rmdir /sub/d"
expect_err "$ENOTDIR" "rename of a folder onto a file" \
	"path-rename /sub/d /sub/big.bin"
assert_eq "ok" "$(client raw "path-unlink /sub/d/s.bin")" "unlink"
assert_eq "ok" "$(client raw "path-rmdir /sub/d")" "rmdir"
[ ! -e "$ORIGIN/sub/d" ] || fail "sub/d is still on the origin"
assert_eq "ok" "$(client raw "path-truncate /sub/big.bin 10")" "truncate"
assert_eq 10 "$(stat -c %s "$ORIGIN/sub/big.bin")" "size after truncate"
stop_nomount
[ ! -e "$NM_FILE" ] || fail "$NM_FILE is still there after SIGTERM"

check "the write-back journal survives a killed daemon"
start_nomount "$ORIGIN" "$DROOT" \
	"cache_dir=$WORK/cache-dir,write_mode=back,writeback_delay=60s"
write_file /journaled.bin "$((O_WRONLY | O_CREAT))" 420 "$SRC/new.bin"
[ ! -e "$ORIGIN/journaled.bin" ] ||
	fail "journaled.bin reached the origin before the flush"
killed_file=$NM_FILE
kill -KILL "$NM_PID"
# Braces, so that the redirection also silences bash's "Killed" notice.
{ wait "$NM_PID"; } 2>/dev/null || true
[ -e "$killed_file" ] || fail "$killed_file vanished with a killed daemon"
start_nomount "$ORIGIN" "$DROOT" \
	"cache_dir=$WORK/cache-dir,write_mode=back,writeback_delay=60s"
[ ! -e "$killed_file" ] ||
	fail "the new daemon left the file of the killed one: $killed_file"
"$NEARFS_CTL" flush "$DROOT" >/dev/null
assert_same_file "$SRC/new.bin" "$ORIGIN/journaled.bin" \
	"journaled.bin on the origin after the restart"
stop_nomount
