#!/usr/bin/env bash
# test_dir_origin.sh - a directory as the origin: reads, a second read
# served locally, a change behind the mount seen after ttl, writes that
# land in the origin directory, the control link in the mount root, and
# extended attribute requests that reach the daemon once per mount.
. "$(dirname "$0")/../lib.sh"

CHUNK=$(mib 1)
ORIGIN=$WORK/origin
MNT=$WORK/mnt
OUT=$WORK/out
mkdir -p "$ORIGIN/tree/sub" "$OUT"
random_file "$ORIGIN/big.bin" $(($(mib 9) + 4097))
random_file "$ORIGIN/mid.bin" $(($(mib 3) - 1))
echo "text in a tree" >"$ORIGIN/tree/a.txt"
seq 1 30000 >"$ORIGIN/tree/sub/numbers.txt"
ln -s a.txt "$ORIGIN/tree/link"
chmod 600 "$ORIGIN/mid.bin"
# A pristine copy to compare with, because the origin changes later.
cp -a "$ORIGIN" "$WORK/expected"

mount_nearfs "$ORIGIN" "$MNT" \
	"chunk_size=1M,cache_size=1G,ttl=4s,attr_ttl=1s,dir_ttl=1s"

check "listing, sizes, modes and a symlink"
assert_eq "big.bin mid.bin tree" "$(ls "$MNT" | xargs)" "ls of the root"
assert_eq "$(stat -c %s "$ORIGIN/big.bin")" "$(stat -c %s "$MNT/big.bin")" \
	"size of big.bin"
assert_eq 600 "$(stat -c %a "$MNT/mid.bin")" "mode of mid.bin"
assert_eq a.txt "$(readlink "$MNT/tree/link")" "target of tree/link"

check "dd at odd offsets, cold"
dd_cases=("4096 255 3" "1 1048573 7" "1 12345 777" "65536 7 40"
	"1000000 3 2")
for spec in "${dd_cases[@]}"; do
	read -r bs skip count <<<"$spec"
	dd if="$ORIGIN/big.bin" of="$OUT/dd.expected" bs="$bs" skip="$skip" \
		count="$count" status=none
	dd if="$MNT/big.bin" of="$OUT/dd.actual" bs="$bs" skip="$skip" \
		count="$count" status=none
	assert_same_file "$OUT/dd.expected" "$OUT/dd.actual" \
		"dd bs=$bs skip=$skip count=$count of big.bin"
done

check "full reads, tar and sha256sum"
cat "$MNT/big.bin" >"$OUT/big.bin"
assert_same_file "$ORIGIN/big.bin" "$OUT/big.bin" "cat of big.bin"
cp "$MNT/mid.bin" "$OUT/mid.bin"
assert_same_file "$ORIGIN/mid.bin" "$OUT/mid.bin" "cp of mid.bin"
tar -C "$ORIGIN" -cf - tree | tar -tvf - | sort >"$OUT/tar.expected"
tar -C "$MNT" -cf - tree | tar -tvf - | sort >"$OUT/tar.actual"
diff "$OUT/tar.expected" "$OUT/tar.actual" ||
	fail "tar -tv listing of tree (names, modes, sizes, mtimes) differs"
log "ok: tar -tv listing of tree equal"
(cd "$ORIGIN" && find . -type f | sort | xargs sha256sum) >"$OUT/sums"
(cd "$MNT" && sha256sum -c --quiet "$OUT/sums") ||
	fail "sha256sum -c over the mount reported mismatches"
log "ok: sha256 of every file equal"
gets=$(stat_field "$MNT" requests.GET)
assert_num "$gets" -gt 0 "requests.GET (origin reads) of the first pass"
misses=$(stat_field "$MNT" misses)
size_sum=$(($(stat -c %s "$ORIGIN/big.bin") + $(stat -c %s "$ORIGIN/mid.bin")))

check "second read is local"
mapfile -d '' mounted_files < <(find "$MNT" -type f -print0)
drop_page_cache "${mounted_files[@]}"
from_cache=$(stat_field "$MNT" bytes_from_cache)
(cd "$MNT" && sha256sum -c --quiet "$OUT/sums") ||
	fail "second sha256sum -c over the mount reported mismatches"
assert_eq "$gets" "$(stat_field "$MNT" requests.GET)" \
	"requests.GET after the second read"
assert_eq "$misses" "$(stat_field "$MNT" misses)" \
	"misses after the second read"
assert_num "$(stat_field "$MNT" bytes_from_cache)" -ge \
	$((from_cache + size_sum)) "bytes_from_cache grew by both big files"

check "change in the origin: old within ttl, new after ttl"
# Past the ttl, this read checks the origin, so the ttl starts here.
sleep 4.5
cat "$MNT/mid.bin" >/dev/null
random_file "$WORK/mid.v2" $(($(mib 3) - 1))
# Rewrite in place (same size, new mtime), as an editor saving would.
dd if="$WORK/mid.v2" of="$ORIGIN/mid.bin" conv=notrunc bs=1M status=none
drop_page_cache "$MNT/mid.bin"
assert_eq "$(sha256 "$WORK/expected/mid.bin")" "$(sha256 "$MNT/mid.bin")" \
	"sha256 of mid.bin within ttl: the cached version"
sleep 4.5
assert_eq "$(sha256 "$WORK/mid.v2")" "$(sha256 "$MNT/mid.bin")" \
	"sha256 of mid.bin after ttl"
assert_num "$(stat_field "$MNT" invalidations)" -ge 1 "invalidations"
echo "added behind the mount" >"$ORIGIN/tree/new.txt"
sleep 1.5
assert_eq "a.txt link new.txt sub" "$(ls "$MNT/tree" | xargs)" \
	"ls of tree after dir_ttl"

check "writes land in the origin directory"
random_file "$WORK/upload.bin" $(($(mib 2) + 3))
cp "$WORK/upload.bin" "$MNT/upload.bin"
assert_eq "$(sha256 "$WORK/upload.bin")" "$(sha256 "$ORIGIN/upload.bin")" \
	"sha256 of upload.bin in the origin"
echo hello >"$MNT/hello.txt"
echo more >>"$MNT/hello.txt"
assert_eq "$(printf 'hello\nmore')" "$(cat "$ORIGIN/hello.txt")" \
	"hello.txt in the origin"
sent=$(stat_field "$MNT" bytes_to_origin)
dd if="$WORK/mid.v2" of="$MNT/upload.bin" bs=1 seek=1048570 count=11 \
	conv=notrunc status=none
dd if="$WORK/mid.v2" of="$WORK/upload.bin" bs=1 seek=1048570 count=11 \
	conv=notrunc status=none
# The patch touches chunks 0 and 1 of three: only those are sent.
assert_eq $((sent + 2 * CHUNK)) "$(stat_field "$MNT" bytes_to_origin)" \
	"bytes_to_origin after patching 11 bytes across a chunk boundary"
assert_eq "$(sha256 "$WORK/upload.bin")" "$(sha256 "$ORIGIN/upload.bin")" \
	"upload.bin in the origin after a patch across a chunk boundary"
assert_eq "$(sha256 "$WORK/upload.bin")" "$(sha256 "$MNT/upload.bin")" \
	"upload.bin through the mount after the patch"
chmod 604 "$MNT/hello.txt"
assert_eq 604 "$(stat -c %a "$ORIGIN/hello.txt")" "mode of hello.txt"
touch -m -d @1600000000 "$MNT/hello.txt"
assert_eq 1600000000 "$(stat -c %Y "$ORIGIN/hello.txt")" \
	"mtime of hello.txt in the origin"
mkdir -p "$MNT/made/inner"
[ -d "$ORIGIN/made/inner" ] || fail "made/inner missing in the origin"
mv "$MNT/upload.bin" "$MNT/made/inner/moved.bin"
[ ! -e "$ORIGIN/upload.bin" ] || fail "upload.bin still in the origin"
assert_eq "$(sha256 "$WORK/upload.bin")" \
	"$(sha256 "$ORIGIN/made/inner/moved.bin")" "moved.bin in the origin"
mv "$MNT/made" "$MNT/renamed"
[ -f "$ORIGIN/renamed/inner/moved.bin" ] ||
	fail "renamed/inner/moved.bin missing in the origin"
rm "$MNT/hello.txt"
[ ! -e "$ORIGIN/hello.txt" ] || fail "hello.txt still in the origin"
rm -r "$MNT/renamed"
[ ! -e "$ORIGIN/renamed" ] || fail "renamed still in the origin"
log "ok: mkdir, mv and rm reached the origin"
assert_eq "big.bin mid.bin tree" "$(ls "$ORIGIN" | xargs)" \
	"ls of the origin at the end"

unmount_nearfs "$MNT"

# A second mount, so that the kernel has not yet learned that extended
# attributes are unsupported.  attr_ttl=0 sends every lookup and getattr
# of ls -l to the daemon.
mkdir "$ORIGIN/many"
for i in $(seq 200); do
	echo "file $i" >"$ORIGIN/many/f$i"
done
echo "an origin file hidden by the control link" >"$ORIGIN/.nearfs-ctl"
mount_nearfs "$ORIGIN" "$MNT" "chunk_size=1M,attr_ttl=0,log_level=debug"
LOG=${NEARFS_LOG[$MNT]}

check "control link: a symbolic link to the control socket"
sock=$(readlink "$MNT/.nearfs-ctl")
[ -S "$sock" ] || fail "target of $MNT/.nearfs-ctl is not a socket: '$sock'"
log "ok: $MNT/.nearfs-ctl -> $sock, a socket"
assert_eq "symbolic link" "$(stat -c %F "$MNT/.nearfs-ctl")" \
	"file type of .nearfs-ctl"
assert_eq 0 "$(ls -a "$MNT" | grep -c -x '\.nearfs-ctl' || true)" \
	"entries .nearfs-ctl in ls -a of the root"
ls -a "$MNT" >/dev/null
assert_eq 1 "$(grep -c "has an entry '.nearfs-ctl' in its root" "$LOG")" \
	"log lines about the hidden origin entry after two listings"

check "control link: nearfs-ctl stats from a path deep inside the mount"
"$NEARFS_CTL" stats "$MNT/tree/sub/numbers.txt" >"$WORK/deep.stats" ||
	fail "nearfs-ctl stats $MNT/tree/sub/numbers.txt failed"
assert_contains "$(cat "$WORK/deep.stats")" "mountpoint: $MNT" \
	"nearfs-ctl stats of tree/sub/numbers.txt"

check "control link: cannot be removed, renamed or written"
# must_fail ERROR CMD...: CMD fails, and its message contains ERROR.
must_fail() {
	local error=$1 status=0
	shift
	"$@" 2>"$WORK/must_fail.err" || status=$?
	assert_num "$status" -ne 0 "exit status of $*"
	assert_contains "$(cat "$WORK/must_fail.err")" "$error" \
		"error of $*"
}
must_fail "Operation not permitted" rm "$MNT/.nearfs-ctl"
must_fail "Operation not permitted" mv "$MNT/.nearfs-ctl" "$MNT/moved"
must_fail "Operation not permitted" mv "$MNT/tree/a.txt" "$MNT/.nearfs-ctl"
must_fail "Operation not permitted" touch -h "$MNT/.nearfs-ctl"
must_fail "Not a directory" rmdir "$MNT/.nearfs-ctl"
must_fail "File exists" mkdir "$MNT/.nearfs-ctl"
# A write follows the link to the socket, which cannot be opened.
must_fail "No such device or address" \
	sh -c 'echo x >"$1"' sh "$MNT/.nearfs-ctl"
assert_eq "$sock" "$(readlink "$MNT/.nearfs-ctl")" \
	"target of .nearfs-ctl afterwards"
assert_eq "text in a tree" "$(cat "$MNT/tree/a.txt")" \
	"tree/a.txt after the rename onto .nearfs-ctl failed"
assert_eq "an origin file hidden by the control link" \
	"$(cat "$ORIGIN/.nearfs-ctl")" "the origin's .nearfs-ctl afterwards"

check "extended attributes: no request reaches the daemon twice"
xattr_requests() {
	grep -c 'extended attributes are not supported' "$LOG" || true
}
ls -l "$MNT/many" >/dev/null
first=$(xattr_requests)
assert_num "$first" -ge 1 "xattr requests after the first ls -l"
assert_num "$first" -le 4 "xattr requests after the first ls -l"
ls -l "$MNT/many" >/dev/null
assert_eq "$first" "$(xattr_requests)" \
	"xattr requests after a second ls -l of 200 files"
echo "rewritten" >"$MNT/many/f1"
status=0
python3 -c 'import os, sys; os.getxattr(sys.argv[1], "user.test")' \
	"$MNT/many/f2" 2>"$WORK/getxattr.err" || status=$?
assert_num "$status" -ne 0 "exit status of getxattr user.test"
assert_contains "$(cat "$WORK/getxattr.err")" "Operation not supported" \
	"error of getxattr user.test"
assert_eq "$first" "$(xattr_requests)" \
	"xattr requests after a write and a getxattr"

unmount_nearfs "$MNT"

check "a change behind the mount after eviction drops the kernel's pages"
# The kernel may keep the pages of a file it read after the cache has
# evicted the file, and it drops no pages on a new mtime by itself.
mkdir -p "$WORK/origin-evict"
printf 'version one\n' >"$WORK/origin-evict/a.txt"
random_file "$WORK/origin-evict/big.bin" $(($(mib 4) + 100))
mount_nearfs "$WORK/origin-evict" "$MNT" \
	"cache_dir=$WORK/cache-evict,chunk_size=1M,cache_size=2M,ttl=1s,attr_ttl=1s"
assert_eq "version one" "$(cat "$MNT/a.txt")" "a.txt first read"
cat "$MNT/big.bin" >/dev/null
assert_eq 0 "$("$NEARFS_CTL" usage --json "$MNT" a.txt |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["files"])')" \
	"cached files at a.txt after reading big.bin"
# Same size, new mtime: a new version on the origin.
printf 'version two\n' >"$WORK/origin-evict/a.txt"
sleep 1.2
assert_eq "version two" "$(cat "$MNT/a.txt")" "a.txt after the change"
unmount_nearfs "$MNT"

check "rename exchange rejected, both files kept"
# The mount cannot swap its cached state of two paths, so it rejects
# RENAME_EXCHANGE with EINVAL, as over S3, and both files keep their
# content, the pending upload of B included.
mkdir -p "$WORK/origin-xchg"
mount_nearfs "$WORK/origin-xchg" "$MNT" \
	"cache_dir=$WORK/cache-xchg,write_mode=back,writeback_delay=1m"
echo a1 >"$MNT/A"
echo b1 >"$MNT/B"
"$NEARFS_CTL" flush "$MNT" >/dev/null
echo b2 >"$MNT/B"
XCHG=$(python3 -c '
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2
AT_FDCWD = -100
rc = libc.renameat2(AT_FDCWD, sys.argv[1].encode(), AT_FDCWD,
                    sys.argv[2].encode(), RENAME_EXCHANGE)
print(errno.errorcode[ctypes.get_errno()] if rc else "exchanged")' \
	"$MNT/A" "$MNT/B")
assert_eq EINVAL "$XCHG" "renameat2 RENAME_EXCHANGE of A and B"
assert_eq a1 "$(cat "$MNT/A")" "A on the mount after the exchange"
assert_eq b2 "$(cat "$MNT/B")" "B on the mount after the exchange"
"$NEARFS_CTL" flush "$MNT" >/dev/null
assert_eq a1 "$(cat "$WORK/origin-xchg/A")" "A in the origin after flush"
assert_eq b2 "$(cat "$WORK/origin-xchg/B")" "B in the origin after flush"
unmount_nearfs "$MNT"

# A write through the mount to a file that another program changed or
# removed on the origin since the mount read it: the mount writes its
# version whole (the last upload wins, as over S3) and logs why.
for mode in through back; do
	check "$mode: a write over a file changed or removed behind the mount"
	ORIG=$WORK/origin-behind-$mode
	mkdir -p "$ORIG"
	random_file "$ORIG/gone" 300000
	random_file "$ORIG/other" 300000
	mount_nearfs "$ORIG" "$MNT" "cache_dir=$WORK/cache-behind-$mode,$(
		)chunk_size=64K,ttl=1h,attr_ttl=1h,write_mode=$mode,$(
		)writeback_delay=1m"
	cat "$MNT/gone" "$MNT/other" >/dev/null
	cp "$ORIG/gone" "$WORK/gone.want"
	cp "$ORIG/other" "$WORK/other.want"
	rm "$ORIG/gone"
	printf 'elsewhere\n' >"$ORIG/other"
	for f in gone other; do
		printf 'XYZ' | dd of="$MNT/$f" bs=1 seek=70000 conv=notrunc \
			status=none || fail "$mode: write to $f failed"
		printf 'XYZ' | dd of="$WORK/$f.want" bs=1 seek=70000 \
			conv=notrunc status=none
	done
	[ "$mode" = back ] && "$NEARFS_CTL" flush "$MNT" >/dev/null
	for f in gone other; do
		assert_same_file "$WORK/$f.want" "$ORIG/$f" \
			"$mode: $f in the origin after the write"
		assert_contains "$(cat "${NEARFS_LOG[$MNT]}")" \
			"$f changed or was removed on the origin since this mount read it" \
			"$mode: warning about $f"
	done
	unmount_nearfs "$MNT"
done
