#!/usr/bin/env bash
# test_preload_nomount.sh - libnearfs-preload.so serving a root without
# FUSE.  A server registers ROOT, a path where nothing exists on disk,
# through a <pid>.nomount file in $RUNDIR (NEARFS_PRELOAD_RUNDIR), and
# serves it from the directory $ORIGIN.  Real programs read and write
# below ROOT under the library; the content is checked by checksum
# against $ORIGIN.  Also checks errno, fstat of open descriptors, commit
# errors at close, relative paths, that paths outside ROOT make no
# connection, and a server that is gone.  Needs no /dev/fuse.
#
# The server is tests/tools/fake_nomount.py unless NEARFS_NOMOUNT_SERVER
# names another command, which the test runs as
#   $NEARFS_NOMOUNT_SERVER ORIGIN ROOT
# and which must register ROOT in NEARFS_NOMOUNT_RUNDIR, for example
#   NEARFS_NOMOUNT_SERVER="build/nearfs -f -o nomount,cache_dir=/tmp/c" \
#   NEARFS_NOMOUNT_RUNDIR=$XDG_RUNTIME_DIR/nearfs
# The checks that read the fake server's request log or make its commits
# fail run with the fake server only.
NEARFS_NEEDS_FUSE=0
. "$(dirname "$0")/../lib.sh"

PRELOAD_LIB=$NEARFS_BUILD/libnearfs-preload.so
PROBE=$NEARFS_BUILD/tools/preload_probe
FAKE_SERVER=$NEARFS_ROOT/tests/tools/fake_nomount.py
[ -f "$PRELOAD_LIB" ] || fail "$PRELOAD_LIB is missing: run make"
[ -x "$PROBE" ] || fail "$PROBE is missing: run make"

ORIGIN=$WORK/origin
ROOT=$WORK/root
OUT=$WORK/out
STATE=$WORK/state
RUNDIR=${NEARFS_NOMOUNT_RUNDIR:-$WORK/run}
if [ -n "${NEARFS_NOMOUNT_SERVER:-}" ]; then
	# Word splitting of the command is intended.
	read -r -a SERVER_CMD <<<"$NEARFS_NOMOUNT_SERVER"
	USING_FAKE=0
else
	SERVER_CMD=(python3 "$FAKE_SERVER" --rundir "$RUNDIR" --state "$STATE")
	USING_FAKE=1
fi
mkdir -p "$ORIGIN/tree/sub" "$OUT" "$STATE" "$WORK/elsewhere"
mkdir -p -m 0700 "$RUNDIR"

run_preloaded() {
	local out=$1 err=$2
	shift 2
	env NEARFS_PRELOAD_RUNDIR="$RUNDIR" LD_PRELOAD="$PRELOAD_LIB" "$@" \
		>"$out" 2>"$err"
}

sha256_of_text() {
	printf '%s\n' "$1" | sha256sum | cut -d' ' -f1
}

# check_run WHAT CMD...: CMD, under the library, exits with 0 and writes
# nothing to stderr; its stdout is in $WORK/run.out.
check_run() {
	local what=$1 status=0
	shift
	run_preloaded "$WORK/run.out" "$WORK/run.err" "$@" || status=$?
	assert_eq 0 "$status" "exit status of $what (stderr: $(head -c 400 "$WORK/run.err"))"
	assert_eq "" "$(cat "$WORK/run.err")" "stderr of $what"
}

# check_read WHAT SHA256 CMD...: check_run, and the stdout of CMD has
# the checksum SHA256.
check_read() {
	local what=$1 want=$2
	shift 2
	check_run "$what" "$@"
	assert_eq "$want" "$(sha256 "$WORK/run.out")" \
		"sha256 of the output of $what"
}

# wait_for_sha FILE SHA256 WHAT: FILE gets the checksum SHA256 within
# 100 looks.  This is for commits that the server makes when a handle
# ends, which may be after the program exited.
wait_for_sha() {
	local file=$1 want=$2 what=$3 i
	for i in $(seq 100); do
		[ -f "$file" ] && [ "$(sha256 "$file")" = "$want" ] && break
		sleep 0.1
	done
	assert_eq "$want" "$(sha256 "$file")" "sha256 of $what"
}

# Requests that the fake server has received so far.
requests() {
	touch "$STATE/requests"
	wc -l <"$STATE/requests"
}

# errno_of PYTHON_CODE: the errno name that the code raises under
# the library ("ok" when it raises nothing), with ROOT as r.
errno_of() {
	run_preloaded "$WORK/errno.out" "$WORK/errno.err" python3 -c '
import errno, os, sys
r = sys.argv[1]
try:
    exec(sys.argv[2])
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' "$ROOT" "$1" || true
	cat "$WORK/errno.out"
}

SERVER_PID=
start_server() {
	local i
	"${SERVER_CMD[@]}" "$ORIGIN" "$ROOT" >"$WORK/server.log" 2>&1 &
	SERVER_PID=$!
	CLEANUP_PIDS+=("$SERVER_PID")
	# The server's own file: RUNDIR may be shared with other daemons.
	for i in $(seq 100); do
		[ -e "$RUNDIR/$SERVER_PID.nomount" ] && return 0
		kill -0 "$SERVER_PID" 2>/dev/null ||
			fail "the server exited: $(cat "$WORK/server.log")"
		sleep 0.1
	done
	fail "the server registered no root in $RUNDIR: $(cat "$WORK/server.log")"
}

# ---- data

BIG_SIZE=$(($(mib 5) + 123))
random_file "$ORIGIN/big.bin" "$BIG_SIZE"
seq 1 5000 | sed 's/$/ needle or hay/' >"$ORIGIN/small.txt"
echo "a needle in a" >"$ORIGIN/tree/a.txt"
seq 1 300 | sed 's/^/needle /' >"$ORIGIN/tree/sub/c.txt"
random_file "$ORIGIN/tree/sub/b.bin" $((300 * 1024 + 7))
echo "spaced out" >"$ORIGIN/tree/name with space.txt"
: >"$ORIGIN/empty.txt"
random_file "$WORK/upload.bin" $(($(mib 3) + 77))
BIG_SHA=$(sha256 "$ORIGIN/big.bin")
UPLOAD_SHA=$(sha256 "$WORK/upload.bin")

start_server
[ ! -e "$ROOT" ] || fail "$ROOT exists on disk"

check "reads below the root"
check_read "cat" "$BIG_SHA" cat "$ROOT/big.bin"
check_read "dd" "$BIG_SHA" dd if="$ROOT/big.bin" bs=64K status=none
check_read "dd with skip and count" \
	"$(dd if="$ORIGIN/big.bin" bs=4096 skip=300 count=77 status=none |
		sha256sum | cut -d' ' -f1)" \
	dd if="$ROOT/big.bin" bs=4096 skip=300 count=77 status=none
check_read "sha256sum" "$(sha256_of_text "$BIG_SHA  $ROOT/big.bin")" \
	sha256sum "$ROOT/big.bin"
check_read "python3 open().read()" "$(sha256_of_text "$BIG_SHA")" \
	python3 -c '
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    print(hashlib.sha256(f.read()).hexdigest())' "$ROOT/big.bin"
check_read "cat of a name with a space" "$(sha256 "$ORIGIN/tree/name with space.txt")" \
	cat "$ROOT/tree/name with space.txt"
check_read "cat of an empty file" "$(sha256 "$ORIGIN/empty.txt")" \
	cat "$ROOT/empty.txt"
[ ! -e "$ROOT" ] || fail "$ROOT appeared on disk"

check "listings below the root"
check_read "grep -r" \
	"$(cd "$ORIGIN" && grep -r needle tree | LC_ALL=C sort | sha256sum |
		cut -d' ' -f1)" \
	bash -c 'grep -r needle "$1/tree" | sed "s|^$1/||" | LC_ALL=C sort' \
	bash "$ROOT"
check_read "find" \
	"$(find "$ORIGIN" -printf '%P %y %s\n' | LC_ALL=C sort | sha256sum |
		cut -d' ' -f1)" \
	bash -c 'find "$1" -printf "%P %y %s\n" | LC_ALL=C sort' bash "$ROOT"
# ls -l without the "total" line: the library reports st_blocks from the
# size, not from the origin's disk.  nearfs shows every folder with a link
# count of 2, as its FUSE mount does, so with it the counts are left out.
if [ "$USING_FAKE" = 1 ]; then
	LS_LINKS='{ print }'
else
	LS_LINKS='{ $2 = ""; print }'
fi
check_read "ls -l" \
	"$(ls -l --time-style=full-iso "$ORIGIN" "$ORIGIN/tree" |
		grep -v '^total' | sed "s|$ORIGIN|DIR|" | awk "$LS_LINKS" |
		sha256sum | cut -d' ' -f1)" \
	bash -c 'ls -l --time-style=full-iso "$1" "$1/tree" |
		grep -v "^total" | sed "s|$1|DIR|" | awk "$2"' bash "$ROOT" \
	"$LS_LINKS"
check_read "ls -a of the root" \
	"$(ls -a "$ORIGIN" | sha256sum | cut -d' ' -f1)" ls -a "$ROOT"
check_read "python3 os.listdir" \
	"$(sha256_of_text "$(cd "$ORIGIN/tree" && ls -A | LC_ALL=C sort |
		tr '\n' '|')")" \
	python3 -c '
import os, sys
print("".join(n + "|" for n in sorted(os.listdir(sys.argv[1]))))' \
	"$ROOT/tree"

check "copies out of the root"
check_run "cp out" cp "$ROOT/big.bin" "$OUT/cp.bin"
assert_same_file "$ORIGIN/big.bin" "$OUT/cp.bin" "cp of big.bin out"
check_run "tar -c" tar -C "$ROOT" -cf "$OUT/tree.tar" tree
mkdir "$OUT/untar"
tar -C "$OUT/untar" -xf "$OUT/tree.tar"
diff -r "$ORIGIN/tree" "$OUT/untar/tree" || fail "the tar archive differs"
log "ok: the tar archive holds the tree"

check "writes below the root"
check_run "cp in" cp "$WORK/upload.bin" "$ROOT/cp-in.bin"
assert_same_file "$WORK/upload.bin" "$ORIGIN/cp-in.bin" "cp of upload.bin in"
check_run "dd in" dd if="$WORK/upload.bin" of="$ROOT/dd-in.bin" bs=64K \
	status=none
assert_same_file "$WORK/upload.bin" "$ORIGIN/dd-in.bin" "dd of upload.bin in"
check_run "dd in with conv=fsync" dd if="$WORK/upload.bin" \
	of="$ROOT/dd-fsync.bin" bs=1M conv=fsync status=none
assert_same_file "$WORK/upload.bin" "$ORIGIN/dd-fsync.bin" "dd conv=fsync"
check_run "a shell redirect of a builtin" \
	bash -c 'printf "%s\n" one two three >"$1/printf.txt"' bash "$ROOT"
assert_eq "one two three" "$(xargs <"$ORIGIN/printf.txt")" \
	"content written by printf"
# bash runs seq with exec: the handle goes with it, and the server
# commits the file when seq exits.
check_run "a shell redirect of a program" \
	bash -c 'seq 1 20000 >"$1/seq.txt"' bash "$ROOT"
wait_for_sha "$ORIGIN/seq.txt" "$(seq 1 20000 | sha256sum | cut -d' ' -f1)" \
	"seq.txt written by seq"
check_run "an appending redirect" \
	bash -c 'echo appended >>"$1/printf.txt"' bash "$ROOT"
assert_eq "one two three appended" "$(xargs <"$ORIGIN/printf.txt")" \
	"content after >>"
check_run "python3 write, rename and truncate" python3 -c '
import os, sys
r = sys.argv[1]
with open(r + "/py.txt", "w") as f:
    f.write("written by python\n" * 1000)
os.rename(r + "/py.txt", r + "/py-renamed.txt")
os.truncate(r + "/py-renamed.txt", 18)' "$ROOT"
assert_eq "written by python" "$(cat "$ORIGIN/py-renamed.txt")" \
	"content after python3 rename and truncate"
[ ! -e "$ORIGIN/py.txt" ] || fail "py.txt is still in the origin"
check_run "truncate -s" truncate -s 1000 "$ROOT/cp-in.bin"
assert_eq "$(head -c 1000 "$WORK/upload.bin" | sha256sum | cut -d' ' -f1)" \
	"$(sha256 "$ORIGIN/cp-in.bin")" "sha256 after truncate -s 1000"
mkdir "$OUT/extract"
(cd "$OUT/extract" && tar -xf "$OUT/tree.tar")
check_run "mkdir" mkdir "$ROOT/unpacked"
# Directory times, owners and modes cannot be set without FUSE.
check_run "tar -x" tar -m --no-same-owner --no-same-permissions \
	-C "$ROOT/unpacked" -xf "$OUT/tree.tar"
diff -r "$ORIGIN/tree" "$ORIGIN/unpacked/tree" ||
	fail "the tree that tar extracted differs"
log "ok: tar extracted the tree into the root"

check "renames and removals below the root"
check_run "mv" mv "$ROOT/dd-in.bin" "$ROOT/tree/moved.bin"
assert_same_file "$WORK/upload.bin" "$ORIGIN/tree/moved.bin" "moved file"
[ ! -e "$ORIGIN/dd-in.bin" ] || fail "dd-in.bin is still in the origin"
check_run "mv out of the root" mv "$ROOT/dd-fsync.bin" "$OUT/moved-out.bin"
assert_same_file "$WORK/upload.bin" "$OUT/moved-out.bin" "file moved out"
[ ! -e "$ORIGIN/dd-fsync.bin" ] || fail "dd-fsync.bin is still in the origin"
check_run "mv into the root" mv "$OUT/moved-out.bin" "$ROOT/moved-in.bin"
assert_same_file "$WORK/upload.bin" "$ORIGIN/moved-in.bin" "file moved in"
check_run "rm" rm "$ROOT/moved-in.bin"
[ ! -e "$ORIGIN/moved-in.bin" ] || fail "rm left moved-in.bin"
check_run "mkdir of a new folder" mkdir "$ROOT/newdir"
[ -d "$ORIGIN/newdir" ] || fail "mkdir made no folder in the origin"
check_run "rmdir" rmdir "$ROOT/newdir"
[ ! -e "$ORIGIN/newdir" ] || fail "rmdir left newdir"
check_run "rm -r" rm -r "$ROOT/unpacked"
[ ! -e "$ORIGIN/unpacked" ] || fail "rm -r left unpacked"
log "ok: the origin follows mv, rm, mkdir, rmdir and rm -r"

check "errno"
assert_eq ENOENT "$(errno_of 'open(r + "/missing.txt")')" \
	"open of a missing file"
assert_eq ENOENT "$(errno_of 'os.stat(r + "/tree/missing")')" \
	"stat of a missing file"
assert_eq ENOTEMPTY "$(errno_of 'os.rmdir(r + "/tree")')" \
	"rmdir of a folder that is not empty"
assert_eq EEXIST "$(errno_of 'os.mkdir(r + "/tree")')" \
	"mkdir of an existing folder"
assert_eq ENOTDIR "$(errno_of 'os.listdir(r + "/small.txt")')" \
	"listdir of a file"
assert_eq EXDEV "$(errno_of 'os.rename(r + "/small.txt", "/tmp/x")')" \
	"rename out of the root"
assert_eq ENOTSUP "$(errno_of 'os.chdir(r + "/tree")')" \
	"chdir into the root"
run_preloaded "$WORK/errno.out" "$WORK/errno.err" \
	"$PROBE" errno "$ROOT/small.txt"
assert_eq "opened EXDEV" "$(cat "$WORK/errno.out")" \
	"errno after an open that succeeded (set to EXDEV before)"
run_preloaded "$WORK/errno.out" "$WORK/errno.err" \
	"$PROBE" errno "$ROOT/missing.txt"
assert_eq "failed ENOENT" "$(cat "$WORK/errno.out")" \
	"preload_probe open of a missing file"

check "fstat of open descriptors"
check_read "fstat against stat" "$(sha256_of_text "same same 100")" \
	python3 -c '
import os, sys
r = sys.argv[1]
keys = ("st_dev", "st_ino", "st_mode", "st_nlink", "st_uid", "st_size",
        "st_mtime_ns")
with open(r + "/small.txt", "rb") as f:
    a, b = os.fstat(f.fileno()), os.stat(r + "/small.txt")
    read = "same" if all(getattr(a, k) == getattr(b, k) for k in keys) \
        else "read %s %s" % (a, b)
with open(r + "/fstat.txt", "wb") as f:
    before = os.stat(r + "/fstat.txt")
    f.write(b"x" * 100)
    f.flush()
    a = os.fstat(f.fileno())
    written = "same" if (a.st_ino, a.st_dev, a.st_mode) == \
        (before.st_ino, before.st_dev, before.st_mode) else "written differs"
    print(read, written, a.st_size)' \
	"$ROOT"

check "relative paths"
check_read "cat from a current folder above the root" \
	"$(sha256 "$ORIGIN/small.txt")" \
	bash -c 'cd "$1" && cat root/small.txt' bash "$WORK"
check_read "cat through .. and // and ." "$(sha256 "$ORIGIN/tree/a.txt")" \
	bash -c 'cd "$1/elsewhere" && cat ../root//tree/./sub/../a.txt' bash \
	"$WORK"
check_read "ls of a path that leaves the root" \
	"$(ls "$WORK/elsewhere" | sha256sum | cut -d' ' -f1)" \
	ls "$ROOT/../elsewhere"
run_preloaded "$WORK/cd.out" "$WORK/cd.err" bash -c 'cd "$1"' bash \
	"$ROOT/tree" && fail "cd into the root succeeded"
assert_contains "$(cat "$WORK/cd.err")" "not supported" "stderr of cd"

if [ "$USING_FAKE" = 1 ]; then
	check "commit errors reach close and fsync"
	echo 28 >"$STATE/commit_errno"
	assert_eq ENOSPC "$(errno_of '
f = open(r + "/full.txt", "w")
f.write("data")
f.close()')" "close of a file whose commit fails"
	assert_eq ENOSPC "$(errno_of '
f = open(r + "/full.txt", "w")
f.write("data")
f.flush()
os.fsync(f.fileno())')" "fsync of a file whose commit fails"
	rm "$STATE/commit_errno"

	check "paths outside the root send no request"
	before=$(requests)
	check_run "cat outside the root" cat "$ORIGIN/big.bin"
	check_run "ls outside the root" ls -l "$ORIGIN" "$WORK/elsewhere"
	run_preloaded "$WORK/beside.out" "$WORK/beside.err" \
		stat "$WORK/rootx" || true
	assert_eq "$before" "$(requests)" "requests after calls outside the root"
fi

if command -v strace >/dev/null; then
	check "paths outside the root connect to no socket"
	strace_connects() {
		connects_added "$WORK/strace.log" \
			NEARFS_PRELOAD_RUNDIR="$RUNDIR" \
			LD_PRELOAD="$PRELOAD_LIB" -- "$@"
	}
	assert_eq 0 "$(strace_connects cat "$ORIGIN/big.bin")" \
		"connect calls of cat of an absolute path outside the root"
	assert_eq 0 "$(strace_connects bash -c 'cd "$1" && cat small.txt' \
		bash "$ORIGIN")" \
		"connect calls of cat of a relative path outside the root"
	assert_num "$(strace_connects cat "$ROOT/small.txt")" -ge 1 \
		"connect calls of cat of a file below the root"
	assert_contains "$(cat "$WORK/strace.log")" "$RUNDIR/" \
		"connect of cat of a file below the root"
else
	log "strace is missing: the check of connect calls is skipped"
fi

check "a server that is gone"
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
run_preloaded "$WORK/gone.out" "$WORK/gone.err" python3 -c '
import errno, os, sys
r = sys.argv[1]
calls = [lambda: os.stat(r + "/small.txt"),
         lambda: open(r + "/small.txt").read(),
         lambda: os.listdir(r),
         lambda: os.mkdir(r + "/d"),
         lambda: open(r + "/new.txt", "w")]
for call in calls:
    try:
        call()
        print("ok")
    except OSError as e:
        print(errno.errorcode[e.errno])' "$ROOT" || true
assert_eq "EIO EIO EIO EIO EIO" "$(xargs <"$WORK/gone.out")" \
	"errno of five calls"
assert_eq 1 "$(wc -l <"$WORK/gone.err")" "stderr lines"
assert_contains "$(cat "$WORK/gone.err")" \
	"nearfs-preload: $ROOT: the nearfs daemon at $RUNDIR/" "stderr line"
check_read "cat outside the root with the server gone" \
	"$(sha256 "$ORIGIN/small.txt")" cat "$ORIGIN/small.txt"
