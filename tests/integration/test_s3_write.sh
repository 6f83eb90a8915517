#!/usr/bin/env bash
# test_s3_write.sh - writes through a mount with a prefix (cp, dd, echo,
# mkdir, mv, rm, chmod, touch) land in the bucket with the right bytes and
# the x-amz-meta-mode/uid/gid/mtime metadata.
. "$(dirname "$0")/../lib.sh"

SRC=$WORK/src
REF=$WORK/ref
MNT=$WORK/mnt
mkdir -p "$SRC" "$REF"
random_file "$SRC/big.bin" $(($(mib 5) + 7))
random_file "$SRC/patch.bin" 100000

start_s3
s3 mb data
s3 put-bytes data outside.txt "not under the prefix"

mount_nearfs s3://data/base "$MNT" "chunk_size=1M,ttl=1s,attr_ttl=1s"

# object_sha KEY: sha256 of the object as the bucket stores it.
object_sha() {
	s3 get data "$1" | sha256sum | cut -d' ' -f1
}

# object_meta KEY FIELD: one user metadata value (x-amz-meta-FIELD).
object_meta() {
	s3 head data "$1" | python3 -c '
import json, sys
print(json.load(sys.stdin)["metadata"].get(sys.argv[1], ""))' "$2"
}

# mode_bits VALUE: the permission bits of a stored mode, read as octal
# ("644", "0100644") or decimal ("33188") depending on how it is written.
mode_bits() {
	python3 -c '
import sys
text = sys.argv[1]
value = int(text, 8) if text.startswith("0") or len(text) <= 4 \
    else int(text)
print("%o" % (value & 0o7777))' "$1"
}

# mtime_seconds VALUE: whole seconds of a stored mtime written as seconds,
# seconds with a fraction, or nanoseconds.
mtime_seconds() {
	python3 -c '
import sys
value = float(sys.argv[1])
while value > 1e11:
    value /= 1000
print(int(value))' "$1"
}

object_missing() {
	local status=0
	s3 head data "$1" >/dev/null 2>&1 || status=$?
	[ "$status" -eq 3 ]
}

check "cp of a multi-chunk file"
cp "$SRC/big.bin" "$MNT/big.bin"
assert_eq "$(sha256 "$SRC/big.bin")" "$(object_sha base/big.bin)" \
	"sha256 of object base/big.bin"
assert_eq "$(sha256 "$SRC/big.bin")" "$(sha256 "$MNT/big.bin")" \
	"sha256 of big.bin read back through the mount"
for field in mode uid gid mtime; do
	assert_ne "" "$(object_meta base/big.bin "$field")" \
		"x-amz-meta-$field of base/big.bin"
done
assert_eq "$(id -u)" "$(object_meta base/big.bin uid)" \
	"x-amz-meta-uid of base/big.bin"
assert_eq "$(id -g)" "$(object_meta base/big.bin gid)" \
	"x-amz-meta-gid of base/big.bin"
assert_num $(($(stat_field "$MNT" requests.PUT) + \
	$(stat_field "$MNT" requests.MULTIPART))) -gt 0 \
	"requests.PUT + requests.MULTIPART"

check "cp of a file larger than the multipart part size"
# 40 MiB is more than two parts of the default 16 MiB part size.
random_file "$SRC/huge.bin" $(($(mib 40) + 3))
multipart=$(stat_field "$MNT" requests.MULTIPART)
cp "$SRC/huge.bin" "$MNT/huge.bin"
assert_eq "$(sha256 "$SRC/huge.bin")" "$(object_sha base/huge.bin)" \
	"sha256 of object base/huge.bin"
# initiate, three parts, complete
assert_num "$(stat_field "$MNT" requests.MULTIPART)" -ge $((multipart + 5)) \
	"requests.MULTIPART after uploading huge.bin"
assert_eq "$(id -u)" "$(object_meta base/huge.bin uid)" \
	"x-amz-meta-uid of the multipart object base/huge.bin"
rm "$MNT/huge.bin"
object_missing base/huge.bin || fail "base/huge.bin exists after rm"

check "chmod and touch store mode and mtime"
chmod 640 "$MNT/big.bin"
touch -m -d @1600000000 "$MNT/big.bin"
assert_eq 640 "$(mode_bits "$(object_meta base/big.bin mode)")" \
	"permission bits in x-amz-meta-mode"
assert_eq 1600000000 "$(mtime_seconds "$(object_meta base/big.bin mtime)")" \
	"x-amz-meta-mtime after touch -d @1600000000"
assert_eq "$(sha256 "$SRC/big.bin")" "$(object_sha base/big.bin)" \
	"content of base/big.bin after the metadata changes"
sleep 1.2
assert_eq 640 "$(stat -c %a "$MNT/big.bin")" "mode seen through the mount"
assert_eq 1600000000 "$(stat -c %Y "$MNT/big.bin")" \
	"mtime seen through the mount"
# x-amz-meta-mtime keeps whole seconds, and the mount shows what it kept.
touch -m -d @1600000001.25 "$MNT/big.bin"
assert_eq 1600000001.000000000 "$(stat -c %.9Y "$MNT/big.bin")" \
	"mtime with a fraction, seen through the mount"

check "chmod of a file with unsaved writes"
cp "$SRC/big.bin" "$REF/unsaved.bin"
cp "$SRC/big.bin" "$MNT/unsaved.bin"
python3 - "$MNT/unsaved.bin" "$REF/unsaved.bin" <<'PY' ||
import os, sys
for path in sys.argv[1:]:
    fd = os.open(path, os.O_WRONLY)
    os.pwrite(fd, b"unsaved", 2 * 1024 * 1024)
    os.chmod(path, 0o600)
    os.close(fd)
PY
	fail "writing unsaved.bin failed"
assert_eq "$(sha256 "$REF/unsaved.bin")" "$(object_sha base/unsaved.bin)" \
	"sha256 of object base/unsaved.bin"
assert_eq 600 "$(mode_bits "$(object_meta base/unsaved.bin mode)")" \
	"permission bits of base/unsaved.bin"
rm "$MNT/unsaved.bin"

check "chmod after another client changed a cached file"
# The copy that stores the mode goes to the other client's bytes, so the
# cached bytes must not take the ETag it returns.
printf AAAA >"$MNT/other.txt"
assert_eq AAAA "$(cat "$MNT/other.txt")" "other.txt before the change"
s3 put-bytes data base/other.txt BBBB
chmod 600 "$MNT/other.txt"
assert_eq 600 "$(mode_bits "$(object_meta base/other.txt mode)")" \
	"permission bits of base/other.txt"
sleep 1.2
assert_eq BBBB "$(cat "$MNT/other.txt")" "other.txt after ttl"
rm "$MNT/other.txt"

check "dd writes: new file, then patches in place"
# The same dd commands on a local file give the expected bytes.
for target in "$REF/dd.bin" "$MNT/dd.bin"; do
	dd if="$SRC/big.bin" of="$target" bs=4096 count=300 status=none
	dd if="$SRC/patch.bin" of="$target" bs=1 seek=5001 count=777 \
		conv=notrunc status=none
	dd if="$SRC/patch.bin" of="$target" bs=65536 seek=10 count=1 \
		conv=notrunc status=none
	dd if="$SRC/patch.bin" of="$target" bs=4096 seek=1000 count=3 \
		conv=notrunc status=none
done
assert_eq "$(stat -c %s "$REF/dd.bin")" "$(stat -c %s "$MNT/dd.bin")" \
	"size of dd.bin (a hole extended the file)"
assert_eq "$(sha256 "$REF/dd.bin")" "$(object_sha base/dd.bin)" \
	"sha256 of object base/dd.bin"
assert_eq "$(sha256 "$REF/dd.bin")" "$(sha256 "$MNT/dd.bin")" \
	"sha256 of dd.bin read back through the mount"

check "echo > and >>"
puts=$(stat_field "$MNT" requests.PUT)
echo hello >"$MNT/hello.txt"
assert_eq hello "$(s3 get data base/hello.txt)" "object base/hello.txt"
# The shell's open, dup2 and close before the write cost no upload.
assert_eq $((puts + 1)) "$(stat_field "$MNT" requests.PUT)" \
	"requests.PUT after echo > into a new file"
echo more >>"$MNT/hello.txt"
assert_eq "$(printf 'hello\nmore')" "$(s3 get data base/hello.txt)" \
	"object base/hello.txt after >>"
echo replaced >"$MNT/hello.txt"
assert_eq replaced "$(s3 get data base/hello.txt)" \
	"object base/hello.txt after > truncated it"
: >"$MNT/empty.txt"
assert_eq 0 "$(s3 head data base/empty.txt | python3 -c '
import json, sys; print(json.load(sys.stdin)["size"])')" \
	"size of object base/empty.txt"

check "mkdir, files inside, listing"
mkdir "$MNT/dir1"
mkdir -p "$MNT/dir1/dir2"
[ -d "$MNT/dir1/dir2" ] || fail "dir1/dir2 is not a directory"
cp "$SRC/patch.bin" "$MNT/dir1/dir2/patch.bin"
assert_eq "$(sha256 "$SRC/patch.bin")" "$(object_sha base/dir1/dir2/patch.bin)" \
	"sha256 of object base/dir1/dir2/patch.bin"
assert_eq "dir2" "$(ls "$MNT/dir1" | xargs)" "ls of dir1"
mkdir "$MNT/emptydir"
assert_ne "" "$(s3 ls data base/emptydir)" \
	"objects under base/emptydir (a marker keeps the empty directory)"

check "mv of a file: the object moves to the new key only"
mv "$MNT/big.bin" "$MNT/dir1/moved.bin"
assert_eq "$(sha256 "$SRC/big.bin")" "$(object_sha base/dir1/moved.bin)" \
	"sha256 of object base/dir1/moved.bin"
object_missing base/big.bin || fail "base/big.bin still exists after mv"
log "ok: base/big.bin is gone"
assert_eq 640 "$(mode_bits "$(object_meta base/dir1/moved.bin mode)")" \
	"x-amz-meta-mode kept by mv"
[ ! -e "$MNT/big.bin" ] || fail "big.bin still shows in the mount after mv"
assert_eq "$(sha256 "$SRC/big.bin")" "$(sha256 "$MNT/dir1/moved.bin")" \
	"sha256 of dir1/moved.bin through the mount"

check "mv of a directory moves every key"
mv "$MNT/dir1" "$MNT/dir3"
assert_eq "" "$(s3 ls data base/dir1/)" "objects left under base/dir1/"
assert_eq "$(sha256 "$SRC/patch.bin")" "$(object_sha base/dir3/dir2/patch.bin)" \
	"sha256 of object base/dir3/dir2/patch.bin"
assert_eq "$(sha256 "$SRC/big.bin")" "$(object_sha base/dir3/moved.bin)" \
	"sha256 of object base/dir3/moved.bin"
assert_eq "dir2 moved.bin" "$(ls "$MNT/dir3" | xargs)" "ls of dir3"

check "rm and rmdir delete the objects"
rm "$MNT/hello.txt"
object_missing base/hello.txt || fail "base/hello.txt exists after rm"
log "ok: base/hello.txt is gone"
rmdir "$MNT/emptydir"
assert_eq "" "$(s3 ls data base/emptydir)" "objects under base/emptydir"
if rmdir "$MNT/dir3" 2>"$WORK/rmdir.err"; then
	fail "rmdir of the non-empty dir3 succeeded"
fi
assert_contains "$(cat "$WORK/rmdir.err")" "not empty" "rmdir error"
rm -r "$MNT/dir3"
assert_eq "" "$(s3 ls data base/dir3)" "objects under base/dir3 after rm -r"

check "the bucket holds exactly the expected keys"
assert_eq "base/dd.bin base/empty.txt outside.txt" \
	"$(s3 ls data | cut -d' ' -f2 | sort | xargs)" "keys in the bucket"
assert_eq "dd.bin empty.txt" "$(ls "$MNT" | xargs)" "ls of the mount root"

check "a fresh mount sees what was written"
unmount_nearfs "$MNT"
mount_nearfs s3://data/base "$MNT" "cache_dir=$WORK/cache2,chunk_size=1M"
assert_eq "$(sha256 "$REF/dd.bin")" "$(sha256 "$MNT/dd.bin")" \
	"sha256 of dd.bin through a fresh mount"

check "a listing keeps the mode, mtime and link type that a stat found"
# A listing carries no x-amz-meta-* fields: what a HEAD returned for
# the same version must survive it.
chmod 640 "$MNT/dd.bin"
touch -m -d @1500000000 "$MNT/dd.bin"
ln -s dd.bin "$MNT/link"
unmount_nearfs "$MNT"
mount_nearfs s3://data/base "$MNT" \
	"cache_dir=$WORK/cache3,attr_ttl=1s,dir_ttl=1m"
assert_eq "640 1500000000" "$(stat -c '%a %Y' "$MNT/dd.bin")" \
	"mode and mtime of dd.bin before any listing"
assert_eq "symbolic link" "$(stat -c %F "$MNT/link")" \
	"type of link before any listing"
ls -l "$MNT" >/dev/null
# Past attr_ttl the kernel sends GETATTR again, and the daemon replies
# from the listing.
sleep 1.2
assert_eq "640 1500000000" "$(stat -c '%a %Y' "$MNT/dd.bin")" \
	"mode and mtime of dd.bin after ls -l"
assert_eq "symbolic link" "$(stat -c %F "$MNT/link")" \
	"type of link after ls -l"
assert_eq dd.bin "$(readlink "$MNT/link")" "target of link after ls -l"
unmount_nearfs "$MNT"

check "a link this mount created keeps its type in the first listing"
# The folder exists in the bucket but this mount has not listed it.
s3 put-bytes data base/t/x.sh "#!/bin/sh"
mount_nearfs s3://data/base "$MNT" \
	"cache_dir=$WORK/cache4,attr_ttl=1s,dir_ttl=1m"
ln -s x.sh "$MNT/t/fresh"
LISTED=$(ls -l "$MNT/t" | grep ' fresh')
assert_eq l "${LISTED:0:1}" "file type of fresh in the first ls -l"
sleep 1.2
assert_eq "symbolic link" "$(stat -c %F "$MNT/t/fresh")" \
	"type of fresh past attr_ttl"
assert_eq x.sh "$(readlink "$MNT/t/fresh")" "target of fresh"
"$NEARFS_CTL" forget "$MNT" t/fresh >/dev/null
assert_eq "symbolic link" "$(stat -c %F "$MNT/t/fresh")" \
	"type of fresh after nearfs-ctl forget"
unmount_nearfs "$MNT"

check "links keep their type when their folder is renamed"
# The listing of the moved folder carries no mode, so the attributes that
# the mount had for the old paths must follow the rename.
mount_nearfs s3://data/base "$MNT" \
	"cache_dir=$WORK/cache_mv,attr_ttl=1s,dir_ttl=1m"
mkdir -p "$MNT/mvsrc/sub"
ln -s target "$MNT/mvsrc/top"
ln -s ../x "$MNT/mvsrc/sub/deep"
echo data >"$MNT/mvsrc/f"
chmod 600 "$MNT/mvsrc/f"
mv "$MNT/mvsrc" "$MNT/mvdst"
LISTED=$(ls -l "$MNT/mvdst" | grep ' top')
assert_eq l "${LISTED:0:1}" "file type of top in the first ls -l after mv"
LISTED=$(ls -l "$MNT/mvdst/sub" | grep ' deep')
assert_eq l "${LISTED:0:1}" "file type of sub/deep in the first ls -l after mv"
assert_eq 600 "$(stat -c %a "$MNT/mvdst/f")" "mode of f after mv"
assert_eq target "$(readlink "$MNT/mvdst/top")" "target of top after mv"
assert_eq ../x "$(readlink "$MNT/mvdst/sub/deep")" "target of sub/deep after mv"
unmount_nearfs "$MNT"

check "a link that s3fs stored changes type without EIO"
# A listing shows it as a regular file.  Once its copy is forgotten and
# the listing is past dir_ttl, a HEAD shows the link.  The path then gets
# a new inode, and the inode of the open descriptor keeps its type.
s3 put-bytes data base/s3fs/lnk "target.txt" --meta mode=$((8#120777))
s3 put-bytes data base/s3fs/target.txt "hello"
mount_nearfs s3://data/base "$MNT" \
	"cache_dir=$WORK/cache6,attr_ttl=1s,dir_ttl=1s"
LISTED=$(ls -l "$MNT/s3fs" | grep ' lnk')
assert_eq - "${LISTED:0:1}" "file type of lnk in the first ls -l"
exec 3<"$MNT/s3fs/lnk"
assert_eq target.txt "$(cat <&3)" "bytes read through the open lnk"
"$NEARFS_CTL" forget "$MNT" s3fs/lnk >/dev/null
sleep 1.2
fd_type() {
	python3 -c 'import os, stat; print(stat.filemode(os.fstat(3).st_mode))'
}
assert_eq -rw-r--r-- "$(fd_type)" "fstat of the open lnk past attr_ttl"
assert_eq "symbolic link" "$(stat -c %F "$MNT/s3fs/lnk")" \
	"type of lnk past dir_ttl"
assert_eq target.txt "$(readlink "$MNT/s3fs/lnk")" "target of lnk"
assert_eq hello "$(cat "$MNT/s3fs/lnk")" "cat through lnk"
assert_eq -rw-r--r-- "$(fd_type)" "fstat of the open lnk after the stat"
exec 3<&-
unmount_nearfs "$MNT"

check "rmdir keeps a folder key that holds bytes"
s3 put-bytes data base/trail/ "0123456789abcdef"
s3 put-bytes data base/bare/ ""
mount_nearfs s3://data/base "$MNT" "cache_dir=$WORK/cache5"
if rmdir "$MNT/trail" 2>"$WORK/rmdir.err"; then
	fail "rmdir of a folder whose key holds 16 bytes succeeded"
fi
assert_contains "$(cat "$WORK/rmdir.err")" "Directory not empty" \
	"the message of rmdir"
assert_eq 0123456789abcdef "$(s3 get data base/trail/)" \
	"bytes of the key base/trail/ after rmdir"
wait_for_line "${NEARFS_LOG[$MNT]}" "contains 16 bytes"
rmdir "$MNT/bare" || fail "rmdir of a folder with an empty key failed"
assert_eq "" "$(s3 ls data base/bare/)" "keys under base/bare/ after rmdir"
unmount_nearfs "$MNT"
