#!/usr/bin/env bash
# test_passthrough.sh - -o passthrough: reads of a complete copy bypass
# the daemon. A reader that passes through keeps its version while a
# writer or a newer version gets a new inode. Opens switch between
# passthrough and the page cache once the other mode's files are closed.
# Skipped where the kernel registers no backing file (Linux before 6.9,
# or a daemon without CAP_SYS_ADMIN).
. "$(dirname "$0")/../lib.sh"

ORIGIN=$WORK/origin
MNT=$WORK/mnt
mkdir -p "$ORIGIN"
random_file "$ORIGIN/big.bin" $(($(mib 5) + 123))
echo "version 1" >"$ORIGIN/small.txt"
cp "$ORIGIN/big.bin" "$WORK/big.expected"

mount_nearfs "$ORIGIN" "$MNT" "chunk_size=1M,ttl=2s,attr_ttl=1s,passthrough"

check "cold read through the page cache, warm reads pass through"
assert_eq "$(sha256 "$WORK/big.expected")" "$(sha256 "$MNT/big.bin")" \
	"sha256 of big.bin, cold"
lends=$(stat_field "$MNT" lends)
from_cache=$(stat_field "$MNT" bytes_from_cache)
assert_eq "$(sha256 "$WORK/big.expected")" "$(sha256 "$MNT/big.bin")" \
	"sha256 of big.bin, warm"
if [ "$(stat_field "$MNT" lends)" -eq "$lends" ]; then
	log "skip: no open passed through (kernel before 6.9, or not root)"
	exit 77
fi
assert_eq "$from_cache" "$(stat_field "$MNT" bytes_from_cache)" \
	"bytes_from_cache after a warm read that passed through"
python3 - "$MNT/big.bin" "$WORK/big.expected" <<'PY' ||
import mmap, sys
with open(sys.argv[1], "rb") as f, open(sys.argv[2], "rb") as g:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    sys.exit(0 if m[:] == g.read() else 1)
PY
	fail "mmap of big.bin does not read its content"
log "ok: mmap of big.bin reads its content"

check "a writer gets a new inode, the reader keeps its version"
cat "$MNT/small.txt" >/dev/null
python3 - "$MNT/small.txt" <<'PY' || fail "reader and writer (see above)"
import os, sys
path = sys.argv[1]
reader = os.open(path, os.O_RDONLY)
assert os.read(reader, 100) == b"version 1\n", "reader before the write"
writer = os.open(path, os.O_WRONLY | os.O_TRUNC)
os.write(writer, b"version 2\n")
os.close(writer)
os.lseek(reader, 0, os.SEEK_SET)
old = os.read(reader, 100)
assert old == b"version 1\n", "reader after the write: %r" % old
with open(path, "rb") as f:
    new = f.read()
assert new == b"version 2\n", "new open after the write: %r" % new
assert os.fstat(reader).st_ino != os.stat(path).st_ino, "same inode"
os.close(reader)
PY
log "ok: the reader kept version 1, a new open reads version 2"
assert_eq "version 2" "$(cat "$ORIGIN/small.txt")" "small.txt in the origin"

check "a newer version in the origin, with a reader open"
cat "$MNT/small.txt" >/dev/null
exec 3<"$MNT/small.txt"
echo "version 3" >"$ORIGIN/small.txt"
sleep 2.5
assert_eq "version 3" "$(cat "$MNT/small.txt")" "small.txt after ttl"
assert_eq "version 2" "$(cat <&3)" "the open reader after ttl"
exec 3<&-

check "page-cached and passthrough opens take turns"
echo "version 4" >>"$MNT/small.txt"
assert_eq "$(printf 'version 3\nversion 4')" "$(cat "$MNT/small.txt")" \
	"small.txt after an append through the mount"
exec 3>>"$MNT/small.txt"
assert_eq "$(printf 'version 3\nversion 4')" "$(cat "$MNT/small.txt")" \
	"small.txt read while open for writing"
exec 3>&-
lends=$(stat_field "$MNT" lends)
assert_eq "$(printf 'version 3\nversion 4')" "$(cat "$MNT/small.txt")" \
	"small.txt read after the writer closed"
assert_num "$(stat_field "$MNT" lends)" -gt "$lends" \
	"lends after the writer closed"

unmount_nearfs "$MNT"
