#!/usr/bin/env bash
# test_writeback_crash.sh - kill -9 of the daemon in back mode loses no
# closed file.  Each round copies a reference set of files into the mount
# (writeback_delay=1s), kills the daemon with SIGKILL at some moment,
# unmounts the dead mount, mounts again with the same cache_dir, flushes,
# and compares every object in the bucket with the reference.  The kill
# comes right after the copy, about a second later while uploads run, and
# in the middle of the copy.  In the last round only the files whose copy
# had finished must be there.  No object may contain anything but its
# reference bytes.
. "$(dirname "$0")/../lib.sh"

start_s3
s3 mb data

# make_reference DIR COUNT: COUNT files, most of 100 B to 20 KB, every
# 100th of 1 to 4 MiB, in ten subfolders.
make_reference() {
	python3 - "$1" "$2" <<'PY'
import os, random, sys
root, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(count)
for i in range(count):
    folder = os.path.join(root, "d%d" % (i % 10))
    os.makedirs(folder, exist_ok=True)
    if i % 100 == 7:
        size = rng.randint(1 << 20, 4 << 20)
    else:
        size = rng.randint(100, 20000)
    with open(os.path.join(folder, "f%04d.bin" % i), "wb") as f:
        f.write(os.urandom(size))
PY
}

# check_bucket PREFIX REF REQUIRED: every object below PREFIX/ equals the
# file of the same name in REF, and every name listed in the file
# REQUIRED is present.  Prints a summary line.
check_bucket() {
	python3 - "$@" <<'PY'
import hashlib, os, sys
import botocore.config, botocore.session
prefix, ref, required_file = sys.argv[1] + "/", sys.argv[2], sys.argv[3]
client = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["NEARFS_TEST_ENDPOINT"],
    region_name="us-east-1",
    config=botocore.config.Config(s3={"addressing_style": "path"},
                                  max_pool_connections=4))
def sha(data):
    return hashlib.sha256(data).hexdigest()
stored = {}
for page in client.get_paginator("list_objects_v2").paginate(
        Bucket="data", Prefix=prefix):
    for item in page.get("Contents", []):
        name = item["Key"][len(prefix):]
        if name.endswith("/") or not name:
            continue        # a directory marker
        body = client.get_object(Bucket="data", Key=item["Key"])["Body"]
        stored[name] = sha(body.read())
errors = []
for name, digest in sorted(stored.items()):
    path = os.path.join(ref, name)
    if not os.path.isfile(path):
        errors.append("unexpected object %s" % name)
    elif digest != sha(open(path, "rb").read()):
        errors.append("object %s differs from the reference" % name)
required = [line.strip() for line in open(required_file) if line.strip()]
missing = [name for name in required if name not in stored]
errors += ["missing object %s" % name for name in missing[:20]]
if len(missing) > 20:
    errors.append("... %d objects missing in all" % len(missing))
for line in errors[:40]:
    print(line)
print("%d objects, %d required, %d missing, %d errors"
      % (len(stored), len(required), len(missing), len(errors)))
sys.exit(1 if errors else 0)
PY
}

# recover ROUND REF REQUIRED: mount again with the cache of ROUND, flush,
# and compare the bucket with the reference.
recover() {
	local round=$1 ref=$2 required=$3 mnt=$WORK/mnt-$1 status=0
	mount_nearfs "s3://data/$round" "$mnt" "$(round_options "$round")"
	"$NEARFS_CTL" flush "$mnt" >"$WORK/flush-$round.out" 2>&1 ||
		fail "nearfs-ctl flush after the restart of $round:" \
			"$(tail -n 3 "$WORK/flush-$round.out")"
	log "ok: nearfs-ctl flush after the restart"
	assert_eq 0 "$(stat_field "$mnt" uploads_pending)" \
		"uploads_pending after the flush"
	check_bucket "$round" "$ref" "$required" >"$WORK/check-$round.out" ||
		status=$?
	cat "$WORK/check-$round.out"
	[ "$status" -eq 0 ] ||
		fail "$round: the bucket does not match the reference"
	log "ok: $round: $(tail -n 1 "$WORK/check-$round.out")"
	unmount_nearfs "$mnt"
	assert_eq 0 "$(find "$WORK/cache-$round" -path '*/dirty/*' -type f |
		wc -l)" "files left in the dirty/ folder of the cache"
}

round_options() {
	echo "cache_dir=$WORK/cache-$1,chunk_size=1M,write_mode=back,writeback_delay=1s"
}

# all_names REF: the relative path of every file in REF.
all_names() {
	(cd "$1" && find . -type f | sed 's|^\./||' | sort)
}

REF=$WORK/ref
make_reference "$REF" 1000
all_names "$REF" >"$WORK/all-names"
log "reference set: $(wc -l <"$WORK/all-names") files," \
	"$(du -sb "$REF" | cut -f1) bytes"

check "kill -9 right after cp -r of 1000 files"
mnt=$WORK/mnt-r1
mount_nearfs s3://data/r1 "$mnt" "$(round_options r1)"
cp -r "$REF/." "$mnt/"
log "pending at the kill: $(stat_field "$mnt" uploads_pending) files"
kill_nearfs "$mnt"
recover r1 "$REF" "$WORK/all-names"

check "kill -9 about 1 s after the copy, during uploads"
mnt=$WORK/mnt-r2
mount_nearfs s3://data/r2 "$mnt" "$(round_options r2)"
cp -r "$REF/." "$mnt/"
sleep 1
# On a slow machine the first upload may take longer to finish.
for i in $(seq 50); do
	[ "$(stat_field "$mnt" uploads_done)" -gt 0 ] && break
	sleep 0.1
done
done_at_kill=$(stat_field "$mnt" uploads_done)
pending_at_kill=$(stat_field "$mnt" uploads_pending)
log "at the kill: $done_at_kill uploaded, $pending_at_kill pending"
kill_nearfs "$mnt"
assert_num "$done_at_kill" -gt 0 "uploads_done at the kill"
assert_num "$pending_at_kill" -gt 0 "uploads_pending at the kill"
recover r2 "$REF" "$WORK/all-names"

check "kill -9 in the middle of the copy, one cp per file"
mnt=$WORK/mnt-r3
REF3=$WORK/ref3
mkdir -p "$REF3"
head -n 400 "$WORK/all-names" | while read -r name; do
	mkdir -p "$REF3/$(dirname "$name")"
	cp "$REF/$name" "$REF3/$name"
done
mount_nearfs s3://data/r3 "$mnt" "$(round_options r3)"
completed=$WORK/completed-r3
: >"$completed"
(
	cd "$REF3"
	find . -type d | while read -r dir; do mkdir -p "$mnt/$dir"; done
	find . -type f | sed 's|^\./||' | sort | while read -r name; do
		cp "$name" "$mnt/$name" 2>/dev/null || exit 0
		echo "$name" >>"$completed"
	done
) &
copier=$!
CLEANUP_PIDS+=("$copier")
for i in $(seq 300); do
	[ "$(wc -l <"$completed")" -ge 150 ] && break
	sleep 0.05
done
kill_nearfs "$mnt"
wait "$copier" || true
copied=$(wc -l <"$completed")
log "files copied before the kill: $copied of 400"
assert_num "$copied" -ge 150 "files copied before the kill"
assert_num "$copied" -lt 400 "files copied before the kill (cut short)"
recover r3 "$REF3" "$completed"

check "kill -9 while a file waiting for upload is rewritten"
# The file is closed (in the journal, not uploaded: writeback_delay=1h),
# then opened again with O_TRUNC and partly written when the daemon gets
# SIGKILL.  The restart must upload the version that was closed, not the
# cut one.  Before the journal kept the closed version apart, the
# rewrite went into the journal's copy, and the bucket got the cut file.
mnt=$WORK/mnt-r4
opts4="cache_dir=$WORK/cache-r4,chunk_size=64K,write_mode=back,writeback_delay=1h"
random_file "$WORK/closed.bin" 200000
mount_nearfs s3://data/r4 "$mnt" "$opts4"
write_file "$WORK/closed.bin" "$mnt/file.bin"
assert_eq 1 "$(stat_field "$mnt" uploads_pending)" \
	"uploads_pending after the close"
python3 - "$mnt/file.bin" "$WORK/half-written" <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.write(fd, b"x" * 70000)
open(sys.argv[2], "w").close()
while True:
    time.sleep(1)       # the kill ends the mount under the open file
PY
rewriter=$!
CLEANUP_PIDS+=("$rewriter")
wait_until [ -e "$WORK/half-written" ] ||
	fail "the rewrite did not start within 10 s"
kill -9 "${NEARFS_PID[$mnt]}"
wait "${NEARFS_PID[$mnt]}" 2>/dev/null || true
unset "NEARFS_PID[$mnt]"
stop_pid "$rewriter"
fusermount3 -u "$mnt" || fail "fusermount3 -u of the dead mount $mnt"
log "killed the daemon during the rewrite"
mount_nearfs s3://data/r4 "$mnt" "$opts4"
"$NEARFS_CTL" flush "$mnt" >/dev/null
assert_eq "$(sha256 "$WORK/closed.bin")" "$(object_sha data r4/file.bin)" \
	"sha256 of r4/file.bin in the bucket: the closed version"
assert_eq "$(sha256 "$WORK/closed.bin")" "$(sha256 "$mnt/file.bin")" \
	"sha256 of file.bin on the mount after the restart"
unmount_nearfs "$mnt"
