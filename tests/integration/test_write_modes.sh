#!/usr/bin/env bash
# test_write_modes.sh - every kind of write, in each write mode (through,
# back, around) over each origin (S3 on the test server, a directory).
# The content read through the mount and the content the origin stores
# must equal a reference made by the same operations on a local directory.
#
# Back mode runs with writeback_delay=60s: before `nearfs-ctl flush` the
# origin must still lack the new content while the stats show pending
# uploads, and after the flush it must hold it.  Each operation runs in a
# subshell, so that one failing operation does not hide the others; the
# test fails at the end when any of them failed.
#
# WRITE_MODES_PASSES lists the passes as ORIGIN/MODE, with ORIGIN s3 or
# dir and MODE through, back or around (default: all six).
. "$(dirname "$0")/../lib.sh"

SRC=$WORK/src
PYHELP=$WORK/ops.py
BIG_SIZE=$(($(mib 9) + 4097))
mkdir -p "$SRC"
random_file "$SRC/big.bin" "$BIG_SIZE"
random_file "$SRC/patch.bin" 300000
random_file "$SRC/mid.bin" $(($(mib 2) + 512 * 1024 + 11))
random_file "$SRC/small.bin" 70000

# The file operations that shell tools cannot do.  Each prints what it
# observed, so the output on the mount can be compared with the output on
# the reference directory.
cat >"$PYHELP" <<'PY'
import hashlib, mmap, os, random, sys, time


def data(seed, size):
    return random.Random(seed).randbytes(size)


def digest(blob):
    return hashlib.sha256(blob).hexdigest()


def op_append(path):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.write(fd, data(1, 5000))
    os.close(fd)
    with open(path, "ab") as f:
        f.write(b"appended by python\n" * 100)


def op_hole(path, offset):
    with open(path, "r+b") as f:
        f.seek(int(offset))
        f.write(b"after the hole\n")


def op_ftruncate(path):
    fd = os.open(path, os.O_RDWR)
    os.pwrite(fd, data(2, 3 << 20), 0)
    os.ftruncate(fd, 1000000)
    print("size after shrink", os.fstat(fd).st_size)
    blob = os.pread(fd, 2 << 20, 0)
    print("read after shrink", len(blob), digest(blob))
    os.ftruncate(fd, 2500000)
    print("size after grow", os.fstat(fd).st_size)
    blob = os.pread(fd, 2 << 20, 900000)
    print("read after grow", len(blob), digest(blob))
    print("zeros after grow", os.pread(fd, 1500000, 1000000) ==
          bytes(1500000))
    os.pwrite(fd, b"written after the grow", 2400000)
    blob = os.pread(fd, 3 << 20, 0)
    print("read after write", len(blob), digest(blob))
    os.close(fd)


def op_rename_open(old, new):
    with open(old, "wb") as f:
        f.write(data(3, 1500000))
        f.flush()
        os.rename(old, new)
        f.write(data(4, 700000))
    print("old name exists", os.path.exists(old))


def op_unlink_open(path):
    with open(path, "r+b") as f:
        os.unlink(path)
        print("name exists after unlink", os.path.exists(path))
        print("read after unlink", digest(f.read()))
        f.write(b"written after the unlink\n" * 1000)
        f.flush()
        print("read after write", digest(os.pread(f.fileno(), 1 << 24, 0)))
        print("listed", os.path.basename(path) in
              os.listdir(os.path.dirname(path)))
    print("name exists after close", os.path.exists(path))


def op_mmap(path):
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        m = mmap.mmap(f.fileno(), 0, mmap.MAP_SHARED)
        m[10:20] = b"x" * 10
        m[1048570:1048600] = b"across a chunk boundary......."
        m[size - 5:size] = b"last."
        m.flush()
        m.close()


def op_writer(path, start, count, seed):
    """Write count 64 KiB blocks from block start, slowly."""
    block = 65536
    with open(path, "r+b") as f:
        for i in range(int(count)):
            f.seek((int(start) + i) * block)
            f.write(data(int(seed) * 1000 + i, block))
            f.flush()
            time.sleep(0.01)


def op_create_rename(folder):
    """Create and close files without a write, then rename each at once
    and write to it under the new name.  The kernel sends the release of
    the created file, which stores it, after close returned, so it races
    with the rename."""
    os.makedirs(folder, exist_ok=True)
    failed = 0
    for i in range(10):
        old = os.path.join(folder, "new%d" % i)
        new = os.path.join(folder, "renamed%d" % i)
        open(old, "wb").close()
        os.rename(old, new)
        fd = os.open(new, os.O_RDWR)
        os.pwrite(fd, data(10 + i, 1000), 70000)
        try:
            os.close(fd)
        except OSError as exc:
            print("close of", os.path.basename(new), "failed:", exc)
            failed += 1
    print("failed closes", failed)


def op_create_unlink(folder):
    """Create and close files without a write, then unlink each at once."""
    os.makedirs(folder, exist_ok=True)
    for i in range(10):
        path = os.path.join(folder, "gone%d" % i)
        open(path, "wb").close()
        os.unlink(path)
    print("listed", sorted(os.listdir(folder)))


globals()["op_" + sys.argv[1].replace("-", "_")](*sys.argv[2:])
PY

pyop() {
	python3 "$PYHELP" "$@"
}

# Globals of the current pass.
KIND=
MODE=
REF=
MNT=
ORIGIN_DIR=
PREFIX=
FAILED_OPS=()

# ---- what the origin stores

# origin_sums NAME...: sha256 of each file in the origin, or "missing".
origin_sums() {
	local name
	if [ "$KIND" = dir ]; then
		for name in "$@"; do
			if [ -f "$ORIGIN_DIR/$name" ]; then
				sha256 "$ORIGIN_DIR/$name"
			else
				echo missing
			fi
		done
		return
	fi
	python3 - "$PREFIX" "$@" <<'PY'
import hashlib, os, sys
import botocore.config, botocore.session
client = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["NEARFS_TEST_ENDPOINT"],
    region_name="us-east-1",
    config=botocore.config.Config(s3={"addressing_style": "path"}))
prefix = sys.argv[1]
for name in sys.argv[2:]:
    try:
        body = client.get_object(Bucket="data", Key=prefix + "/" + name)
    except client.exceptions.NoSuchKey:
        print("missing")
        continue
    print(hashlib.sha256(body["Body"].read()).hexdigest())
PY
}

origin_sha() {
	origin_sums "$1"
}

# object_exists KEY: the bucket has KEY (below the prefix of the pass).
object_exists() {
	local status=0
	s3 head data "$PREFIX/$1" >/dev/null 2>&1 || status=$?
	[ "$status" -eq 0 ] && return 0
	[ "$status" -eq 3 ] && return 1
	fail "s3cli.py head data $PREFIX/$1 failed with status $status"
}

# origin_keys DIR: the keys below DIR/ in the origin, relative to DIR,
# sorted, on one line.
origin_keys() {
	if [ "$KIND" = dir ]; then
		(cd "$ORIGIN_DIR/$1" && find . -type f | sed 's|^\./||' |
			sort | xargs)
	else
		# Keys ending in / are directory markers, not files.
		s3 ls data "$PREFIX/$1/" | cut -d' ' -f2 | grep -v '/$' |
			sed "s|^$PREFIX/$1/||" | sort | xargs
	fi
}

# ---- checks shared by the operations

# flush_mount: upload what back mode holds back; a no-op in other modes.
flush_mount() {
	[ "$MODE" = back ] || return 0
	local status=0
	"$NEARFS_CTL" flush "$MNT" >"$WORK/flush.out" 2>&1 || status=$?
	[ "$status" -eq 0 ] ||
		fail "nearfs-ctl flush $MNT exited with $status:" \
			"$(cat "$WORK/flush.out")"
	log "ok: nearfs-ctl flush $MNT"
}

# expect_held_back NAME...: in back mode, before a flush, the origin does
# not have the reference content of any NAME yet, and the stats show
# pending uploads.  A no-op in other modes.
expect_held_back() {
	[ "$MODE" = back ] || return 0
	local name sums i=0
	mapfile -t sums < <(origin_sums "$@")
	for name in "$@"; do
		assert_ne "$(sha256 "$REF/$name")" "${sums[$i]}" \
			"$name in the origin before the flush (held back)"
		i=$((i + 1))
	done
	assert_num "$(stat_field "$MNT" uploads_pending)" -gt 0 \
		"uploads_pending before the flush"
	if [ "$(cat "${@/#/$REF/}" | wc -c)" -gt 0 ]; then
		assert_num "$(stat_field "$MNT" dirty_bytes)" -gt 0 \
			"dirty_bytes before the flush"
	fi
}

# expect_mount_content NAME...: the mount shows the reference content.
expect_mount_content() {
	local name
	for name in "$@"; do
		[ -f "$MNT/$name" ] || fail "$name is missing in the mount"
		drop_page_cache "$MNT/$name"
		assert_eq "$(sha256 "$REF/$name")" "$(sha256 "$MNT/$name")" \
			"sha256 of $name through the mount"
	done
}

# expect_origin_content NAME...: the origin stores the reference content.
expect_origin_content() {
	local name sums i=0
	mapfile -t sums < <(origin_sums "$@")
	for name in "$@"; do
		assert_eq "$(sha256 "$REF/$name")" "${sums[$i]}" \
			"sha256 of $name in the origin"
		i=$((i + 1))
	done
}

# wait_origin_content NAME...: expect_origin_content, after waiting up
# to 10 s for the origin to have every NAME.  A created file that nothing
# was written to reaches the origin at its last close, which the kernel
# sends as RELEASE after close() has returned.
wait_origin_content() {
	local name want i
	want=$(for name in "$@"; do sha256 "$REF/$name"; done)
	for i in $(seq 100); do
		[ "$(origin_sums "$@")" = "$want" ] && break
		sleep 0.1
	done
	expect_origin_content "$@"
}

# expect_content NAME...: through the mount, held back in back mode,
# then in the origin after the flush.
expect_content() {
	expect_mount_content "$@"
	expect_held_back "$@"
	flush_mount
	expect_origin_content "$@"
}

# expect_gone NAME...: neither the mount nor the origin has NAME.
expect_gone() {
	local name
	for name in "$@"; do
		[ ! -e "$MNT/$name" ] || fail "$name still exists in the mount"
		assert_eq missing "$(origin_sha "$name")" \
			"$name in the origin"
	done
}

# on_both COMMAND...: run COMMAND with ROOT set to the reference
# directory, then to the mount.
on_both() {
	local root
	for root in "$REF" "$MNT"; do
		ROOT=$root "$@"
	done
}

# same_output DESCRIPTION PYOP ARGS...: run a python operation on the
# reference and on the mount, with ARGS relative to each root.  Both runs
# must print the same lines.
same_output() {
	local what=$1 op=$2 args root
	shift 2
	for root in "$REF" "$MNT"; do
		args=()
		for a in "$@"; do
			args+=("$root/$a")
		done
		pyop "$op" "${args[@]}" >"$WORK/out.$(basename "$root")" ||
			fail "$op on $root failed"
	done
	diff "$WORK/out.$(basename "$REF")" "$WORK/out.$(basename "$MNT")" ||
		fail "$what: the mount printed other values than the" \
			"reference directory"
	log "ok: $what: $(tr '\n' ';' <"$WORK/out.$(basename "$MNT")")"
}

# ---- operations

op_random_writes() {
	local gets chunks spec
	check "$KIND/$MODE: dd conv=notrunc at several offsets of big.bin"
	cat "$MNT/big.bin" >/dev/null
	gets=$(stat_field "$MNT" requests.GET)
	chunks=$(stat_field "$MNT" chunks_cached)
	for spec in "0 4096" "1048570 30" "4718593 100000" \
		"$(($(mib 9) + 4000)) 200"; do
		read -r off len <<<"$spec"
		on_both sh -c 'dd if="$1" of="$ROOT/big.bin" bs=1M \
			iflag=count_bytes oflag=seek_bytes seek="$2" \
			count="$3" conv=notrunc status=none' - \
			"$SRC/patch.bin" "$off" "$len"
		if [ "$off" = 0 ]; then
			assert_eq "$gets" "$(stat_field "$MNT" requests.GET)" \
				"requests.GET after the first write into" \
				"the fully read big.bin"
		fi
		if [ "$MODE" = around ]; then
			assert_num "$(stat_field "$MNT" chunks_cached)" \
				-le "$chunks" \
				"chunks_cached after the write at $off"
		fi
	done
	# Around mode drops the cached copy at each close, so each later
	# partial write fetches the rest of the file again for the upload.
	if [ "$MODE" != around ]; then
		assert_eq "$gets" "$(stat_field "$MNT" requests.GET)" \
			"requests.GET after all writes into big.bin"
	fi
	expect_content big.bin
	if [ "$MODE" = around ]; then
		assert_num "$(stat_field "$MNT" requests.GET)" -gt "$gets" \
			"requests.GET after reading big.bin written around the cache"
	else
		assert_eq "$gets" "$(stat_field "$MNT" requests.GET)" \
			"requests.GET after reading the written big.bin"
	fi
}

op_append() {
	local chunks
	check "$KIND/$MODE: append with >> and O_APPEND"
	chunks=$(stat_field "$MNT" chunks_cached)
	on_both sh -c 'echo first >"$ROOT/append.txt"'
	on_both sh -c 'seq 1 20000 >>"$ROOT/append.txt"'
	on_both sh -c 'python3 "$1" append "$ROOT/append.txt"' - "$PYHELP"
	if [ "$MODE" = around ]; then
		assert_num "$(stat_field "$MNT" chunks_cached)" -le "$chunks" \
			"chunks_cached after writing append.txt"
	fi
	expect_content append.txt
}

op_hole() {
	check "$KIND/$MODE: write past EOF leaves a zero-filled hole"
	on_both sh -c 'cp "$1" "$ROOT/hole.bin"' - "$SRC/small.bin"
	flush_mount
	on_both sh -c 'python3 "$1" hole "$ROOT/hole.bin" 3145733' - "$PYHELP"
	assert_eq $((3145733 + 15)) "$(stat -c %s "$MNT/hole.bin")" \
		"size of hole.bin"
	expect_content hole.bin
}

op_truncate() {
	local size
	check "$KIND/$MODE: truncate -s up and down"
	on_both sh -c 'cp "$1" "$ROOT/trunc.bin"' - "$SRC/mid.bin"
	flush_mount
	for size in 5M 1234567 3M 0 100; do
		on_both sh -c 'truncate -s "$1" "$ROOT/trunc.bin"' - "$size"
		assert_eq "$(stat -c %s "$REF/trunc.bin")" \
			"$(stat -c %s "$MNT/trunc.bin")" \
			"size of trunc.bin after truncate -s $size"
		expect_content trunc.bin
	done
}

op_ftruncate() {
	check "$KIND/$MODE: ftruncate of an open file, then reads"
	on_both sh -c 'cp "$1" "$ROOT/ftrunc.bin"' - "$SRC/small.bin"
	flush_mount
	same_output "ftruncate and pread before close" ftruncate ftrunc.bin
	expect_content ftrunc.bin
}

op_rename_open() {
	check "$KIND/$MODE: rename of a file open for writing"
	same_output "write, rename, write, close" rename-open \
		open-old.bin open-new.bin
	expect_content open-new.bin
	expect_gone open-old.bin
}

op_rename_dirty() {
	check "$KIND/$MODE: rename of a closed file before its upload"
	on_both sh -c 'cp "$1" "$ROOT/dirty-a.bin"' - "$SRC/mid.bin"
	mv "$REF/dirty-a.bin" "$REF/dirty-b.bin"
	mv "$MNT/dirty-a.bin" "$MNT/dirty-b.bin"
	[ ! -e "$MNT/dirty-a.bin" ] || fail "dirty-a.bin exists after mv"
	if [ "$MODE" = back ]; then
		assert_eq missing "$(origin_sha dirty-a.bin)" \
			"dirty-a.bin in the origin before the flush"
	fi
	expect_content dirty-b.bin
	expect_gone dirty-a.bin
}

op_rename_over() {
	check "$KIND/$MODE: rename over an existing file"
	on_both sh -c 'cp "$1" "$ROOT/target.bin"' - "$SRC/small.bin"
	on_both sh -c 'cp "$1" "$ROOT/source.bin"' - "$SRC/mid.bin"
	flush_mount
	on_both sh -c 'mv "$ROOT/source.bin" "$ROOT/target.bin"'
	expect_mount_content target.bin
	flush_mount
	expect_origin_content target.bin
	expect_gone source.bin

	# A source that was not uploaded yet (back mode) over a stored file.
	on_both sh -c 'printf "new version\n" >"$ROOT/source2.txt"'
	on_both sh -c 'mv "$ROOT/source2.txt" "$ROOT/target.bin"'
	expect_content target.bin
	expect_gone source2.txt
}

op_rename_over_written() {
	check "$KIND/$MODE: rename over a written empty file"
	# An empty file on the origin, never read here, so its cached
	# version holds no chunk and goes away with the last reference.
	: >"$WORK/empty"
	: >"$REF/was-empty.bin"
	if [ "$KIND" = s3 ]; then
		s3 put data "$PREFIX/was-empty.bin" "$WORK/empty"
	else
		cp "$WORK/empty" "$ORIGIN_DIR/was-empty.bin"
	fi
	# In back mode the written file is still waiting for its upload
	# when the rename replaces it.
	on_both sh -c 'printf patch >>"$ROOT/was-empty.bin"'
	on_both sh -c 'echo replacement >"$ROOT/replacement.txt"'
	on_both sh -c 'mv "$ROOT/replacement.txt" "$ROOT/was-empty.bin"'
	expect_content was-empty.bin
	expect_gone replacement.txt
}

op_rename_dir() {
	local gets names n
	check "$KIND/$MODE: rename of a directory with contents"
	names="a.bin sub/b.bin sub/deeper/c.txt"
	on_both sh -c 'mkdir -p "$ROOT/tree/sub/deeper" &&
		cp "$1" "$ROOT/tree/a.bin" && cp "$2" "$ROOT/tree/sub/b.bin" &&
		echo deep >"$ROOT/tree/sub/deeper/c.txt"' - \
		"$SRC/mid.bin" "$SRC/small.bin"
	flush_mount
	for n in $names; do
		cat "$MNT/tree/$n" >/dev/null
	done
	# One more file that back mode has not uploaded when the rename runs.
	on_both sh -c 'echo late >"$ROOT/tree/late.txt"'
	gets=$(stat_field "$MNT" requests.GET)
	on_both sh -c 'mv "$ROOT/tree" "$ROOT/moved"'
	[ ! -e "$MNT/tree" ] || fail "tree still exists in the mount after mv"
	assert_eq "" "$(origin_keys tree 2>/dev/null || true)" \
		"files left in the origin under tree/"
	expect_mount_content moved/a.bin moved/sub/b.bin moved/sub/deeper/c.txt \
		moved/late.txt
	if [ "$MODE" = around ]; then
		log "around mode caches no written file: GET count not checked"
	else
		assert_eq "$gets" "$(stat_field "$MNT" requests.GET)" \
			"requests.GET after reading the moved files"
	fi
	flush_mount
	expect_origin_content moved/a.bin moved/sub/b.bin \
		moved/sub/deeper/c.txt moved/late.txt
	assert_eq "a.bin late.txt sub/b.bin sub/deeper/c.txt" \
		"$(origin_keys moved)" "files in the origin under moved/"
	if [ "$KIND" = s3 ]; then
		object_exists moved/sub/deeper/ ||
			fail "no marker object moved/sub/deeper/ after the mv"
		log "ok: the marker moved/sub/deeper/ moved too"
		assert_eq "" "$(s3 ls data "$PREFIX/tree/")" \
			"keys left under $PREFIX/tree/, markers included"
	fi
}

op_created_rename() {
	local names=() gone=() i
	check "$KIND/$MODE: rename and unlink of a created file at once"
	same_output "create, close, rename, write, close" create-rename \
		created
	same_output "create, close, unlink" create-unlink created-gone
	for i in $(seq 0 9); do
		names+=("created/renamed$i")
		gone+=("created/new$i" "created-gone/gone$i")
	done
	expect_content "${names[@]}"
	# No late release may store a file under its old name.
	expect_gone "${gone[@]}"
}

op_unlink_open() {
	check "$KIND/$MODE: unlink of an open file"
	on_both sh -c 'cp "$1" "$ROOT/open-unlink.bin"' - "$SRC/small.bin"
	flush_mount
	same_output "read and write after unlink" unlink-open open-unlink.bin
	flush_mount
	expect_gone open-unlink.bin
	assert_eq "" "$(ls "$MNT" | grep -x open-unlink.bin || true)" \
		"open-unlink.bin in the listing of the mount"
}

op_mkdir_rmdir() {
	check "$KIND/$MODE: mkdir and rmdir"
	mkdir "$MNT/newdir"
	[ -d "$MNT/newdir" ] || fail "newdir is not a directory in the mount"
	flush_mount
	if [ "$KIND" = s3 ]; then
		object_exists newdir/ || fail "no marker object newdir/"
		log "ok: marker object $PREFIX/newdir/ exists"
	else
		[ -d "$ORIGIN_DIR/newdir" ] || fail "newdir missing in the origin"
		log "ok: newdir exists in the origin"
	fi
	rmdir "$MNT/newdir"
	[ ! -e "$MNT/newdir" ] || fail "newdir exists after rmdir"
	flush_mount
	if [ "$KIND" = s3 ]; then
		! object_exists newdir/ || fail "marker object newdir/ remains"
		log "ok: marker object $PREFIX/newdir/ is gone"
	else
		[ ! -e "$ORIGIN_DIR/newdir" ] || fail "newdir remains in the origin"
		log "ok: newdir is gone from the origin"
	fi
}

op_zero_bytes() {
	check "$KIND/$MODE: zero-byte files"
	on_both sh -c 'touch "$ROOT/empty1" && : >"$ROOT/empty2"'
	assert_eq 0 "$(stat -c %s "$MNT/empty1")" "size of empty1 in the mount"
	flush_mount
	wait_origin_content empty1 empty2
	if [ "$KIND" = s3 ]; then
		assert_eq 0 "$(s3 head data "$PREFIX/empty1" | python3 -c '
import json, sys; print(json.load(sys.stdin)["size"])')" \
			"size of object $PREFIX/empty1"
	fi
}

op_metadata() {
	local mode mtime
	check "$KIND/$MODE: chmod and touch -d of a file just written"
	echo "metadata" >"$MNT/meta.txt"
	chmod 640 "$MNT/meta.txt"
	touch -m -d @1600000000 "$MNT/meta.txt"
	assert_eq 640 "$(stat -c %a "$MNT/meta.txt")" "mode in the mount"
	assert_eq 1600000000 "$(stat -c %Y "$MNT/meta.txt")" "mtime in the mount"
	flush_mount
	if [ "$KIND" = s3 ]; then
		s3 head data "$PREFIX/meta.txt" >"$WORK/meta.json"
		mode=$(python3 -c '
import json, sys
text = json.load(open(sys.argv[1]))["metadata"].get("mode", "0")
value = int(text, 8) if text.startswith("0") or len(text) <= 4 \
    else int(text)
print("%o" % (value & 0o7777))' "$WORK/meta.json")
		mtime=$(python3 -c '
import json, sys
value = float(json.load(open(sys.argv[1]))["metadata"].get("mtime", "0"))
while value > 1e11:
    value /= 1000
print(int(value))' "$WORK/meta.json")
	else
		mode=$(stat -c %a "$ORIGIN_DIR/meta.txt")
		mtime=$(stat -c %Y "$ORIGIN_DIR/meta.txt")
	fi
	assert_eq 640 "$mode" "mode of meta.txt in the origin"
	assert_eq 1600000000 "$mtime" "mtime of meta.txt in the origin"
}

op_mmap() {
	check "$KIND/$MODE: mmap(MAP_SHARED) writes"
	on_both sh -c 'cp "$1" "$ROOT/mapped.bin"' - "$SRC/mid.bin"
	flush_mount
	on_both sh -c 'python3 "$1" mmap "$ROOT/mapped.bin"' - "$PYHELP"
	if [ "$MODE" = back ]; then
		# mmap.flush() is msync(MS_SYNC), which the kernel sends as an
		# fsync, and fsync=origin (the default) waits for the upload.
		expect_mount_content mapped.bin
		expect_origin_content mapped.bin
	else
		expect_content mapped.bin
	fi
}

op_two_writers() {
	local pid1 pid2 root status
	check "$KIND/$MODE: two processes write disjoint ranges of one file"
	on_both sh -c 'head -c 4M /dev/zero >"$ROOT/shared.bin"'
	flush_mount
	for root in "$REF" "$MNT"; do
		pyop writer "$root/shared.bin" 0 24 1 &
		pid1=$!
		pyop writer "$root/shared.bin" 32 24 2 &
		pid2=$!
		status=0
		wait "$pid1" || status=$?
		wait "$pid2" || status=$?
		[ "$status" -eq 0 ] || fail "a writer on $root failed"
	done
	expect_content shared.bin
}

op_listing() {
	check "$KIND/$MODE: listings show files not uploaded yet"
	on_both sh -c 'mkdir "$ROOT/list" && echo old >"$ROOT/list/old.txt"'
	flush_mount
	on_both sh -c 'echo one >"$ROOT/list/new1.txt" &&
		cp "$1" "$ROOT/list/new2.bin"' - "$SRC/small.bin"
	assert_eq "new1.txt new2.bin old.txt" "$(ls "$MNT/list" | xargs)" \
		"ls of list before any flush"
	if [ "$MODE" = back ]; then
		assert_eq "old.txt" "$(origin_keys list)" \
			"files in the origin under list/ before the flush"
	fi
	expect_content list/new1.txt list/new2.bin
	assert_eq "new1.txt new2.bin old.txt" "$(origin_keys list)" \
		"files in the origin under list/"
}

OPS=(random_writes append hole truncate ftruncate rename_open rename_dirty
	rename_over rename_over_written rename_dir created_rename unlink_open
	mkdir_rmdir zero_bytes metadata mmap two_writers listing)

# run_op NAME: run op_NAME in a subshell that stops at its first error;
# record a failure and go on with the next operation.
run_op() {
	local status=0
	trap - ERR
	set +e
	(
		trap 'on_error $LINENO "$BASH_COMMAND"' ERR
		set -e
		"op_$1"
	)
	status=$?
	set -e
	trap 'on_error $LINENO "$BASH_COMMAND"' ERR
	CHECKS=$((CHECKS + 1))	# the subshell counted its check in a copy
	if [ "$status" -ne 0 ]; then
		FAILED_OPS+=("$KIND/$MODE/$1")
		log "FAILED: $KIND/$MODE: $1 (status $status)"
	fi
}

run_pass() {
	local origin opts op
	KIND=$1
	MODE=$2
	REF=$WORK/ref-$KIND-$MODE
	MNT=$WORK/mnt-$KIND-$MODE
	mkdir -p "$REF"
	cp "$SRC/big.bin" "$REF/big.bin"
	if [ "$KIND" = s3 ]; then
		PREFIX=$MODE
		s3 put data "$PREFIX/big.bin" "$SRC/big.bin"
		origin=s3://data/$PREFIX
	else
		ORIGIN_DIR=$WORK/origin-$MODE
		mkdir -p "$ORIGIN_DIR"
		cp "$SRC/big.bin" "$ORIGIN_DIR/big.bin"
		origin=$ORIGIN_DIR
	fi
	opts="cache_dir=$WORK/cache-$KIND-$MODE,chunk_size=1M,write_mode=$MODE"
	[ "$MODE" != back ] || opts="$opts,writeback_delay=60s"
	mount_nearfs "$origin" "$MNT" "$opts"
	for op in "${OPS[@]}"; do
		run_op "$op"
	done
	check "$KIND/$MODE: unmount"
	unmount_nearfs "$MNT"
}

PASSES=${WRITE_MODES_PASSES:-s3/through s3/back s3/around dir/through
dir/back dir/around}

start_s3
s3 mb data
for pass in $PASSES; do
	case $pass in
	s3/through | s3/back | s3/around | dir/through | dir/back | dir/around)
		;;
	*) fail "invalid pass '$pass' in WRITE_MODES_PASSES: expected" \
		"ORIGIN/MODE, ORIGIN s3 or dir, MODE through, back or around" ;;
	esac
	run_pass "${pass%/*}" "${pass#*/}"
done

if [ "${#FAILED_OPS[@]}" -gt 0 ]; then
	fail "${#FAILED_OPS[@]} operations failed: ${FAILED_OPS[*]}"
fi
