#!/usr/bin/env bash
# test_fstab.sh - fstab lines of type fuse.nearfs mount a directory
# origin and an S3 origin through mount.fuse3, with mount -a and with
# mount MOUNTPOINT, and with the fstab-only options that mount(8) and
# mount.fuse3 hand over; umount stops each daemon.  The mount.nearfs link
# that make install creates mounts an origin when it is called as mount(8)
# calls it for the type nearfs.
#
# The test runs in a private mount namespace (unshare -m).  There the
# fstab of the test is bound over /etc/fstab, the bin folder of `make
# install DESTDIR=... BINDIR=/usr/local/sbin` over /usr/local/sbin, and a
# tmpfs over /run/mount (libmount's utab), so nothing of the host changes.
# mount(8) clears PATH before it runs a helper, and the shell that
# mount.fuse3 starts finds nearfs in its default search path, which
# starts with /usr/local/sbin.  mount(8) looks for mount.nearfs only in
# /sbin, which the test leaves alone, so the type nearfs is not mounted
# through fstab here.
if [ -z "${NEARFS_FSTAB_NAMESPACE:-}" ]; then
	export NEARFS_FSTAB_NAMESPACE=1
	NEARFS_HOST_FSTAB_SUM=$(sha256sum /etc/fstab 2>/dev/null | cut -d' ' -f1)
	export NEARFS_HOST_FSTAB_SUM
	exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"

ROOT=$WORK/root
FSTAB=$WORK/fstab
ORIGIN=$WORK/origin
MNT_DIR=$WORK/mnt-dir
MNT_S3=$WORK/mnt-s3
MNT_TYPE=$WORK/mnt-type
MNT_NOAUTO=$WORK/mnt-noauto
MNT_BAD=$WORK/mnt-bad
mkdir -p "$ORIGIN" "$MNT_DIR" "$MNT_S3" "$MNT_TYPE" "$MNT_NOAUTO" \
	"$MNT_BAD"
random_file "$ORIGIN/dir.bin" 300000
random_file "$WORK/s3.bin" $(($(mib 1) + 77))

start_s3
s3 mb data
s3 put data pre/s3.bin "$WORK/s3.bin"

# daemon_pid MNT: the pid of the daemon that serves MNT.
daemon_pid() {
	"$NEARFS_CTL" stats "$1" | sed -n 's/^pid: //p'
}

# check_mounted MNT SOURCE FILE EXPECTED: MNT is a fuse.nearfs mount of
# SOURCE, served by the installed nearfs, and FILE in it has the content
# of EXPECTED.  Sets PIDS[MNT] to the daemon's pid.
declare -A PIDS=()
check_mounted() {
	local mnt=$1 source=$2 file=$3 expected=$4 pid
	assert_eq "fuse.nearfs $source" \
		"$(findmnt -n -o FSTYPE,SOURCE --mountpoint "$mnt")" \
		"type and source of $mnt"
	pid=$(daemon_pid "$mnt")
	[ -n "$pid" ] || fail "no daemon pid for $mnt"
	PIDS[$mnt]=$pid
	CLEANUP_PIDS+=("$pid")
	[ "/proc/$pid/exe" -ef "$BIN/nearfs" ] ||
		fail "the daemon of $mnt runs $(readlink "/proc/$pid/exe")," \
			"not the installed $BIN/nearfs"
	log "ok: the daemon of $mnt runs the installed nearfs"
	assert_eq "$(sha256 "$expected")" "$(sha256 "$mnt/$file")" \
		"sha256 of $file through $mnt"
}

# unmount MNT: umount, then wait until its daemon has exited.
unmount() {
	local mnt=$1
	umount "$mnt" || fail "umount $mnt failed"
	wait_pid_gone "${PIDS[$mnt]}" "umount $mnt"
	is_mounted "$mnt" && fail "$mnt is still mounted after umount"
	log "ok: umount $mnt stopped daemon ${PIDS[$mnt]}"
}

check "install into DESTDIR, and bind its bin folder in the namespace"
BIN=/usr/local/sbin
make -C "$NEARFS_ROOT" --no-print-directory install DESTDIR="$ROOT" \
	BINDIR="$BIN" >"$WORK/make.log" 2>&1 ||
	fail "make install failed: $(tail -n 20 "$WORK/make.log")"
CLEANUP_MOUNTS+=("$MNT_DIR" "$MNT_S3" "$MNT_TYPE" "$MNT_NOAUTO" "$MNT_BAD")
[ -d "$BIN" ] || fail "$BIN is missing, so nothing can be bound over it"
# Binds go from $WORK to the system, never the other way: the cleanup
# deletes $WORK.
mount --bind "$ROOT$BIN" "$BIN"
[ "$BIN/nearfs" -ef "$ROOT$BIN/nearfs" ] ||
	fail "$BIN/nearfs is not the installed $ROOT$BIN/nearfs"
log "ok: $BIN/nearfs is the installed nearfs"
mount -t tmpfs -o mode=0755 nearfs-test-utab /run/mount

cat >"$WORK/aws-credentials" <<'EOF'
[nearfs-test]
aws_access_key_id = test
aws_secret_access_key = test
EOF
# The fields of fstab(5) take no spaces, and $WORK has none.
cat >"$FSTAB" <<EOF
# fstab of test_fstab.sh
$ORIGIN $MNT_DIR fuse.nearfs defaults,cache_dir=$WORK/cache-dir,ttl=5m,relatime,noexec,x-systemd.automount 0 0
s3://data/pre $MNT_S3 fuse.nearfs _netdev,nofail,cache_size=20G,allow_other,endpoint=$NEARFS_TEST_ENDPOINT,profile=nearfs-test,cache_dir=$WORK/cache-s3 0 0
$ORIGIN $MNT_NOAUTO fuse.nearfs noauto,users,cache_dir=$WORK/cache-noauto 0 0
$ORIGIN $MNT_BAD fuse.nearfs noauto,cache_size=lots,cache_dir=$WORK/cache-bad 0 0
EOF
if [ -e /etc/fstab ]; then
	mount --bind "$FSTAB" /etc/fstab
	MOUNT=(mount)
else
	MOUNT=(mount -T "$FSTAB")
fi
log "mount command: ${MOUNT[*]}"

# Only the profile of the test's credentials file: no keys in the
# environment, as at boot.
MOUNT_ENV=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY
	AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials")

check "mount -a mounts every line without noauto"
"${MOUNT_ENV[@]}" "${MOUNT[@]}" -a >"$WORK/mount-a.out" 2>&1 ||
	fail "mount -a failed: $(cat "$WORK/mount-a.out")"
assert_eq "" "$(cat "$WORK/mount-a.out")" "output of mount -a"
check_mounted "$MNT_DIR" "$ORIGIN" dir.bin "$ORIGIN/dir.bin"
check_mounted "$MNT_S3" s3://data/pre s3.bin "$WORK/s3.bin"
is_mounted "$MNT_NOAUTO" && fail "mount -a mounted the noauto line"
log "ok: the noauto line is not mounted"

check "the fstab options reached the daemons"
assert_eq 20G \
	"$(( $(stat_field "$MNT_S3" cache_size) / 1024 / 1024 / 1024 ))G" \
	"cache_size of $MNT_S3"
assert_contains "$(findmnt -n -o OPTIONS --mountpoint "$MNT_DIR")" \
	"noexec" "kernel options of $MNT_DIR"
assert_contains "$(findmnt -n -o OPTIONS --mountpoint "$MNT_S3")" \
	"allow_other" "kernel options of $MNT_S3"

check "mount MOUNTPOINT mounts a noauto line"
"${MOUNT[@]}" "$MNT_NOAUTO" >"$WORK/mount.out" 2>&1 ||
	fail "mount $MNT_NOAUTO failed: $(cat "$WORK/mount.out")"
check_mounted "$MNT_NOAUTO" "$ORIGIN" dir.bin "$ORIGIN/dir.bin"

check "an invalid option of a line fails with its message"
status=0
"${MOUNT[@]}" "$MNT_BAD" >"$WORK/bad.out" 2>&1 || status=$?
assert_ne 0 "$status" "exit status of mount with cache_size=lots"
assert_contains "$(cat "$WORK/bad.out")" "invalid size 'lots' for cache_size" \
	"output of mount with cache_size=lots"
is_mounted "$MNT_BAD" && fail "$MNT_BAD is mounted with cache_size=lots"
log "ok: nothing is mounted on $MNT_BAD"

check "mount.nearfs mounts as mount -t nearfs calls it"
# mount(8) of util-linux 2.38 runs /sbin/mount.nearfs SOURCE MOUNTPOINT
# -o OPTIONS, with rw and the fstab-only options in OPTIONS.
assert_eq "$BIN/nearfs" "$(readlink "$ROOT/sbin/mount.nearfs")" \
	"target of the installed mount.nearfs"
"$ROOT/sbin/mount.nearfs" "$ORIGIN" "$MNT_TYPE" \
	-o "rw,_netdev,nofail,cache_dir=$WORK/cache-type" \
	>"$WORK/helper.out" 2>&1 ||
	fail "mount.nearfs failed: $(cat "$WORK/helper.out")"
assert_eq "" "$(cat "$WORK/helper.out")" "output of mount.nearfs"
check_mounted "$MNT_TYPE" "$ORIGIN" dir.bin "$ORIGIN/dir.bin"

check "umount stops each daemon"
for mnt in "$MNT_DIR" "$MNT_S3" "$MNT_TYPE" "$MNT_NOAUTO"; do
	unmount "$mnt"
done

check "the host's /etc/fstab is unchanged"
if [ -e /etc/fstab ]; then
	umount /etc/fstab
	assert_eq "$NEARFS_HOST_FSTAB_SUM" "$(sha256 /etc/fstab)" \
		"sha256 of /etc/fstab"
fi
