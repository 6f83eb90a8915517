#!/usr/bin/env bash
# lib.sh - shared helpers for the nearfs integration tests.
#
# A test sources this file first thing:
#
#   . "$(dirname "$0")/../lib.sh"
#   start_s3
#   s3 mb data
#   mount_nearfs s3://data "$WORK/mnt" chunk_size=1M
#   ...
#
# Sourcing sets `set -eEuo pipefail`, creates $WORK (removed at exit unless
# NEARFS_KEEP=1) and installs traps that unmount every mount, stop every
# process the test started, by path and by pid, and remove the users it
# added to CLEANUP_USERS, also when a check fails or the test is
# interrupted.  A test re-executes itself under
# `timeout` (NEARFS_TEST_TIMEOUT seconds, default 600) unless run.sh
# already did that.  Sourcing fails without /dev/fuse and build/nearfs,
# unless the test sets NEARFS_NEEDS_FUSE=0 before.

set -eEuo pipefail

NEARFS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The build folder under test: NEARFS_BUILD=build-asan (relative to the
# repository, or absolute) tests a sanitizer build.  NEARFS_BIN and
# NEARFS_CTL override single programs.
NEARFS_BUILD=${NEARFS_BUILD:-build}
case $NEARFS_BUILD in
/*) ;;
*) NEARFS_BUILD=$NEARFS_ROOT/$NEARFS_BUILD ;;
esac
NEARFS_BIN=${NEARFS_BIN:-$NEARFS_BUILD/nearfs}
NEARFS_CTL=${NEARFS_CTL:-$NEARFS_BUILD/nearfs-ctl}
S3CLI=$NEARFS_ROOT/tests/tools/s3cli.py
. "$NEARFS_ROOT/tests/net.sh"
TEST_NAME=$(basename "$0" .sh)

if [ -z "${NEARFS_UNDER_TIMEOUT:-}" ]; then
	export NEARFS_UNDER_TIMEOUT=1
	exec timeout -k 10 "${NEARFS_TEST_TIMEOUT:-600}" bash "$0" "$@"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nearfs-$TEST_NAME.XXXXXX")

# Sanitizer reports of every program the test starts (a daemon in the
# background too) go to files in $SANITIZER_LOGS, and cleanup fails the
# test when one exists, so a daemon's report does not stay unread in its
# log.  Programs built without sanitizers ignore these variables.
# The library first in the list of a program that LD_PRELOAD loads is
# libnearfs-preload.so, not the ASan runtime: verify_asan_link_order=0
# lets instrumented test tools run with it.
SANITIZER_LOGS=$WORK/sanitizer
mkdir -p "$SANITIZER_LOGS"
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1}:verify_asan_link_order=0:log_path=$SANITIZER_LOGS/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}:log_path=$SANITIZER_LOGS/ubsan"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:second_deadlock_stack=1}:log_path=$SANITIZER_LOGS/tsan"

# What cleanup must undo: mount paths, pids of background processes, and
# users that the test created (removed with userdel).
declare -a CLEANUP_MOUNTS=()
declare -a CLEANUP_PIDS=()
declare -a CLEANUP_USERS=()
# Daemon pid and log file of each mount, by mount path.
declare -A NEARFS_PID=()
declare -A NEARFS_LOG=()
# Arguments for env(1) in front of the daemon: NAME=VALUE, -u NAME.
declare -a NEARFS_ENV=()
S3_PID=
S3_LOG=
S3_KIND=
CHECKS=0
TEST_FAILED=0

log() {
	echo "[$TEST_NAME] $*"
}

fail() {
	TEST_FAILED=1
	echo "FAIL: $*" >&2
	exit 1
}

# Start a named step; failures after it are easier to place in the log.
check() {
	CHECKS=$((CHECKS + 1))
	log "check $CHECKS: $*"
}

on_error() {
	local line=$1 cmd=$2
	TEST_FAILED=1
	echo "FAIL: line $line: command failed: $cmd" >&2
}

print_logs() {
	local mnt
	for mnt in "${!NEARFS_LOG[@]}"; do
		echo "----- nearfs log for $mnt (last 80 lines)" >&2
		tail -n 80 "${NEARFS_LOG[$mnt]}" >&2 || true
	done
	if [ -n "$S3_LOG" ]; then
		echo "----- S3 server log (last 20 lines)" >&2
		tail -n 20 "$S3_LOG" >&2 || true
	fi
}

# is_mounted PATH: PATH is in the mount table, also when its daemon died
# and every access fails with ENOTCONN (where mountpoint -q says no).
is_mounted() {
	awk -v path="$1" '$5 == path { found = 1 } END { exit !found }' \
		/proc/self/mountinfo
}

# mounts_below_work: the mount points at or below $WORK, one per line,
# deepest first.  mountinfo writes space, tab, newline and backslash as
# \040, \011, \012 and \134, which are decoded here.
mounts_below_work() {
	awk -v work="$WORK" '{
		path = $5
		gsub(/\\040/, " ", path)
		gsub(/\\011/, "\t", path)
		gsub(/\\012/, "\n", path)
		gsub(/\\134/, "\\", path)
		if (path == work || index(path, work "/") == 1)
			print path
	}' /proc/self/mountinfo | sort -r
}

# unmount_below_work: unmount (lazily) every mount at or below $WORK.  rm
# --one-file-system does not stop at a bind mount of a folder on the same
# filesystem: it would delete the files of the folder bound there.
unmount_below_work() {
	local mnt
	mounts_below_work | while IFS= read -r mnt; do
		umount -l "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" ||
			true
	done
}

# check_sanitizer_logs: print every sanitizer report of the test and
# return 1 when there is one.
check_sanitizer_logs() {
	local report found=0
	for report in "$SANITIZER_LOGS"/*; do
		[ -f "$report" ] || continue
		found=1
		echo "FAIL: sanitizer report $(basename "$report"):" >&2
		cat "$report" >&2
	done
	return "$found"
}

cleanup() {
	local status=$? mnt pid user
	trap - ERR
	trap '' PIPE
	set +e
	if [ "$status" -ne 0 ] || [ "$TEST_FAILED" -ne 0 ]; then
		print_logs
	fi
	for mnt in "${CLEANUP_MOUNTS[@]}"; do
		if is_mounted "$mnt"; then
			fusermount3 -u "$mnt" 2>/dev/null ||
				fusermount3 -u -z "$mnt"
		fi
	done
	for pid in "${CLEANUP_PIDS[@]}"; do
		stop_pid "$pid"
	done
	for user in "${CLEANUP_USERS[@]}"; do
		userdel "$user"
	done
	unmount_below_work
	# The daemons have exited now, so their reports are complete.
	if ! check_sanitizer_logs && [ "$status" -eq 0 ]; then
		status=1
	fi
	if [ "${NEARFS_KEEP:-0}" = 1 ]; then
		echo "work folder kept: $WORK" >&2
	elif [ -n "$(mounts_below_work)" ]; then
		echo "work folder kept, because these mounts below it did not" \
			"go away: $(mounts_below_work | tr '\n' ' ')" >&2
	else
		rm -rf --one-file-system "$WORK"
	fi
	if [ "$status" -eq 0 ]; then
		log "PASS ($CHECKS checks)"
	fi
	exit "$status"
}

trap 'on_error $LINENO "$BASH_COMMAND"' ERR
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'echo "FAIL: terminated (timeout?)" >&2; exit 143' TERM

# ---- checks

assert_eq() {
	local expected=$1 actual=$2 what=$3
	[ "$expected" = "$actual" ] ||
		fail "$what: expected '$expected', got '$actual'"
	log "ok: $what = $actual"
}

assert_ne() {
	local unexpected=$1 actual=$2 what=$3
	[ "$unexpected" != "$actual" ] ||
		fail "$what: expected a value other than '$unexpected'"
	log "ok: $what = $actual"
}

# assert_num A OP B WHAT, with OP one of -eq -ne -lt -le -gt -ge.
assert_num() {
	local a=$1 op=$2 b=$3 what=$4
	[ "$a" "$op" "$b" ] || fail "$what: expected $a $op $b"
	log "ok: $what: $a $op $b"
}

assert_same_file() {
	local expected=$1 actual=$2 what=$3
	cmp -s "$expected" "$actual" ||
		fail "$what: $actual differs from $expected" \
			"($(cmp "$expected" "$actual" 2>&1 | head -n 1))"
	log "ok: $what: content equal"
}

# assert_contains TEXT NEEDLE WHAT: TEXT contains NEEDLE (fixed string).
assert_contains() {
	local text=$1 needle=$2 what=$3
	case $text in
	*"$needle"*) ;;
	*) fail "$what: expected the text to contain '$needle';" \
		"got: $text" ;;
	esac
	log "ok: $what contains '$needle'"
}

# ---- helpers

# A port on 127.0.0.1 where nothing listens (bound, then released).
closed_port() {
	free_port
}

sha256() {
	sha256sum "$1" | cut -d' ' -f1
}

# object_sha BUCKET KEY: sha256 of the object, read from the test server
# directly, or "missing" when the key does not exist.
object_sha() {
	local status=0
	s3 get "$1" "$2" >"$WORK/object" 2>"$WORK/object.err" || status=$?
	case $status in
	0) sha256 "$WORK/object" ;;
	3) echo missing ;;
	*) fail "s3cli.py get $1 $2 failed: $(cat "$WORK/object.err")" ;;
	esac
}

# write_file SRC DST: copy SRC to DST with one write, in Python, which
# reports a failed close.  Exits with 1 when the close fails, and prints
# the error.
write_file() {
	python3 - "$1" "$2" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
f = open(sys.argv[2], "wb")
f.write(data)
try:
    f.close()
except OSError as exc:
    print("close failed:", exc)
    sys.exit(1)
PY
}

# random_file PATH BYTES: incompressible content.
random_file() {
	head -c "$2" /dev/urandom >"$1"
}

mib() {
	echo $(($1 * 1024 * 1024))
}

s3rver_bin() {
	echo "$NEARFS_ROOT/tests/.s3rver/node_modules/.bin/s3rver"
}

# The command that runs moto's server, empty when moto is missing.
moto_command() {
	if command -v moto_server >/dev/null; then
		echo moto_server
	elif python3 -c 'import moto.server' 2>/dev/null; then
		echo "python3 -m moto.server"
	fi
}

# moto, or s3rver when NEARFS_S3_SERVER=s3rver or when only s3rver is
# installed (tools/install-deps.sh installs it when moto is unavailable).
s3_server_kind() {
	if [ -n "${NEARFS_S3_SERVER:-}" ]; then
		echo "$NEARFS_S3_SERVER"
	elif [ -z "$(moto_command)" ] && [ -x "$(s3rver_bin)" ]; then
		echo s3rver
	else
		echo moto
	fi
}

launch_s3_server() {
	local port=$1
	if [ "$S3_KIND" = s3rver ]; then
		mkdir -p "$WORK/s3rver"
		NODE_OPTIONS=--openssl-legacy-provider \
			"$(s3rver_bin)" --address 127.0.0.1 --port "$port" \
			--directory "$WORK/s3rver" --silent \
			>"$S3_LOG" 2>&1 &
	else
		# Word splitting of moto_command is intended.
		$(moto_command) -H 127.0.0.1 -p "$port" >"$S3_LOG" 2>&1 &
	fi
	S3_PID=$!
	CLEANUP_PIDS+=("$S3_PID")
}

wait_s3_server() {
	local url=$1 i
	for i in $(seq 150); do
		kill -0 "$S3_PID" 2>/dev/null || return 1
		http_answers "$url" && return 0
		sleep 0.2
	done
	return 1
}

# Start the test S3 server (moto, or s3rver when NEARFS_S3_SERVER=s3rver)
# on 127.0.0.1 and a free port, wait until it answers, and export
# NEARFS_TEST_ENDPOINT and the AWS credentials and region it accepts.
start_s3() {
	local attempt port
	S3_LOG=$WORK/s3-server.log
	S3_KIND=$(s3_server_kind)
	if [ "$S3_KIND" = moto ] && [ -z "$(moto_command)" ]; then
		fail "moto_server not found: run tools/install-deps.sh"
	fi
	for attempt in 1 2 3; do
		port=$(free_port)
		launch_s3_server "$port"
		if wait_s3_server "http://127.0.0.1:$port/"; then
			break
		fi
		stop_pid "$S3_PID"
		[ "$attempt" -lt 3 ] ||
			fail "the S3 test server did not start on port $port:" \
				"$(tail -n 5 "$S3_LOG")"
	done
	export NEARFS_TEST_ENDPOINT=http://127.0.0.1:$port
	if [ "$S3_KIND" = s3rver ]; then
		# s3rver accepts only its fixed development key pair.
		use_test_credentials S3RVER S3RVER
	else
		use_test_credentials test test
	fi
	log "S3 server $S3_KIND at $NEARFS_TEST_ENDPOINT" \
		"(pid $S3_PID)"
}

# Stop the server of start_s3 (for tests of an unreachable endpoint).
stop_s3() {
	stop_pid "$S3_PID"
}

# nearfs_options ORIGIN [OPTS]: the -o list mount_nearfs passes.  S3
# origins always get the endpoint of the test server, so no default ever
# reaches AWS.  cache_dir defaults to $WORK/cache.
nearfs_options() {
	local origin=$1 opts=${2:-} all
	all=$opts
	case ",$opts," in
	*,cache_dir=*) ;;
	*) all="cache_dir=$WORK/cache${all:+,$all}" ;;
	esac
	case $origin in
	s3://*)
		case ",$opts," in
		*,endpoint=*) ;;
		*) all="endpoint=$NEARFS_TEST_ENDPOINT,$all" ;;
		esac ;;
	esac
	echo "$all"
}

# mount_nearfs ORIGIN MNT [OPTS]: run build/nearfs -f in the background,
# under `env "${NEARFS_ENV[@]}"`, logging to $WORK/nearfs-N.log, and wait
# until MNT is a mount point.
# Fails, with the log, when the daemon exits first or 20 s pass.
mount_nearfs() {
	local origin=$1 mnt=$2 opts logfile pid i
	opts=$(nearfs_options "$origin" "${3:-}")
	mkdir -p "$mnt"
	NEARFS_MOUNTS=$((${NEARFS_MOUNTS:-0} + 1))
	logfile=$WORK/nearfs-$NEARFS_MOUNTS.log
	log "mount: nearfs -f -o $opts $origin $mnt"
	env "${NEARFS_ENV[@]}" "$NEARFS_BIN" -f -o "$opts" "$origin" "$mnt" \
		>"$logfile" 2>&1 &
	pid=$!
	NEARFS_PID[$mnt]=$pid
	NEARFS_LOG[$mnt]=$logfile
	CLEANUP_PIDS+=("$pid")
	CLEANUP_MOUNTS+=("$mnt")
	for i in $(seq 200); do
		if mountpoint -q "$mnt"; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" || true
			fail "nearfs exited before mounting $mnt:" \
				"$(cat "$logfile")"
		fi
		sleep 0.1
	done
	fail "nearfs did not mount $mnt within 20 s: $(cat "$logfile")"
}

# wait_pid_gone PID CAUSE: wait until process PID, a child or not, has
# ended after CAUSE; fails when it still runs after 30 s.
wait_pid_gone() {
	local pid=$1 cause=$2 i
	for i in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	fail "nearfs (pid $pid) still runs 30 s after $cause"
}

# wait_nearfs_exit MNT CAUSE: wait for the daemon of MNT to exit after
# CAUSE ("unmounting MNT", "SIGTERM"); fails when it exits with a
# non-zero status or is still running after 30 s.
wait_nearfs_exit() {
	local mnt=$1 cause=$2 pid status
	pid=${NEARFS_PID[$mnt]:-}
	wait_pid_gone "$pid" "$cause"
	status=0
	wait "$pid" || status=$?
	unset "NEARFS_PID[$mnt]"
	[ "$status" -eq 0 ] ||
		fail "nearfs for $mnt exited with status $status after $cause"
}

# unmount_nearfs MNT: unmount and wait for the daemon to exit, as
# wait_nearfs_exit does.
unmount_nearfs() {
	local mnt=$1
	[ -n "${NEARFS_PID[$mnt]:-}" ] ||
		fail "unmount_nearfs: $mnt was not mounted here"
	fusermount3 -u "$mnt" || fail "fusermount3 -u $mnt failed"
	wait_nearfs_exit "$mnt" "unmounting $mnt"
	log "unmounted $mnt"
}

# signal_nearfs MNT SIGNAL: send SIGNAL (TERM, INT, ...) to the daemon of
# MNT and wait for it to exit, as wait_nearfs_exit does.
signal_nearfs() {
	local mnt=$1 signal=$2
	[ -n "${NEARFS_PID[$mnt]:-}" ] ||
		fail "signal_nearfs: $mnt was not mounted here"
	kill -s "$signal" "${NEARFS_PID[$mnt]}"
	wait_nearfs_exit "$mnt" "SIG$signal"
	log "ok: the daemon of $mnt exited with status 0 after SIG$signal"
}

# kill_nearfs MNT [PID...]: SIGKILL the daemon of MNT, reap it and unmount
# the dead mount, as a crash would leave it.  The PIDs, programs that used
# the mount, are waited for first, because the unmount fails with EBUSY
# while they still have files there open (their calls fail with ENOTCONN
# once the daemon is dead).
kill_nearfs() {
	local mnt=$1 pid user
	shift
	pid=${NEARFS_PID[$mnt]}
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	unset "NEARFS_PID[$mnt]"
	for user in "$@"; do
		wait "$user" 2>/dev/null || true
	done
	fusermount3 -u "$mnt" || fail "fusermount3 -u of the dead mount $mnt"
	log "killed the daemon (pid $pid) with SIGKILL and unmounted $mnt"
}

# wait_for_line FILE PATTERN: wait up to 10 s until a line of FILE matches
# the extended regular expression PATTERN; fails with the content of FILE.
wait_for_line() {
	local file=$1 pattern=$2 i
	for i in $(seq 100); do
		grep -qE "$pattern" "$file" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "no line matching '$pattern' in $file within 10 s:" \
		"$(cat "$file" 2>/dev/null)"
}

# wait_until COMMAND...: run COMMAND every 0.1 s until it succeeds, for up
# to 10 s.  Returns its last status.
wait_until() {
	local i
	for i in $(seq 100); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

# listen_datagrams ADDRESS OUT: receive datagrams on a Unix socket at
# ADDRESS (a path, or @NAME in the abstract namespace) in the background
# and append each to OUT, ended by a newline.  Returns once the socket is
# bound.
listen_datagrams() {
	local address=$1 out=$2 i
	: >"$out"
	rm -f "$out.bound"
	python3 - "$address" "$out" <<'PY' &
import socket, sys
address, out = sys.argv[1:3]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind("\0" + address[1:] if address.startswith("@") else address)
open(out + ".bound", "w").close()
while True:
    data = sock.recv(65536).decode(errors="replace").rstrip("\n")
    with open(out, "a") as f:
        f.write(data + "\n")
PY
	CLEANUP_PIDS+=("$!")
	for i in $(seq 100); do
		[ -e "$out.bound" ] && return 0
		sleep 0.1
	done
	fail "no listener bound to $address within 10 s"
}

# start_fault_proxy [ARG...]: start tests/tools/fault_proxy.py in front
# of the server of start_s3, with the extra arguments, and wait until it
# writes its stats.  Sets PROXY_URL, PROXY_STATS (the stats file) and
# CONTROL (the control file of proxy_set).
start_fault_proxy() {
	local port i
	CONTROL=$WORK/proxy-control.json
	PROXY_STATS=$WORK/proxy-stats.json
	port=$(free_port)
	python3 "$NEARFS_ROOT/tests/tools/fault_proxy.py" --port "$port" \
		--upstream "${NEARFS_TEST_ENDPOINT#http://}" "$@" \
		--control "$CONTROL" --stats "$PROXY_STATS" \
		>"$WORK/proxy.log" 2>&1 &
	CLEANUP_PIDS+=("$!")
	for i in $(seq 100); do
		[ -s "$PROXY_STATS" ] && break
		sleep 0.1
	done
	[ -s "$PROXY_STATS" ] ||
		fail "fault_proxy.py did not start: $(cat "$WORK/proxy.log")"
	PROXY_URL=http://127.0.0.1:$port
}

# proxy_field NAME: a value of the proxy's stats ("requests",
# "faults.reset", "statuses.412"; 0 for a status never seen).
proxy_field() {
	python3 - "$PROXY_STATS" "$1" <<'PY'
import json, sys
value = json.load(open(sys.argv[1]))
for part in sys.argv[2].split("."):
    value = value.get(part, 0)
print(value)
PY
}

# pass_origin KIND NAME: print the origin of a test pass over KIND (s3 or
# dir): s3://data/NAME, or the directory $WORK/origin-NAME, created here.
pass_origin() {
	if [ "$1" = s3 ]; then
		echo "s3://data/$2"
	else
		mkdir -p "$WORK/origin-$2"
		echo "$WORK/origin-$2"
	fi
}

# wait_proxy_holding WHAT: wait up to 30 s until the proxy has a request
# on hold (its "holding" count), and fail naming WHAT otherwise.
wait_proxy_holding() {
	local i
	for i in $(seq 150); do
		[ "$(proxy_field holding)" -gt 0 ] && break
		sleep 0.2
	done
	assert_num "$(proxy_field holding)" -gt 0 "requests held $1"
}

# proxy_set JSON: replace the proxy's control file and wait until the
# proxy has applied it.
proxy_set() {
	local before i
	before=$(proxy_field reloads)
	echo "$1" >"$CONTROL.tmp"
	mv "$CONTROL.tmp" "$CONTROL"
	for i in $(seq 100); do
		[ "$(proxy_field reloads)" -gt "$before" ] && {
			log "proxy settings: $1"
			return 0
		}
		sleep 0.05
	done
	fail "fault_proxy.py did not apply $1: $(tail -n 5 "$WORK/proxy.log")"
}

# stats_json MNT: the output of nearfs-ctl stats --json.
stats_json() {
	"$NEARFS_CTL" stats --json "$1"
}

# stat_field MNT NAME: one counter, NAME as in the text output
# ("hits", "requests.GET"); nested objects and flat dotted keys both work.
stat_field() {
	stats_json "$1" | python3 -c '
import json, sys
data = json.load(sys.stdin)
name = sys.argv[1]
if name in data:
    value = data[name]
else:
    value = data
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            sys.exit("stat_field: no counter %r in %s" % (name, data))
        value = value[part]
print(value)' "$2"
}

# connects_added LOG VAR=VALUE... -- COMMAND...: how many more connect
# calls COMMAND makes with the variables set than without them.  Programs
# connect to system services of their own (bash looks up the user's name
# through nscd or userdb), so only the difference shows what a library added.
# The traced run's calls are left in LOG.
connects_added() {
	local log=$1 envs=() plain added
	shift
	while [ "$1" != "--" ]; do
		envs+=("$1")
		shift
	done
	shift
	strace -f -qq -e trace=connect -o "$log.plain" "$@" >/dev/null
	strace -f -qq -e trace=connect -o "$log" env "${envs[@]}" "$@" >/dev/null
	plain=$(grep -c 'connect(' "$log.plain" || true)
	added=$(grep -c 'connect(' "$log" || true)
	echo $((added - plain))
}

# reply_calls PID LOG COMMAND...: run COMMAND while strace records the
# splice and writev calls of process PID and its threads in LOG.  Prints
# "SPLICES COPIES": the count of splice calls, and the count of writev
# calls that sent 64 KiB or more, which are replies copied through a
# buffer.  Needs root to trace a process that is not strace's child.
reply_calls() {
	local pid=$1 log=$2 tracer i task traced
	shift 2
	strace -f -qq -e trace=splice,writev -p "$pid" -o "$log" &
	tracer=$!
	# strace attaches to every thread before the first call it records.
	for i in $(seq 100); do
		traced=1
		for task in /proc/"$pid"/task/*; do
			awk '$1 == "TracerPid:" && $2 == 0 { exit 1 }' \
				"$task/status" 2>/dev/null || traced=0
		done
		[ "$traced" = 1 ] && break
		sleep 0.1
	done
	[ "$traced" = 1 ] || fail "strace did not attach to process $pid"
	"$@"
	kill "$tracer"
	wait "$tracer" 2>/dev/null || true
	awk '/splice/ { s++ }
	     /writev/ && $NF ~ /^[0-9]+$/ && $NF >= 65536 { c++ }
	     END { print s + 0, c + 0 }' "$log"
}

require_fuse() {
	[ -c /dev/fuse ] ||
		fail "/dev/fuse is missing: load the fuse module (modprobe" \
			"fuse) or give the container --device /dev/fuse"
	command -v fusermount3 >/dev/null ||
		fail "fusermount3 is missing: run tools/install-deps.sh"
	[ -x "$NEARFS_BIN" ] ||
		fail "$NEARFS_BIN is missing: run make first"
	[ -x "$NEARFS_CTL" ] ||
		fail "$NEARFS_CTL is missing: run make first"
}

if [ "${NEARFS_NEEDS_FUSE:-1}" != 0 ]; then
	require_fuse
fi
