#!/usr/bin/env bash
# test_preload_lend.sh - the daemon side of the preload library.  "open" on
# the control socket lends a read-only descriptor of a complete local copy
# and fetches missing chunks first up to preload_fetch.  It lends nothing
# for incomplete copies, files being written and pending uploads.  The
# bytes of a lent descriptor survive eviction and a newer version.  As
# root the test also checks the permission check for another user on an
# allow_other mount.
. "$(dirname "$0")/../lib.sh"

LENDCLI=$NEARFS_BUILD/tools/lendcli
[ -x "$LENDCLI" ] || fail "$LENDCLI is missing: run make first"

SRC=$WORK/src
mkdir -p "$SRC"
random_file "$SRC/small.v1" $(($(mib 3) + 123))
random_file "$SRC/small.v2" $(($(mib 2) + 45))
random_file "$SRC/big.bin" "$(mib 8)"
for name in e1 e2 e3; do
	random_file "$SRC/$name.bin" "$(mib 5)"
done
random_file "$SRC/wb.bin" $(($(mib 1) + 7))
random_file "$SRC/secret.bin" 5000
random_file "$SRC/public.bin" 6000
BUDGET=$(mib 12)

start_s3
s3 mb data
s3 put data small.bin "$SRC/small.v1"
s3 put data big.bin "$SRC/big.bin"
for name in e1 e2 e3; do
	s3 put data "$name.bin" "$SRC/$name.bin"
done

# lend MNT FILE: the reply line of an "open" request for FILE, then the
# "sha256 HEX links N access ro|rw" line of the lent descriptor, if any.
lend() {
	"$LENDCLI" "$(readlink "$1/.nearfs-ctl")" "$2"
}

# lend_sha MNT FILE: the SHA-256 of the lent copy of FILE; fails unless
# the reply is "ok SIZE" with the size of FILE and a read-only descriptor.
lend_sha() {
	local out reply report
	out=$(lend "$1" "$2")
	reply=$(sed -n 1p <<<"$out")
	report=$(sed -n 2p <<<"$out")
	[ "$reply" = "ok $(stat -c %s "$2")" ] ||
		fail "lend of $2: expected 'ok $(stat -c %s "$2")', got '$reply'"
	assert_contains "$report" "access ro" "lent descriptor of $2" >&2
	awk '{ print $2 }' <<<"$report"
}

# hold_start MNT FILE: lend FILE in a background lendcli --wait that keeps
# the descriptor open; sets HOLD_SHA to the SHA-256 it reported.
hold_start() {
	local reply report
	coproc HOLD { "$LENDCLI" --wait "$(readlink "$1/.nearfs-ctl")" "$2"; }
	CLEANUP_PIDS+=("$HOLD_PID")
	read -r -u "${HOLD[0]}" reply
	read -r -u "${HOLD[0]}" report
	assert_eq "ok $(stat -c %s "$2")" "$reply" "reply to the held lend"
	HOLD_SHA=$(awk '{ print $2 }' <<<"$report")
	assert_contains "$report" "links 1" "held lend before the change"
}

# hold_check WHAT: let the held lendcli report its descriptor again and
# check that the bytes are those it reported first, and that the data
# file was unlinked.
hold_check() {
	local what=$1 report pid=$HOLD_PID
	echo go >&"${HOLD[1]}"
	read -r -u "${HOLD[0]}" report
	wait "$pid"
	assert_eq "$HOLD_SHA" "$(awk '{ print $2 }' <<<"$report")" \
		"sha256 of the held lent descriptor $what"
	assert_contains "$report" "links 0" "held lent descriptor $what"
}

# raw_request SOCKET LINE [FILE MODE]: send LINE, with a descriptor of
# FILE opened with MODE ("r" or "r+") when given, and print the reply.
raw_request() {
	python3 - "$@" <<'PY'
import os, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
fds = []
if len(sys.argv) > 3:
    flags = os.O_RDONLY if sys.argv[4] == "r" else os.O_RDWR
    fds.append(os.open(sys.argv[3], flags))
socket.send_fds(sock, [sys.argv[2].encode() + b"\n"], fds)
print(sock.recv(4096).decode().strip())
PY
}

MNT=$WORK/mnt
mount_nearfs s3://data "$MNT" \
	"chunk_size=1M,cache_size=12M,readahead=0,ttl=2s,attr_ttl=1s"

check "a complete copy is lent with the right bytes"
assert_eq "$(sha256 "$SRC/small.v1")" "$(sha256 "$MNT/small.bin")" \
	"sha256 of small.bin read through the mount"
assert_eq "$(sha256 "$SRC/small.v1")" "$(lend_sha "$MNT" "$MNT/small.bin")" \
	"sha256 of the lent small.bin"
assert_eq 1 "$(stat_field "$MNT" lends)" "lends"
assert_eq 0 "$(stat_field "$MNT" lends_refused)" "lends_refused"

check "requests without a usable descriptor are rejected"
sock=$(readlink "$MNT/.nearfs-ctl")
assert_eq "error: open needs the file's descriptor, sent with the request as SCM_RIGHTS" \
	"$(raw_request "$sock" "open 10 0 0")" "reply without a descriptor"
assert_contains "$(raw_request "$sock" "open x 0 0" "$MNT/small.bin" r)" \
	"error: invalid open request" "reply to an invalid size"
assert_eq "error: the descriptor sent with open must be opened O_RDONLY" \
	"$(raw_request "$sock" "open 10 0 0" "$MNT/small.bin" r+)" \
	"reply for a descriptor opened for writing"
assert_eq "error: the descriptor sent with open is not a file on this nearfs mount" \
	"$(raw_request "$sock" "open 10 0 0" "$SRC/small.v1" r)" \
	"reply for a file outside the mount"
assert_contains "$(raw_request "$sock" "stats" "$MNT/small.bin" r)" \
	"lends: 1" "stats sent with a descriptor"
assert_eq 0 "$(stat_field "$MNT" lends_refused)" "lends_refused"

check "a partly read file gets no copy without preload_fetch"
dd if="$MNT/big.bin" of=/dev/null bs=64k count=1 status=none
assert_eq "no the copy is not complete" "$(lend "$MNT" "$MNT/big.bin")" \
	"reply for the partly read big.bin"
assert_eq 1 "$(stat_field "$MNT" lends_refused)" "lends_refused"

check "a file open for writing gets no copy"
exec {writer}>>"$MNT/small.bin"
assert_eq "no the file is open for writing or has unsaved writes" \
	"$(lend "$MNT" "$MNT/small.bin")" "reply while small.bin is open"
exec {writer}>&-
assert_eq "$(sha256 "$SRC/small.v1")" "$(lend_sha "$MNT" "$MNT/small.bin")" \
	"sha256 of the lent small.bin after the writer closed"
assert_eq 2 "$(stat_field "$MNT" lends)" "lends"
assert_eq 2 "$(stat_field "$MNT" lends_refused)" "lends_refused"

check "eviction leaves the bytes of a lent descriptor alone"
hold_start "$MNT" "$MNT/small.bin"
assert_eq "$(sha256 "$SRC/small.v1")" "$HOLD_SHA" "sha256 of the held lend"
evictions=$(stat_field "$MNT" evictions)
for name in e1 e2 e3; do
	assert_eq "$(sha256 "$SRC/$name.bin")" "$(sha256 "$MNT/$name.bin")" \
		"sha256 of $name.bin"
done
assert_num "$(stat_field "$MNT" evictions)" -gt "$evictions" "evictions"
assert_num "$(stat_field "$MNT" bytes_cached)" -le "$BUDGET" "bytes_cached"
hold_check "after eviction"
drop_page_cache "$MNT/small.bin"
assert_eq "$(sha256 "$SRC/small.v1")" "$(sha256 "$MNT/small.bin")" \
	"sha256 of small.bin read again after its eviction"

check "a newer version leaves the bytes of a lent descriptor alone"
hold_start "$MNT" "$MNT/small.bin"
s3 put data small.bin "$SRC/small.v2"
sleep 2.5	# past ttl=2s, so that the next open checks the version
assert_eq "$(sha256 "$SRC/small.v2")" "$(sha256 "$MNT/small.bin")" \
	"sha256 of the new small.bin"
hold_check "after a new version"
assert_eq "$(sha256 "$SRC/small.v2")" "$(lend_sha "$MNT" "$MNT/small.bin")" \
	"sha256 of the lent new small.bin"
assert_eq 5 "$(stat_field "$MNT" lends)" "lends"
assert_eq 2 "$(stat_field "$MNT" lends_refused)" "lends_refused"
assert_num "$(stat_field "$MNT" bytes_cached)" -le "$BUDGET" "bytes_cached"
unmount_nearfs "$MNT"

check "a partly read file is fetched whole with preload_fetch"
MNT_FETCH=$WORK/mnt-fetch
mount_nearfs s3://data "$MNT_FETCH" \
	"cache_dir=$WORK/cache-fetch,chunk_size=1M,readahead=0,preload_fetch=8M"
dd if="$MNT_FETCH/big.bin" of=/dev/null bs=64k count=1 status=none
assert_eq 1 "$(stat_field "$MNT_FETCH" chunks_cached)" "chunks_cached"
assert_eq "$(sha256 "$SRC/big.bin")" \
	"$(lend_sha "$MNT_FETCH" "$MNT_FETCH/big.bin")" "sha256 of the lent big.bin"
assert_eq 8 "$(stat_field "$MNT_FETCH" chunks_cached)" "chunks_cached"
assert_eq "$(mib 8)" "$(stat_field "$MNT_FETCH" bytes_cached)" "bytes_cached"
# The first chunk, then the seven others in one ranged GET (a run).
assert_eq 2 "$(stat_field "$MNT_FETCH" requests.GET)" "requests.GET"
assert_eq 1 "$(stat_field "$MNT_FETCH" lends)" "lends"
unmount_nearfs "$MNT_FETCH"

check "a file waiting for its upload gets no copy"
MNT_BACK=$WORK/mnt-back
mount_nearfs s3://data "$MNT_BACK" \
	"cache_dir=$WORK/cache-back,chunk_size=1M,write_mode=back,writeback_delay=1h,attr_ttl=1s"
cp "$SRC/wb.bin" "$MNT_BACK/wb.bin"
assert_eq 1 "$(stat_field "$MNT_BACK" uploads_pending)" "uploads_pending"
assert_eq "no the file is open for writing or has unsaved writes" \
	"$(lend "$MNT_BACK" "$MNT_BACK/wb.bin")" "reply while wb.bin is pending"
"$NEARFS_CTL" flush "$MNT_BACK" >/dev/null
assert_eq 0 "$(stat_field "$MNT_BACK" uploads_pending)" "uploads_pending"
# The version installed after the upload has its mtime in whole seconds,
# and until attr_ttl=1s passes fstat(2) shows the older one with
# nanoseconds, which does not match.
sleep 1.5
assert_eq "$(sha256 "$SRC/wb.bin")" "$(lend_sha "$MNT_BACK" "$MNT_BACK/wb.bin")" \
	"sha256 of the lent wb.bin after its upload"
assert_eq 1 "$(stat_field "$MNT_BACK" lends)" "lends"
assert_eq 1 "$(stat_field "$MNT_BACK" lends_refused)" "lends_refused"
unmount_nearfs "$MNT_BACK"

if [ "$(id -u)" -ne 0 ]; then
	log "not root: the checks with another user are skipped"
	exit 0
fi
for tool in useradd userdel setpriv; do
	command -v "$tool" >/dev/null ||
		fail "$tool is missing: install the passwd and util-linux" \
			"packages for the checks with another user"
done

check "another user on an allow_other mount"
MNT_SHARED=$WORK/mnt-shared
# The other user must reach the mountpoint inside $WORK (mode 0700).
chmod 0711 "$WORK"
mount_nearfs s3://data "$MNT_SHARED" \
	"cache_dir=$WORK/cache-shared,chunk_size=1M,allow_other"
sock=$(readlink "$MNT_SHARED/.nearfs-ctl")
assert_eq 666 "$(stat -c %a "$sock")" "mode of the control socket"
assert_eq 711 "$(stat -c %a "$(dirname "$sock")")" \
	"mode of the control socket folder"
cp "$SRC/secret.bin" "$MNT_SHARED/secret.bin"
chmod 0600 "$MNT_SHARED/secret.bin"
cp "$SRC/public.bin" "$MNT_SHARED/public.bin"
chmod 0644 "$MNT_SHARED/public.bin"
for name in secret public; do
	assert_eq "$(sha256 "$SRC/$name.bin")" \
		"$(sha256 "$MNT_SHARED/$name.bin")" "sha256 of $name.bin"
done

user=nearfs-lend-$$
useradd --no-create-home --no-user-group --gid nogroup \
	--shell /usr/sbin/nologin "$user"
CLEANUP_USERS+=("$user")
as_user() {
	setpriv --reuid="$user" --regid=nogroup --clear-groups -- "$@"
}
# The kernel lets the user open only public.bin, so secret.bin comes as
# a descriptor that root opened, as a program could pass it on.
assert_eq "no permission denied" \
	"$(as_user "$LENDCLI" "$sock" --fd 3 3<"$MNT_SHARED/secret.bin")" \
	"reply to the other user for the 0600 secret.bin"
out=$(as_user "$LENDCLI" "$sock" "$MNT_SHARED/public.bin")
assert_eq "ok 6000" "$(sed -n 1p <<<"$out")" \
	"reply to the other user for the 0644 public.bin"
assert_eq "$(sha256 "$SRC/public.bin")" \
	"$(sed -n 2p <<<"$out" | awk '{ print $2 }')" \
	"sha256 of public.bin lent to the other user"
if out=$(as_user "$NEARFS_CTL" stats "$MNT_SHARED" 2>&1); then
	fail "nearfs-ctl stats worked for the other user: $out"
fi
assert_contains "$out" "permission denied" "stats for the other user"
assert_eq 1 "$(stat_field "$MNT_SHARED" lends)" "lends"
assert_eq 1 "$(stat_field "$MNT_SHARED" lends_refused)" "lends_refused"
unmount_nearfs "$MNT_SHARED"
