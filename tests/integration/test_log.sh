#!/usr/bin/env bash
# test_log.sh - where the daemon logs and how much: stderr in the
# foreground, syslog in the background, one info line at the start and
# one at the stop, log_level=error hiding them, an invalid log_level
# rejected with the valid choices.  A retry burst against S3, made by
# tests/tools/fault_proxy.py, logs one line at its start and one at its
# end, and its failed requests are rate-limited.
#
# glibc's syslog(3) always writes to /dev/log.  So the syslog part runs
# this script again in a private mount namespace (unshare -m), whose /dev
# is a tmpfs with copies of the host's device nodes and a /dev/log socket
# of the test's own.  Nothing outside that namespace changes.
. "$(dirname "$0")/../lib.sh"

ORIGIN=$WORK/origin
MNT=$WORK/mnt
mkdir -p "$ORIGIN"
random_file "$ORIGIN/data.bin" 100000

# count_lines FILE PATTERN: the number of lines of FILE that match the
# extended regular expression PATTERN.
count_lines() {
	grep -cE "$2" "$1" || true
}

# A cache_dir that cannot be opened: a plain file.
BAD_CACHE=$WORK/not-a-folder
: >"$BAD_CACHE"

# ---- private /dev with a /dev/log of the test's own

# Mount a tmpfs on /dev with copies (mknod) of the host's device nodes
# that the test and the daemon use, then listen on /dev/log and append
# each datagram as a line to $SYSLOG.
private_dev_log() {
	local nodes=() node mode major minor
	for node in null zero full random urandom tty fuse; do
		[ -c "/dev/$node" ] || continue
		nodes+=("$node $(stat -c '%a %t %T' "/dev/$node")")
	done
	mount -t tmpfs -o mode=0755,size=1m nearfs-test-dev /dev
	for node in "${nodes[@]}"; do
		read -r node mode major minor <<<"$node"
		mknod -m "$mode" "/dev/$node" c $((16#$major)) $((16#$minor))
	done
	ln -s /proc/self/fd /dev/fd
	ln -s /proc/self/fd/0 /dev/stdin
	ln -s /proc/self/fd/1 /dev/stdout
	ln -s /proc/self/fd/2 /dev/stderr

	SYSLOG=$WORK/syslog.txt
	listen_datagrams /dev/log "$SYSLOG"
}

# Background mode: the lines reach syslog, the terminal stays quiet.
syslog_checks() {
	local pid out err status
	private_dev_log

	check "background start: nothing on the terminal, the start in syslog"
	mkdir -p "$MNT"
	out=$WORK/start.out
	err=$WORK/start.err
	"$NEARFS_BIN" -o "cache_dir=$WORK/cache" "$ORIGIN" "$MNT" \
		>"$out" 2>"$err" || fail "background start failed: $(cat "$err")"
	CLEANUP_MOUNTS+=("$MNT")
	pid=$("$NEARFS_CTL" stats "$MNT" | sed -n 's/^pid: //p')
	CLEANUP_PIDS+=("$pid")
	assert_eq "" "$(cat "$out" "$err")" \
		"output of a successful background start"
	# <30>: facility daemon (3) times 8, plus level info (6).
	wait_for_line "$SYSLOG" "^<30>.* nearfs\[$pid\]: mounted $ORIGIN on $MNT "
	log "ok: syslog has the start line of pid $pid at daemon.info"
	assert_eq "$(sha256 "$ORIGIN/data.bin")" "$(sha256 "$MNT/data.bin")" \
		"sha256 of data.bin through the background mount"

	check "background stop: one stop line in syslog"
	umount "$MNT"
	wait_pid_gone "$pid" "umount $MNT"
	wait_for_line "$SYSLOG" "^<30>.* nearfs\[$pid\]: stopped: $MNT was unmounted$"
	assert_eq 1 "$(count_lines "$SYSLOG" "nearfs\[$pid\]: mounted ")" \
		"start lines in syslog"
	assert_eq 1 "$(count_lines "$SYSLOG" "nearfs\[$pid\]: stopped")" \
		"stop lines in syslog"

	check "failed background start: the error on stderr and in syslog"
	status=0
	"$NEARFS_BIN" -o "cache_dir=$BAD_CACHE" "$ORIGIN" "$MNT" \
		>"$out" 2>"$err" || status=$?
	assert_eq 3 "$status" "exit status with a cache_dir that is a file"
	assert_contains "$(cat "$err")" "nearfs: error: " \
		"stderr of the failed background start"
	assert_contains "$(cat "$err")" "$BAD_CACHE" \
		"stderr of the failed background start"
	# <27>: facility daemon (3) times 8, plus level err (3).
	wait_for_line "$SYSLOG" "^<27>.* nearfs\[[0-9]+\]: .*$BAD_CACHE"
	log "ok: syslog has the error at daemon.err"
	is_mounted "$MNT" && fail "$MNT is mounted after a failed start"
	log "ok: nothing is mounted after the failed start"
}

if [ "${NEARFS_TEST_LOG_PART:-}" = syslog ]; then
	syslog_checks
	exit 0
fi

# ---- foreground: stderr

check "foreground: one start and one stop line on stderr"
mount_nearfs "$ORIGIN" "$MNT" "cache_dir=$WORK/cache"
LOG=${NEARFS_LOG[$MNT]}
assert_eq "$(sha256 "$ORIGIN/data.bin")" "$(sha256 "$MNT/data.bin")" \
	"sha256 of data.bin"
unmount_nearfs "$MNT"
assert_eq 1 "$(count_lines "$LOG" "^nearfs: info: mounted $ORIGIN on $MNT ")" \
	"start lines"
assert_eq 1 "$(count_lines "$LOG" "^nearfs: info: stopped: $MNT was unmounted$")" \
	"stop lines after fusermount3 -u"
assert_eq 0 "$(count_lines "$LOG" "^nearfs: debug: ")" \
	"debug lines at the default log_level=info"

check "foreground: the stop line names SIGTERM"
mount_nearfs "$ORIGIN" "$MNT" "cache_dir=$WORK/cache"
LOG=${NEARFS_LOG[$MNT]}
signal_nearfs "$MNT" TERM
assert_eq 1 "$(count_lines "$LOG" "^nearfs: info: stopped on SIGTERM: $MNT is unmounted$")" \
	"stop lines after SIGTERM"

check "log_level=error hides the info lines"
mount_nearfs "$ORIGIN" "$MNT" "cache_dir=$WORK/cache,log_level=error"
LOG=${NEARFS_LOG[$MNT]}
assert_eq "$(sha256 "$ORIGIN/data.bin")" "$(sha256 "$MNT/data.bin")" \
	"sha256 of data.bin at log_level=error"
unmount_nearfs "$MNT"
assert_eq 0 "$(count_lines "$LOG" "^nearfs: (info|warning|debug): ")" \
	"info, warning and debug lines at log_level=error"

check "log_level=error still shows errors"
status=0
"$NEARFS_BIN" -f -o "cache_dir=$BAD_CACHE,log_level=error" "$ORIGIN" \
	"$MNT" >"$WORK/bad.out" 2>"$WORK/bad.err" || status=$?
assert_eq 3 "$status" "exit status with a cache_dir that is a file"
assert_num "$(count_lines "$WORK/bad.err" "^nearfs: error: .*$BAD_CACHE")" \
	-ge 1 "error lines naming $BAD_CACHE"
assert_eq 0 "$(count_lines "$WORK/bad.err" "^nearfs: info: ")" \
	"info lines of the failed start at log_level=error"

check "log_level=debug shows debug lines"
mount_nearfs "$ORIGIN" "$MNT" "cache_dir=$WORK/cache,log_level=debug"
LOG=${NEARFS_LOG[$MNT]}
cat "$MNT/data.bin" >/dev/null
unmount_nearfs "$MNT"
assert_num "$(count_lines "$LOG" "^nearfs: debug: ")" -ge 1 \
	"debug lines at log_level=debug"
assert_eq 1 "$(count_lines "$LOG" "^nearfs: debug: unmounting $MNT$")" \
	"debug line of the unmount"

check "an invalid log_level is rejected with the valid choices"
for level in loud ERROR2 ""; do
	status=0
	"$NEARFS_BIN" -f -o "cache_dir=$WORK/cache,log_level=$level" \
		"$ORIGIN" "$MNT" >"$WORK/level.out" 2>"$WORK/level.err" ||
		status=$?
	assert_eq 1 "$status" "exit status with log_level='$level'"
	is_mounted "$MNT" && fail "$MNT is mounted with log_level='$level'"
	if [ -n "$level" ]; then
		assert_eq "nearfs: invalid log_level '$level': use error, warn, info or debug" \
			"$(cat "$WORK/level.err")" "message for log_level=$level"
	else
		assert_contains "$(cat "$WORK/level.err")" \
			"missing value for log_level" "message for log_level="
	fi
done

check "background mode logs to syslog (private mount namespace)"
command -v unshare >/dev/null ||
	fail "unshare is missing: install util-linux"
status=0
NEARFS_TEST_LOG_PART=syslog unshare -m --propagation private \
	bash "$0" >"$WORK/syslog-part.log" 2>&1 || status=$?
sed 's/^/    /' "$WORK/syslog-part.log"
assert_eq 0 "$status" "exit status of the syslog part"

# ---- a retry burst against S3

# line_count LOG PATTERN: as count_lines, for a fixed string PATTERN.
line_count() {
	grep -cF -- "$2" "$1" || true
}

start_s3
s3 mb data
for i in 1 2 3 4 5 6; do
	random_file "$WORK/r$i.bin" 5000
	s3 put data "r$i.bin" "$WORK/r$i.bin"
done
start_fault_proxy --seed 1
S3MNT=$WORK/s3mnt

check "retry burst: one line at its start, one at its end"
mount_nearfs s3://data "$S3MNT" \
	"endpoint=$PROXY_URL,cache_dir=$WORK/cache-s3,chunk_size=1M,readahead=0"
LOG=${NEARFS_LOG[$S3MNT]}
ls "$S3MNT" >/dev/null
GETS_BEFORE=$(proxy_field counts.GET)
proxy_set '{"rates": {"error503": 1.0}, "kinds": ["GET"]}'
pids=()
for i in 1 2 3 4 5 6; do
	cat "$S3MNT/r$i.bin" >/dev/null 2>"$WORK/r$i.err" &
	pids+=("$!")
done
for pid in "${pids[@]}"; do
	if wait "$pid"; then
		fail "a read succeeded while every GET failed with 503"
	fi
done
FAULTS=$(proxy_field faults.error503)
GETS=$(($(proxy_field counts.GET) - GETS_BEFORE))
assert_eq "$GETS" "$FAULTS" "GET attempts, all answered 503"
# Each GET is tried 5 times before the read fails.
assert_eq 0 $((FAULTS % 5)) "503 answers modulo 5 attempts per request"
FAILED=$((FAULTS / 5))
assert_num "$FAILED" -ge 6 "requests that failed after 5 attempts"
proxy_set '{"rates": {}}'
assert_eq "$(sha256 "$WORK/r1.bin")" "$(sha256 "$S3MNT/r1.bin")" \
	"sha256 of r1.bin once the origin answers again"
unmount_nearfs "$S3MNT"
assert_eq 1 "$(line_count "$LOG" "nearfs: warning: s3: origin $PROXY_URL (bucket data) is failing: GET r")" \
	"lines at the start of the burst"
assert_eq 1 "$(line_count "$LOG" ": HTTP 503 SlowDown. Requests are retried")" \
	"start lines that name the error"
assert_eq 1 "$(line_count "$LOG" "nearfs: info: s3: origin $PROXY_URL (bucket data) answered again after $((FAILED * 4)) retries")" \
	"lines at the end of the burst, with 4 retries per failed request"
assert_eq 0 "$(line_count "$LOG" "retrying")" "lines per retry"
# The first failure passes, the other ones are counted within 10 s and
# written as one line at the stop.
assert_eq 2 "$(line_count "$LOG" "failed after retries: HTTP 503 SlowDown")" \
	"lines of requests that failed after retries"
assert_eq 1 "$(line_count "$LOG" "failed after retries: HTTP 503 SlowDown ($((FAILED - 2)) similar messages suppressed)")" \
	"summary line of the suppressed failures"

# ---- a recovered write-back journal

check "recovered journal: one line with the pending uploads and bytes"
WB_ORIGIN=$WORK/wb-origin
WB_MNT=$WORK/wb-mnt
mkdir -p "$WB_ORIGIN"
WB_OPTS="cache_dir=$WORK/cache-wb,write_mode=back,writeback_delay=1h"
mount_nearfs "$WB_ORIGIN" "$WB_MNT" "$WB_OPTS"
for size in 1000 2000 3000; do
	random_file "$WB_MNT/w$size.bin" "$size"
done
kill_nearfs "$WB_MNT"
assert_eq "" "$(ls "$WB_ORIGIN")" "origin files before the journal replay"
mount_nearfs "$WB_ORIGIN" "$WB_MNT" "$WB_OPTS"
LOG=${NEARFS_LOG[$WB_MNT]}
unmount_nearfs "$WB_MNT"
assert_eq 1 "$(count_lines "$LOG" "^nearfs: info: recovered the write-back journal $WORK/cache-wb/.*/journal: 3 pending uploads, 6000 bytes$")" \
	"recovered journal lines"
assert_eq 1 "$(count_lines "$LOG" "recovered the write-back journal")" \
	"lines that name the recovered journal"
for size in 1000 2000 3000; do
	assert_eq "$size" "$(stat -c %s "$WB_ORIGIN/w$size.bin")" \
		"size of w$size.bin uploaded after the replay"
done
