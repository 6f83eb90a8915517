#!/usr/bin/env bash
# test_preload.sh - libnearfs-preload.so under real programs on a nearfs
# mount over S3.  Checks the content by checksum and the swap to a local
# copy, which tests/tools/fake_lender.py lends through
# NEARFS_PRELOAD_SOCKET.  Checks the fallback to the FUSE descriptor with
# the real daemon, with a daemon that is gone and with replies that do
# not fit.  Also checks fstat of swapped descriptors, errno, silence, the
# exported symbols, and that paths off the mount connect to no socket.
#
# To test another program under the library, add a line like
#   check_lent_read "wc" "$(sha256_of_text "...")" wc -c "$MNT/big.bin"
# (check_read when no swap is expected).
. "$(dirname "$0")/../lib.sh"

PRELOAD_LIB=$NEARFS_BUILD/libnearfs-preload.so
PROBE=$NEARFS_BUILD/tools/preload_probe
LENDER=$NEARFS_ROOT/tests/tools/fake_lender.py
[ -f "$PRELOAD_LIB" ] || fail "$PRELOAD_LIB is missing: run make"
[ -x "$PROBE" ] || fail "$PROBE is missing: run make"

SRC=$WORK/src
MNT=$WORK/mnt
OUT=$WORK/out
LEND_SOCK=$WORK/lender.sock
LEND_STATE=$WORK/lender
mkdir -p "$SRC/tree/sub" "$OUT" "$LEND_STATE"

# NAME=VALUE words for env(1) in front of each program run under the
# library.
declare -a PRELOAD_ENV=()

# run_preloaded OUT ERR CMD...: run CMD under the library and
# PRELOAD_ENV, with stdout to OUT and stderr to ERR; returns its status.
run_preloaded() {
	local out=$1 err=$2
	shift 2
	env "${PRELOAD_ENV[@]}" LD_PRELOAD="$PRELOAD_LIB" "$@" \
		>"$out" 2>"$err"
}

sha256_of_text() {
	printf '%s\n' "$1" | sha256sum | cut -d' ' -f1
}

# check_read WHAT SHA256 CMD...: run CMD under the library.  It must exit
# with 0 and write nothing to stderr, and its stdout must have the
# checksum SHA256.
check_read() {
	local what=$1 want=$2 status=0
	local out=$WORK/read.out err=$WORK/read.err
	shift 2
	run_preloaded "$out" "$err" "$@" || status=$?
	assert_eq 0 "$status" "exit status of $what (stderr: $(head -c 400 "$err"))"
	assert_eq "" "$(cat "$err")" "stderr of $what"
	assert_eq "$want" "$(sha256 "$out")" "sha256 of the output of $what"
}

# Requests the fake lender has received so far.
lend_requests() {
	if [ -f "$LEND_STATE/requests" ]; then
		wc -l <"$LEND_STATE/requests"
	else
		echo 0
	fi
}

# check_lent_read WHAT SHA256 CMD...: check_read, and CMD must have asked
# the lender for a copy.
check_lent_read() {
	local before
	before=$(lend_requests)
	check_read "$@"
	assert_num "$(lend_requests)" -gt "$before" \
		"lend requests after $1 (before: $before)"
}

# check_not_lent WHAT CMD...: CMD, under the library, succeeds without a
# request to the lender.
check_not_lent() {
	local what=$1 before
	shift
	before=$(lend_requests)
	run_preloaded "$WORK/cmd.out" "$WORK/cmd.err" "$@" ||
		fail "$what failed: $(cat "$WORK/cmd.err")"
	assert_eq "$before" "$(lend_requests)" "lend requests after $what"
}

# fd_target FILE: where the descriptor of FILE points, as preload_probe
# reads it under the library.  Its stderr goes to $WORK/probe.err.
fd_target() {
	run_preloaded "$WORK/probe.out" "$WORK/probe.err" \
		"$PROBE" fdlink "$1" ||
		fail "preload_probe fdlink $1 failed: $(cat "$WORK/probe.err")"
	cat "$WORK/probe.out"
}

lender_mode() {
	echo "$1" >"$LEND_STATE/mode"
}

start_lender() {
	local i
	python3 "$LENDER" "$LEND_SOCK" "$LEND_STATE" \
		>"$WORK/lender.log" 2>&1 &
	CLEANUP_PIDS+=("$!")
	for i in $(seq 100); do
		[ -S "$LEND_SOCK" ] && return 0
		sleep 0.1
	done
	fail "fake_lender.py did not create $LEND_SOCK: $(cat "$WORK/lender.log")"
}

# ---- data

BIG_SIZE=$(($(mib 5) + 123))
random_file "$SRC/big.bin" "$BIG_SIZE"
seq 1 5000 | sed 's/$/ needle or hay/' >"$SRC/small.txt"
echo "a needle in a" >"$SRC/tree/a.txt"
seq 1 300 | sed 's/^/needle /' >"$SRC/tree/sub/c.txt"
random_file "$SRC/tree/sub/b.bin" $((300 * 1024 + 7))
: >"$SRC/empty.txt"
BIG_SHA=$(sha256 "$SRC/big.bin")

start_s3
s3 mb data
(cd "$SRC" && find . -type f | sed 's|^\./||') | while read -r key; do
	s3 put data "$key" "$SRC/$key"
done
mount_nearfs s3://data "$MNT" "chunk_size=1M,ttl=1h,attr_ttl=1h,dir_ttl=1h"

check "the library exports only the interposed functions"
expected="__fxstat __fxstat64 __fxstatat __fxstatat64 __lxstat __lxstat64
__open64_2 __open_2 __openat64_2 __openat_2 __xstat __xstat64 access chdir
close close_range closedir closefrom creat creat64 dirfd dup dup2 dup3
eaccess euidaccess execl execle execlp execv execve execveat execvp execvpe
faccessat fchdir fclose fcntl fcntl64 fdatasync fdopendir fexecve fopen
fopen64 freopen freopen64 fstat fstat64 fstatat fstatat64 fsync getxattr
lgetxattr listxattr llistxattr lstat lstat64 mkdir mkdirat open open64
openat openat64 opendir readdir readdir64 readdir64_r readdir_r rename
renameat renameat2 rewinddir rmdir seekdir stat stat64 statx telldir
truncate truncate64 unlink unlinkat"
assert_eq "$(echo $expected | tr ' ' '\n' | LC_ALL=C sort | xargs)" \
	"$(nm -D --defined-only "$PRELOAD_LIB" | awk '{ print $3 }' |
		LC_ALL=C sort | xargs)" \
	"nm -D --defined-only $(basename "$PRELOAD_LIB")"
ldd_libs=$(ldd "$PRELOAD_LIB" | grep -Ec 'fuse|curl|ssl|crypto|expat' || true)
assert_eq 0 "$ldd_libs" "FUSE, curl or crypto libraries in ldd of the library"

check "the real daemon: a cold file stays on FUSE"
PRELOAD_ENV=(NEARFS_PRELOAD_DEBUG=1)
assert_eq "$MNT/big.bin" "$(fd_target "$MNT/big.bin")" \
	"descriptor of big.bin"
assert_contains "$(cat "$WORK/probe.err")" \
	"nearfs-preload: $MNT/big.bin: kept the FUSE descriptor: the daemon" \
	"debug output"
PRELOAD_ENV=()
check_read "cat through the real daemon" "$BIG_SHA" cat "$MNT/big.bin"
check_read "preload_probe stdio through the real daemon" "$BIG_SHA" \
	"$PROBE" stdio "$MNT/big.bin"

check "the real daemon lends a complete copy, and reads skip FUSE"
# The reads above made the copy of big.bin complete.  Without the page
# cache, every read through FUSE would reach the daemon as a hit.
drop_page_cache "$MNT/big.bin"
hits=$(stat_field "$MNT" hits)
lends=$(stat_field "$MNT" lends)
check_read "sha256sum of a lent copy" \
	"$(sha256_of_text "$BIG_SHA  $MNT/big.bin")" sha256sum "$MNT/big.bin"
# 8 threads that open the file 4 times each.
check_read "preload_probe threads 8 on lent copies" "$BIG_SHA" \
	"$PROBE" threads 8 "$MNT/big.bin"
assert_eq "$hits" "$(stat_field "$MNT" hits)" "hits after reads of lent copies"
assert_eq $((lends + 33)) "$(stat_field "$MNT" lends)" "lends"
target=$(fd_target "$MNT/big.bin")
case $target in
"$WORK"/cache/*/data/*) log "ok: descriptor of big.bin is $target" ;;
*) fail "descriptor of big.bin points to $target, not to the cache" ;;
esac

check "a daemon that is gone: FUSE stays"
PRELOAD_ENV=(NEARFS_PRELOAD_SOCKET="$WORK/nobody.sock" NEARFS_PRELOAD_DEBUG=1)
assert_eq "$MNT/big.bin" "$(fd_target "$MNT/big.bin")" \
	"descriptor of big.bin"
assert_contains "$(cat "$WORK/probe.err")" \
	"kept the FUSE descriptor: cannot connect to $WORK/nobody.sock" \
	"debug output"
PRELOAD_ENV=(NEARFS_PRELOAD_SOCKET="$WORK/nobody.sock")
check_read "cat without a daemon" "$BIG_SHA" cat "$MNT/big.bin"

start_lender
PRELOAD_ENV=(NEARFS_PRELOAD_SOCKET="$LEND_SOCK")

check "a lent copy takes the place of the FUSE descriptor"
target=$(fd_target "$MNT/big.bin")
case $target in
"$LEND_STATE/copies/"*) log "ok: big.bin reads $target" ;;
*) fail "the descriptor of big.bin points to $target, not to a copy" \
	"in $LEND_STATE/copies" ;;
esac
assert_eq "" "$(cat "$WORK/probe.err")" "stderr without NEARFS_PRELOAD_DEBUG"
request=$(python3 -c '
import os, sys
st = os.stat(sys.argv[1])
print("open %d %d %d" % (st.st_size, st.st_mtime_ns // 10**9,
                         st.st_mtime_ns % 10**9))' "$MNT/big.bin")
assert_eq "$request" "$(tail -n 1 "$LEND_STATE/requests")" \
	"request line of the library"
PRELOAD_ENV=(NEARFS_PRELOAD_SOCKET="$LEND_SOCK" NEARFS_PRELOAD_DEBUG=1)
fd_target "$MNT/big.bin" >/dev/null
assert_contains "$(cat "$WORK/probe.err")" "nearfs-preload: $MNT/big.bin: fd " \
	"debug output"
assert_contains "$(cat "$WORK/probe.err")" \
	" now reads a local copy ($BIG_SIZE bytes)" "debug output"
PRELOAD_ENV=(NEARFS_PRELOAD_SOCKET="$LEND_SOCK")

check "programs read the right bytes from lent copies"
check_lent_read "cat" "$BIG_SHA" cat "$MNT/big.bin"
check_lent_read "cat of a relative path" "$BIG_SHA" \
	bash -c 'cd "$1" && cat big.bin' bash "$MNT"
check_lent_read "dd" "$BIG_SHA" dd if="$MNT/big.bin" bs=64K status=none
check_lent_read "dd with skip and count" \
	"$(dd if="$SRC/big.bin" bs=4096 skip=300 count=77 status=none |
		sha256sum | cut -d' ' -f1)" \
	dd if="$MNT/big.bin" bs=4096 skip=300 count=77 status=none
check_lent_read "sha256sum" "$(sha256_of_text "$BIG_SHA  $MNT/big.bin")" \
	sha256sum "$MNT/big.bin"
check_lent_read "grep -r" \
	"$(cd "$SRC/tree" && grep -r needle . | LC_ALL=C sort | sha256sum |
		cut -d' ' -f1)" \
	bash -c 'cd "$1" && grep -r needle . | LC_ALL=C sort' bash "$MNT/tree"
check_lent_read "python3 open().read()" "$(sha256_of_text "$BIG_SHA")" \
	python3 -c '
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    print(hashlib.sha256(f.read()).hexdigest())' "$MNT/big.bin"
check_lent_read "python3 mmap" "$(sha256_of_text "$BIG_SHA")" \
	python3 -c '
import hashlib, mmap, sys
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    print(hashlib.sha256(m).hexdigest())' "$MNT/big.bin"
check_lent_read "preload_probe stdio" "$BIG_SHA" "$PROBE" stdio "$MNT/big.bin"
before=$(lend_requests)
check_read "preload_probe threads 8" "$BIG_SHA" \
	"$PROBE" threads 8 "$MNT/big.bin"
assert_eq $((before + 32)) "$(lend_requests)" \
	"lend requests after 8 threads opened big.bin 4 times each"
check_lent_read "preload_probe fork" "$BIG_SHA" "$PROBE" fork "$MNT/big.bin"
check_lent_read "preload_probe vfork" "$BIG_SHA" "$PROBE" vfork "$MNT/big.bin"
check_lent_read "a shell redirection into cat" "$BIG_SHA" \
	bash -c 'cat <"$1"' bash "$MNT/big.bin"
check_lent_read "python3 fstat around a subprocess" "$(sha256_of_text True)" \
	python3 -c '
import os, subprocess, sys
with open(sys.argv[1], "rb") as f:
    before = os.fstat(f.fileno())
    subprocess.run(["true"], check=True)
    after = os.fstat(f.fileno())
print(before.st_ino == after.st_ino == os.stat(sys.argv[1]).st_ino)' \
	"$MNT/big.bin"

check "cp and cp -p of lent copies"
run_preloaded "$WORK/cp.out" "$WORK/cp.err" cp "$MNT/big.bin" "$OUT/cp.bin" ||
	fail "cp failed: $(cat "$WORK/cp.err")"
assert_eq "" "$(cat "$WORK/cp.err")" "stderr of cp"
assert_same_file "$SRC/big.bin" "$OUT/cp.bin" "cp of big.bin"
before=$(lend_requests)
run_preloaded "$WORK/cp.out" "$WORK/cp.err" \
	cp -p "$MNT/small.txt" "$OUT/cp-p.txt" ||
	fail "cp -p failed: $(cat "$WORK/cp.err")"
assert_num "$(lend_requests)" -gt "$before" "lend requests after cp -p"
assert_eq "" "$(cat "$WORK/cp.err")" "stderr of cp -p"
assert_same_file "$SRC/small.txt" "$OUT/cp-p.txt" "cp -p of small.txt"
assert_eq "$(stat -c '%Y %a' "$MNT/small.txt")" \
	"$(stat -c '%Y %a' "$OUT/cp-p.txt")" "mtime and mode after cp -p"

check "tar of a tree of lent copies"
before=$(lend_requests)
run_preloaded "$WORK/tar.out" "$WORK/tar.err" \
	tar -C "$MNT" -cf "$OUT/tree.tar" tree ||
	fail "tar failed: $(cat "$WORK/tar.err")"
assert_eq "" "$(cat "$WORK/tar.err")" "stderr of tar"
assert_eq $((before + 3)) "$(lend_requests)" "lend requests after tar"
mkdir "$OUT/untar"
tar -C "$OUT/untar" -xf "$OUT/tree.tar"
diff -r "$SRC/tree" "$OUT/untar/tree" || fail "the tar archive differs"
log "ok: the tar archive holds the tree"

check "fstat of a lent copy shows the file on the mount"
run_preloaded "$WORK/stat.out" "$WORK/stat.err" \
	"$PROBE" stat "$MNT/big.bin" "$SRC/small.txt" ||
	fail "preload_probe stat failed: $(cat "$WORK/stat.err")"
assert_eq 63 "$(wc -l <"$WORK/stat.out")" "stat lines (9 calls, 7 descriptors)"
fuse_stat=$(stat -c '%d %i %f %u %s %Y' "$MNT/big.bin")
other_stat=$(stat -c '%d %i %f %u %s %Y' "$SRC/small.txt")
while read -r call values; do
	case $call in
	stale-*) assert_eq "$other_stat" "$values" "$call after a reuse" ;;
	*) assert_eq "$fuse_stat" "$values" "$call of the lent descriptor" ;;
	esac
done <"$WORK/stat.out"

check "errno"
run_preloaded "$WORK/errno.out" "$WORK/errno.err" \
	"$PROBE" errno "$MNT/missing.bin"
assert_eq "failed ENOENT" "$(cat "$WORK/errno.out")" \
	"open of a missing file on the mount"
before=$(lend_requests)
run_preloaded "$WORK/errno.out" "$WORK/errno.err" \
	"$PROBE" errno "$MNT/big.bin"
assert_eq "opened EXDEV" "$(cat "$WORK/errno.out")" \
	"errno after an open that was swapped (set to EXDEV before)"
assert_num "$(lend_requests)" -gt "$before" "lend requests of the open"

check "reopen of a lent copy through /proc/self/fd"
run_preloaded "$WORK/reopen.out" "$WORK/reopen.err" \
	"$PROBE" reopen "$MNT/big.bin" ||
	fail "preload_probe reopen failed: $(cat "$WORK/reopen.err")"
assert_eq "read ok
read-inode same
write EACCES
freopen-write EACCES" "$(cat "$WORK/reopen.out")" "reopen results"

check "replies that do not fit keep the FUSE descriptor"
declare -A REPLY_MESSAGE=(
	[no]="the daemon lends no copy: not cached"
	[error]="the daemon rejected the request: error: unknown command 'open'"
	[bigger]="the lent descriptor is not a read-only regular file of $BIG_SIZE bytes"
	[writable]="the lent descriptor is not a read-only regular file of $BIG_SIZE bytes"
	[nofd]="came with no descriptor instead of one"
	[hangup]="closed the connection before a whole reply line"
	[garbage]="invalid reply 'maybe'"
)
for mode in no error bigger writable nofd hangup garbage; do
	lender_mode "$mode"
	PRELOAD_ENV=(NEARFS_PRELOAD_SOCKET="$LEND_SOCK" NEARFS_PRELOAD_DEBUG=1)
	assert_eq "$MNT/big.bin" "$(fd_target "$MNT/big.bin")" \
		"descriptor of big.bin after a reply in mode $mode"
	assert_contains "$(cat "$WORK/probe.err")" \
		"${REPLY_MESSAGE[$mode]}" "debug output in mode $mode"
	PRELOAD_ENV=(NEARFS_PRELOAD_SOCKET="$LEND_SOCK")
	check_lent_read "cat in mode $mode" "$BIG_SHA" cat "$MNT/big.bin"
done
lender_mode ok

check "no request for empty files, write opens, directories and other paths"
check_not_lent "cat of an empty file" cat "$MNT/empty.txt"
check_not_lent "an open for reading and writing" \
	python3 -c 'open(__import__("sys").argv[1], "r+b").close()' \
	"$MNT/small.txt"
check_not_lent "ls -R of the mount" ls -R "$MNT"
check_not_lent "cat of an absolute path off the mount" cat "$SRC/big.bin"
check_not_lent "cat of a relative path off the mount" \
	bash -c 'cd "$1" && cat big.bin' bash "$SRC"

if command -v strace >/dev/null; then
	check "paths off the mount connect to no socket"
	strace_connects() {
		connects_added "$WORK/strace.log" "${PRELOAD_ENV[@]}" \
			LD_PRELOAD="$PRELOAD_LIB" -- "$@"
	}
	assert_eq 0 "$(strace_connects cat "$SRC/big.bin")" \
		"connect calls of cat of an absolute path off the mount"
	assert_eq 0 "$(strace_connects bash -c 'cd "$1" && cat small.txt' \
		bash "$SRC")" \
		"connect calls of cat of a relative path off the mount"
	assert_eq 1 "$(strace_connects cat "$MNT/big.bin")" \
		"connect calls of cat of a file on the mount"
	assert_contains "$(cat "$WORK/strace.log")" "$LEND_SOCK" \
		"connect of cat of a file on the mount"
else
	log "strace is missing: the check of connect calls is skipped"
fi

check "a mount made after the program started is found"
SRC2=$WORK/src2
MNT2=$WORK/mnt2
mkdir -p "$SRC2"
cp "$SRC/big.bin" "$SRC2/late.bin"
# The program opens the file until its descriptor points to a lent copy:
# the library reads the mount table again at most once a second.
coproc LATE {
	env "${PRELOAD_ENV[@]}" LD_PRELOAD="$PRELOAD_LIB" python3 -c '
import os, sys, time
print("ready", flush=True)
sys.stdin.readline()
for attempt in range(100):
    fd = os.open(sys.argv[1], os.O_RDONLY)
    target = os.readlink("/proc/self/fd/%d" % fd)
    os.close(fd)
    if target != sys.argv[1]:
        print("lent", flush=True)
        break
    time.sleep(0.1)
else:
    print("still on FUSE", flush=True)' "$MNT2/late.bin" 2>"$WORK/late.err"
}
CLEANUP_PIDS+=("$LATE_PID")
read -r line <&"${LATE[0]}"
assert_eq ready "$line" "first line of the program"
mount_nearfs "$SRC2" "$MNT2" "ttl=1h,attr_ttl=1h"
echo go >&"${LATE[1]}"
read -r line <&"${LATE[0]}"
assert_eq lent "$line" "descriptor of late.bin on the new mount"
