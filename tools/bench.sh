#!/usr/bin/env bash
# bench.sh - benchmark nearfs side by side with rclone mount, s3fs, a
# direct S3 client, the local disk and bindfs, over one S3 server on
# 127.0.0.1 (s3rver, or moto), and write the medians, the ratios and a
# chart.
#
# Run through `make bench` (installs the dependencies and builds first).
# Every S3 request goes through tests/bench/latency_proxy.py, which counts
# requests per test: one instance adds no delay, a second one adds
# BENCH_DELAY_MS each way for the latency tests.  Results go to the work
# folder (kept): results.csv (every run), medians.csv, results.json,
# summary.txt; the chart goes to docs/benchmarks.png.
#
# Environment:
#   BENCH_RUNS=3         repetitions of each measurement (median reported)
#   BENCH_QUICK=1        small data set and short fio runs (a few minutes)
#   BENCH_SCALE=F        data set size factor (default 1, quick 0.125)
#   BENCH_DELAY_MS=25    delay each way of the latency proxy
#   BENCH_CONN_MBPS=100  MB/s per connection through the latency proxy,
#                        0 for no limit
#   BENCH_SERVER=s3rver  the S3 server: s3rver or moto (moto copies the
#                        whole object for every ranged GET)
#   BENCH_SYSTEMS="..."  subset of: nearfs nearfs-preload
#                        nearfs-passthrough nearfs64 rclone s3fs direct
#                        local bindfs (nearfs-preload: the read tests
#                        under libnearfs-preload.so; nearfs-passthrough:
#                        the read tests with -o passthrough)
#   BENCH_GROUPS="..."   subset of: read meta write latency
#   BENCH_WORK=DIR       work folder (default /tmp/nearfs-bench.XXXXXX)
#   BENCH_CHART=PATH     chart file (default docs/benchmarks.png)
#   BENCH_SERVER_CPUS=L  CPUs of the S3 server and the proxies, as a
#                        taskset(1) list (e.g. 0); the clients get the
#                        other CPUs (default: every process may use every
#                        CPU)
set -eEuo pipefail
# A failed step inside $(...) must stop the run, not record garbage.
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NEARFS=$ROOT/build/nearfs
NEARFS_CTL=$ROOT/build/nearfs-ctl
BENCH_DIR=$ROOT/tests/bench
. "$ROOT/tests/net.sh"
S3DIRECT=$BENCH_DIR/s3direct.py

QUICK=${BENCH_QUICK:-0}
RUNS=${BENCH_RUNS:-3}
if [ "$QUICK" = 1 ]; then
	SCALE=${BENCH_SCALE:-0.125}
	FIO_SECONDS=3
else
	SCALE=${BENCH_SCALE:-1}
	FIO_SECONDS=10
fi
# A warm pass of 512 MiB takes under 0.1 s, which is too short for one
# timing to mean much, so read_warm reads the file this many times.
WARM_PASSES=4
DELAY_MS=${BENCH_DELAY_MS:-25}
CONN_MBPS=${BENCH_CONN_MBPS:-100}
SERVER=${BENCH_SERVER:-s3rver}
GROUPS_WANTED=${BENCH_GROUPS:-read meta write latency}
SERVER_CPUS=${BENCH_SERVER_CPUS:-}
CLIENT_CPUS=
# Prefix of the commands that start the server and the proxies.
ON_SERVER_CPUS=()
S3RVER=$ROOT/tests/.s3rver/node_modules/.bin/s3rver
SYSTEMS=${BENCH_SYSTEMS:-nearfs nearfs-preload nearfs-passthrough nearfs64 \
	rclone s3fs direct local bindfs}
PRELOAD_LIB=$ROOT/build/libnearfs-preload.so
# LD_PRELOAD of the programs that read in the read tests, set for
# nearfs-preload only.
READ_PRELOAD=
CHART=${BENCH_CHART:-$ROOT/docs/benchmarks.png}
BUCKET=bench
WRITE_TIMEOUT=300

# scaled N MIN: N times SCALE, at least MIN.
scaled() {
	awk -v n="$1" -v s="$SCALE" -v m="$2" \
		'BEGIN { v = int(n * s); print (v < m) ? m : v }'
}

BIG_MIB=$(scaled 512 16)
SMALL_FILES=$(scaled 2000 100)
TREE_DIRS=$(scaled 200 10)
TREE_FILES=10
CREATES=$(scaled 1000 50)
WRITE_MIB=$(scaled 256 16)
FILE_SIZE=4096

WORK=${BENCH_WORK:-$(mktemp -d /tmp/nearfs-bench.XXXXXX)}
mkdir -p "$WORK"
CSV=$WORK/results.csv
LOCAL=$WORK/local

declare -a CLEANUP_PIDS=()
declare -A MOUNT_PID=()
MNT=
STARTED_PORT=
S3_PORT=
PROXY_PORT=
DELAY_PORT=
MOUNT_COUNT=0
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

log() {
	printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

die() {
	echo "bench.sh: $*" >&2
	exit 1
}

# ---- cleanup

is_mounted() {
	awk -v path="$1" '$5 == path { found = 1 } END { exit !found }' \
		/proc/self/mountinfo
}

cleanup() {
	local status=$? mnt pid
	trap - ERR
	trap '' PIPE
	set +e
	for mnt in "${!MOUNT_PID[@]}"; do
		if is_mounted "$mnt"; then
			fusermount3 -u "$mnt" 2>/dev/null ||
				umount "$mnt" 2>/dev/null ||
				fusermount3 -u -z "$mnt"
		fi
		stop_pid "${MOUNT_PID[$mnt]}"
	done
	for pid in "${CLEANUP_PIDS[@]}"; do
		stop_pid "$pid"
	done
	# The data copies and caches are large; the results stay.
	rm -rf --one-file-system "$LOCAL" "$WORK/cache" "$WORK/src" \
		"$WORK/s3rver" \
		"$WORK/mnt"
	[ "$status" -eq 0 ] || echo "bench.sh: failed (status $status);" \
		"logs in $WORK" >&2
	exit "$status"
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'echo "bench.sh: failed: line $LINENO: $BASH_COMMAND" >&2' ERR

# ---- dependencies

install_missing() {
	local missing=() cmd pkg
	for pair in rclone:rclone s3fs:s3fs bindfs:bindfs fio:fio \
		gnuplot:gnuplot-nox curl:curl; do
		cmd=${pair%%:*}
		pkg=${pair#*:}
		command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	log "installing ${missing[*]} (apt-get)"
	local sudo_cmd=()
	if [ "$IS_ROOT" -eq 0 ]; then
		command -v sudo >/dev/null ||
			die "not root and sudo is missing: install ${missing[*]}"
		sudo_cmd=(sudo)
	fi
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get update -qq \
		>/dev/null
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y \
		-qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
}

# ---- servers

wait_port() {
	local port=$1 i
	for i in $(seq 150); do
		python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
			"$port" 2>/dev/null && return 0
		sleep 0.2
	done
	die "nothing listens on 127.0.0.1:$port"
}

# The interpreter itself, not a wrapper script (pyenv shims fork), so that
# the pids of the background servers are the servers'.
PYTHON=$(python3 -c 'import sys; print(sys.executable)')

# The server keeps the objects of s3rver here; after drop_caches the big
# object is read back into the page cache, because the cold reads measure
# the client's cache, not the server's disk.
SERVER_DATA=
KEY=

start_server_process() {
	S3_PORT=$(free_port)
	case $SERVER in
	s3rver)
		[ -x "$S3RVER" ] || NEARFS_S3_SERVER=s3rver \
			"$ROOT/tools/install-deps.sh" ||
			die "installing s3rver failed"
		SERVER_DATA=$WORK/s3rver
		mkdir -p "$SERVER_DATA"
		# Its listing tokens use DES, which Node.js 17 and later
		# offer only through the legacy provider.
		NODE_OPTIONS=--openssl-legacy-provider \
			"${ON_SERVER_CPUS[@]}" "$S3RVER" --address 127.0.0.1 \
			--port "$S3_PORT" --directory "$SERVER_DATA" --silent \
			>"$WORK/server.log" 2>&1 &
		# s3rver accepts only its fixed development key pair.
		KEY=S3RVER
		;;
	moto)
		"$PYTHON" -c 'import moto.server' 2>/dev/null ||
			die "moto is missing: run tools/install-deps.sh"
		"${ON_SERVER_CPUS[@]}" "$PYTHON" -m moto.server -H 127.0.0.1 \
			-p "$S3_PORT" \
			>"$WORK/server.log" 2>&1 &
		KEY=test
		;;
	*) die "BENCH_SERVER=$SERVER: use s3rver or moto" ;;
	esac
	CLEANUP_PIDS+=("$!")
	wait_port "$S3_PORT"
}

start_servers() {
	start_server_process
	start_proxy 0 0 counting
	PROXY_PORT=$STARTED_PORT
	start_proxy "$DELAY_MS" "$CONN_MBPS" delayed
	DELAY_PORT=$STARTED_PORT
	use_test_credentials "$KEY" "$KEY"
	log "$SERVER on 127.0.0.1:$S3_PORT, proxies :$PROXY_PORT (0 ms)" \
		"and :$DELAY_PORT ($DELAY_MS ms each way," \
		"$CONN_MBPS MB/s per connection)"
}

# s3curl ARGS...: curl with SigV4 and the server's key pair.  s3rver
# wants x-amz-content-sha256 on every request.
s3curl() {
	curl -sSf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$KEY" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

# start_proxy DELAY MBPS NAME: sets STARTED_PORT.  Not to be run in a
# subshell, so that cleanup has the pid.
start_proxy() {
	local port
	port=$(free_port)
	"${ON_SERVER_CPUS[@]}" "$PYTHON" "$BENCH_DIR/latency_proxy.py" \
		--port "$port" \
		--upstream "127.0.0.1:$S3_PORT" --delay-ms "$1" \
		--rate-mbps "$2" --stats "$WORK/proxy-$port.json" \
		>"$WORK/proxy-$3.log" 2>&1 &
	CLEANUP_PIDS+=("$!")
	wait_port "$port"
	STARTED_PORT=$port
}

endpoint() {
	echo "http://127.0.0.1:$1"
}

direct() {
	BENCH_ENDPOINT=$(endpoint "$1") python3 "$S3DIRECT" "${@:2}"
}

# ---- data set

prepare_data() {
	log "data set: ${BIG_MIB} MiB file, $SMALL_FILES files of" \
		"$FILE_SIZE B, tree of $TREE_DIRS x $TREE_FILES files"
	mkdir -p "$LOCAL/small" "$WORK/src"
	head -c "$((BIG_MIB << 20))" /dev/urandom >"$LOCAL/big"
	head -c "$((WRITE_MIB << 20))" /dev/urandom >"$WORK/src/write"
	python3 - "$LOCAL" "$SMALL_FILES" "$TREE_DIRS" "$TREE_FILES" \
		"$FILE_SIZE" <<'PY'
import os, sys
root, small, dirs, files, size = sys.argv[1], *map(int, sys.argv[2:])
def put(path, key):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    line = (key + "\n").encode()
    with open(path, "wb") as f:
        f.write((line * (size // len(line) + 1))[:size])
for i in range(small):
    key = "small/f%05d" % i
    put(os.path.join(root, key), key)
for d in range(dirs):
    for i in range(files):
        key = "tree/d%03d/f%02d" % (d, i)
        put(os.path.join(root, key), key)
put(os.path.join(root, "tree/README"), "tree/README")
PY
	direct "$S3_PORT" mb "$BUCKET"
	s3curl -T "$LOCAL/big" "$(endpoint "$S3_PORT")/$BUCKET/big" >/dev/null
	direct "$S3_PORT" fill "$BUCKET" small/ "$SMALL_FILES" "$FILE_SIZE"
	direct "$S3_PORT" fill "$BUCKET" tree/ "$TREE_FILES" "$FILE_SIZE" \
		"$TREE_DIRS"
	# s3rver leaves out of a listing the prefixes that contain only
	# deeper prefixes, so the top of the tree gets one file.
	direct "$S3_PORT" put "$BUCKET" tree/README "$LOCAL/tree/README"
	log "data set loaded: $(direct "$S3_PORT" count "$BUCKET" "")" \
		"(keys bytes)"
}

# ---- mounts

drop_caches() {
	sync
	if [ "$IS_ROOT" -eq 1 ]; then
		echo 3 >/proc/sys/vm/drop_caches
	fi
	if [ -n "$SERVER_DATA" ]; then
		find "$SERVER_DATA" -name 'big._S3rver_object' \
			-exec cat {} + >/dev/null
	fi
}

wait_mounted() {
	local mnt=$1 pid=$2 logfile=$3 i
	for i in $(seq 300); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$pid" 2>/dev/null ||
			die "mount of $mnt failed: $(tail -n 5 "$logfile")"
		sleep 0.1
	done
	die "$mnt was not mounted within 30 s: $(tail -n 5 "$logfile")"
}

write_rclone_config() {
	local port
	: >"$WORK/rclone.conf"
	for port in "$PROXY_PORT" "$DELAY_PORT"; do
		cat >>"$WORK/rclone.conf" <<EOF
[s3-$port]
type = s3
provider = Other
access_key_id = $KEY
secret_access_key = $KEY
endpoint = $(endpoint "$port")
force_path_style = true
region = us-east-1

EOF
	done
	echo "$KEY:$KEY" >"$WORK/s3fs.passwd"
	chmod 600 "$WORK/s3fs.passwd"
}

# mount_system SYSTEM PORT [NEARFS_OPTS]: mount with a fresh cache and
# set MNT to the mount point (the data copy for local).  Not to be run in
# a subshell: the daemon's pid must stay known to cleanup.
mount_system() {
	local sys=$1 port=$2 extra=${3:-} mnt cache logfile pid
	if [ "$sys" = local ]; then
		MNT=$LOCAL
		return
	fi
	MOUNT_COUNT=$((MOUNT_COUNT + 1))
	mnt=$WORK/mnt/$sys-$MOUNT_COUNT
	cache=$WORK/cache/$sys-$MOUNT_COUNT
	logfile=$WORK/logs/$sys-$MOUNT_COUNT.log
	mkdir -p "$mnt" "$cache" "$WORK/logs"
	case $sys in
	nearfs | nearfs64 | nearfs-*)
		local opts="endpoint=$(endpoint "$port"),path_style"
		opts+=",cache_dir=$cache"
		[ "$sys" = nearfs64 ] && opts+=",chunk_size=64M"
		[ "$sys" = nearfs-passthrough ] && opts+=",passthrough"
		"$NEARFS" -f -o "$opts${extra:+,$extra}" "s3://$BUCKET" \
			"$mnt" >"$logfile" 2>&1 &
		;;
	rclone)
		# rclone's S3 client rejects AWS_CA_BUNDLE on a plain http
		# endpoint ("unable to load custom CA bundle").
		env -u AWS_CA_BUNDLE rclone mount "s3-$port:$BUCKET" "$mnt" \
			--config "$WORK/rclone.conf" --vfs-cache-mode full \
			--cache-dir "$cache" >"$logfile" 2>&1 &
		;;
	s3fs)
		s3fs "$BUCKET" "$mnt" -f -o "url=$(endpoint "$port")" \
			-o use_path_request_style \
			-o "passwd_file=$WORK/s3fs.passwd" \
			-o "use_cache=$cache" >"$logfile" 2>&1 &
		;;
	bindfs)
		bindfs -f "$LOCAL" "$mnt" >"$logfile" 2>&1 &
		;;
	*) die "unknown system $sys" ;;
	esac
	pid=$!
	MOUNT_PID[$mnt]=$pid
	wait_mounted "$mnt" "$pid" "$logfile"
	MNT=$mnt
}

unmount_system() {
	local mnt=$1 pid i
	pid=${MOUNT_PID[$mnt]:-}
	[ -n "$pid" ] || return 0
	fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"
	for i in $(seq 600); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	stop_pid "$pid"
	wait "$pid" 2>/dev/null || true
	unset "MOUNT_PID[$mnt]"
	rm -rf --one-file-system "$WORK/cache/$(basename "$mnt")"
	rmdir "$mnt"
}

# ---- measuring

# record TEST SYSTEM RUN VALUE UNIT [REQUESTS...]
record() {
	local test=$1 sys=$2 run=$3 value=$4 unit=$5 total=${6:-} kinds
	kinds=${*:7}
	echo "$test,$sys,$run,$value,$unit,$total,$kinds" >>"$CSV"
	log "  $test $sys run $run: $value $unit" \
		"${total:+($total requests${kinds:+: $kinds})}"
}

now() {
	echo "$EPOCHREALTIME"
}

elapsed() {
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.4f", b - a }'
}

mbps() {
	awk -v bytes="$1" -v s="$2" 'BEGIN { printf "%.1f", bytes / 1e6 / s }'
}

# timed_read FILE [PASSES]: MB/s of PASSES (default 1) sequential reads
# of FILE, one after the other.
timed_read() {
	local start passes=${2:-1} i
	start=$(now)
	for i in $(seq "$passes"); do
		LD_PRELOAD=$READ_PRELOAD dd if="$1" of=/dev/null bs=1M \
			status=none
	done
	mbps "$((passes * (BIG_MIB << 20)))" "$(elapsed "$start")"
}

# requests_since PORT BEFORE: "DELTA KINDS" of requests since BEFORE.
requests_since() {
	python3 - "$WORK/proxy-$1.json" "$2" <<'PY'
import json, sys, time
time.sleep(0.2)
data = json.load(open(sys.argv[1]))
before = json.loads(sys.argv[2])
delta = {k: v - before["counts"].get(k, 0) for k, v in data["counts"].items()}
print(sum(delta.values()), " ".join("%s=%d" % kv for kv in delta.items()
                                    if kv[1]))
PY
}

snapshot() {
	sleep 0.2
	cat "$WORK/proxy-$1.json"
}

# measure TEST SYSTEM RUN UNIT PORT COMMAND...: run COMMAND (which prints
# the value), record it with the requests seen at PORT.
measure() {
	local test=$1 sys=$2 run=$3 unit=$4 port=$5 before value reqs=
	shift 5
	before=$(snapshot "$port")
	value=$("$@")
	if [ "$sys" != local ] && [ "$sys" != bindfs ]; then
		reqs=$(requests_since "$port" "$before")
	fi
	# Word splitting of reqs into total and kinds is intended.
	# shellcheck disable=SC2086
	record "$test" "$sys" "$run" "$value" "$unit" $reqs
}

fio_iops() {
	LD_PRELOAD=$READ_PRELOAD fio --name=rand4k --filename="$1" --rw=randread --bs=4k \
		--ioengine=psync --size="$((BIG_MIB << 20))" --time_based \
		--runtime="$FIO_SECONDS" --output-format=json 2>/dev/null |
		python3 -c 'import json, sys
print("%.0f" % json.load(sys.stdin)["jobs"][0]["read"]["iops"])'
}

drop_for() {
	if [ "$IS_ROOT" -eq 1 ]; then
		drop_caches
	else
		drop_page_cache "$1"
	fi
}

curl_get_mbps() {
	local start
	start=$(now)
	s3curl -o /dev/null "$(endpoint "$1")/$BUCKET/big"
	mbps "$((BIG_MIB << 20))" "$(elapsed "$start")"
}

# systems in the order of run N: shuffled, with N as the seed, so that
# no system always goes first or always follows the same one.  A system
# can leave the machine slower for the next one: on a 2-CPU VM, nearfs
# read about 18% slower cold right after bindfs (medians of 5 and 6
# runs), and a rotated order put it after bindfs in every run.
shuffled() {
	local run=$1
	shift
	printf '%s\n' "$@" |
		awk -v seed="$run" 'BEGIN { srand(seed) } { print rand(), $0 }' |
		sort -n | cut -d' ' -f2
}

# ---- tests 1-3: sequential and random reads

read_tests_fs() {
	local sys=$1 run=$2 port=$3 prefix=$4 mnt file
	# The cold read goes through FUSE in any case: a copy is lent
	# only once it is complete.
	[ "$sys" = nearfs-preload ] && READ_PRELOAD=$PRELOAD_LIB
	mount_system "$sys" "$port"
	mnt=$MNT
	file=$mnt/big
	drop_caches
	measure "${prefix}read_cold" "$sys" "$run" MB/s "$port" \
		timed_read "$file"
	if [ -z "$prefix" ]; then
		measure read_warm "$sys" "$run" MB/s "$port" \
			timed_read "$file" "$WARM_PASSES"
		if [ "$IS_ROOT" -eq 1 ]; then
			drop_caches
			measure read_dropped "$sys" "$run" MB/s "$port" \
				timed_read "$file"
		fi
		drop_for "$file"
		measure rand4k "$sys" "$run" IOPS "$port" fio_iops "$file"
	fi
	[ "$sys" = local ] || unmount_system "$mnt"
	READ_PRELOAD=
}

read_tests_direct() {
	local run=$1 port=$2 prefix=$3 sample
	measure "${prefix}read_cold" direct "$run" MB/s "$port" \
		curl_get_mbps "$port"
	# The ranged ceiling: what a chunked reader can get from this
	# server (4 MiB ranges, 8 in parallel, as nearfs's default
	# chunk_size and readahead), over at most 128 MiB.
	sample=$((BIG_MIB < 128 ? BIG_MIB : 128))
	measure "${prefix}read_cold" direct-range4m "$run" MB/s "$port" \
		direct "$port" rangeread "$BUCKET" big 4194304 8 \
		"$((sample << 20))"
	if [ -z "$prefix" ]; then
		measure rand4k direct "$run" IOPS "$port" \
			direct "$port" randread "$BUCKET" big "$FIO_SECONDS"
	fi
}

read_tests() {
	local prefix=$1 port=$2 run sys
	for run in $(seq "$RUNS"); do
		for sys in $(shuffled "$run" $SYSTEMS); do
			case $sys in
			direct) read_tests_direct "$run" "$port" "$prefix" ;;
			local | bindfs | nearfs-preload | nearfs-passthrough)
				[ -z "$prefix" ] || continue
				read_tests_fs "$sys" "$run" "$port" "" ;;
			*) read_tests_fs "$sys" "$run" "$port" "$prefix" ;;
			esac
		done
	done
}

# ---- test 4: metadata

timed_ls() {
	local start
	start=$(now)
	ls -l "$1" >/dev/null
	elapsed "$start"
}

timed_find() {
	local start n
	start=$(now)
	n=$(find "$1" -type f -printf '%s %m\n' | wc -l)
	[ "$n" -eq "$((TREE_DIRS * TREE_FILES + 1))" ] ||
		die "find $1 saw $n files, expected" \
			"$((TREE_DIRS * TREE_FILES + 1))"
	elapsed "$start"
}

direct_list() {
	direct "$1" list "$BUCKET" "$2" 2>/dev/null
}

meta_tests_system() {
	local sys=$1 run=$2 port=$3 prefix=$4 mnt
	if [ "$sys" = direct ]; then
		measure "${prefix}ls_first" direct "$run" s "$port" \
			direct_list "$port" small/
		measure "${prefix}find_first" direct "$run" s "$port" \
			direct_list "$port" tree/
		return
	fi
	mount_system "$sys" "$port"
	mnt=$MNT
	drop_caches
	measure "${prefix}ls_first" "$sys" "$run" s "$port" \
		timed_ls "$mnt/small"
	measure "${prefix}ls_second" "$sys" "$run" s "$port" \
		timed_ls "$mnt/small"
	measure "${prefix}find_first" "$sys" "$run" s "$port" \
		timed_find "$mnt/tree"
	measure "${prefix}find_second" "$sys" "$run" s "$port" \
		timed_find "$mnt/tree"
	[ "$sys" = local ] || unmount_system "$mnt"
}

meta_tests() {
	local prefix=$1 port=$2 run sys
	for run in $(seq "$RUNS"); do
		for sys in $(shuffled "$run" $SYSTEMS); do
			case $sys in
			nearfs64 | nearfs-preload | nearfs-passthrough)
				continue ;;
			esac
			if [ -n "$prefix" ]; then
				case $sys in local | bindfs) continue ;; esac
			fi
			meta_tests_system "$sys" "$run" "$port" "$prefix"
		done
	done
}

# ---- test 5: writes

# create_files DIR COUNT: seconds for COUNT creates of 4 KiB files.
create_files() {
	python3 - "$1" "$2" "$FILE_SIZE" <<'PY'
import os, sys, time
folder, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = b"x" * size
start = time.monotonic()
for i in range(count):
    with open(os.path.join(folder, "f%05d" % i), "wb") as f:
        f.write(data)
print("%.4f" % (time.monotonic() - start))
PY
}

write_big() {
	local start
	start=$(now)
	dd if="$WORK/src/write" of="$1" bs=1M status=none
	mbps "$((WRITE_MIB << 20))" "$(elapsed "$start")"
}

# The bucket-side expectation of one write run: keys and bytes.
write_expect() {
	echo "$((CREATES + 1)) $((CREATES * FILE_SIZE + (WRITE_MIB << 20)))"
}

# write_run_fs SYSTEM RUN WRITE_MODE: creates, big write, time to bucket.
write_run_fs() {
	local sys=$1 run=$2 mode=$3 name=$1 mnt dir key start value total
	local opts= before reqs expect
	[ -n "$mode" ] && name=nearfs-$mode && opts=write_mode=$mode
	mount_system "$sys" "$PROXY_PORT" "$opts"
	mnt=$MNT
	key=w/$name-$run
	dir=$mnt/$key
	[ "$sys" = local ] && dir=$WORK/wlocal/$key
	mkdir -p "$dir/c"
	before=$(snapshot "$PROXY_PORT")
	start=$(now)
	value=$(create_files "$dir/c" "$CREATES")
	record create_files "$name" "$run" "$value" s
	value=$(write_big "$dir/big")
	record write_big "$name" "$run" "$value" MB/s
	case $sys in
	local | bindfs) ;;
	*)
		read -r -a expect <<<"$(write_expect)"
		value=$(direct "$S3_PORT" wait "$BUCKET" "$key/" \
			"${expect[0]}" "${expect[1]}" "$WRITE_TIMEOUT")
		total=$(awk -v a="$start" -v b="$(now)" -v w="$value" \
			'BEGIN { printf "%.3f", w == "nan" ? w : b - a }')
		reqs=$(requests_since "$PROXY_PORT" "$before")
		# shellcheck disable=SC2086
		record in_bucket "$name" "$run" "$total" s $reqs
		;;
	esac
	[ "$sys" = local ] && rm -rf "$WORK/wlocal"
	[ "$sys" = bindfs ] && rm -rf "${LOCAL:?}/w"
	[ "$sys" = local ] || unmount_system "$mnt"
	direct "$S3_PORT" rm-prefix "$BUCKET" "w/"
}

write_run_direct() {
	local run=$1 key=w/direct-$run start value before reqs
	before=$(snapshot "$PROXY_PORT")
	start=$(now)
	value=$(direct "$PROXY_PORT" put-many "$BUCKET" "$key/c/" \
		"$CREATES" "$FILE_SIZE")
	record create_files direct "$run" "$value" s
	local t
	t=$(now)
	s3curl -T "$WORK/src/write" \
		"$(endpoint "$PROXY_PORT")/$BUCKET/$key/big" >/dev/null
	record write_big direct "$run" \
		"$(mbps "$((WRITE_MIB << 20))" "$(elapsed "$t")")" MB/s
	reqs=$(requests_since "$PROXY_PORT" "$before")
	# shellcheck disable=SC2086
	record in_bucket direct "$run" "$(elapsed "$start")" s $reqs
	direct "$S3_PORT" rm-prefix "$BUCKET" "w/"
}

write_tests() {
	local run sys list=()
	for sys in $SYSTEMS; do
		case $sys in
		nearfs) list+=(nearfs:through nearfs:back nearfs:around) ;;
		nearfs64 | nearfs-preload | nearfs-passthrough) ;;
		*) list+=("$sys:") ;;
		esac
	done
	for run in $(seq "$RUNS"); do
		for sys in $(shuffled "$run" "${list[@]}"); do
			if [ "${sys%%:*}" = direct ]; then
				write_run_direct "$run"
			else
				write_run_fs "${sys%%:*}" "$run" "${sys#*:}"
			fi
		done
	done
}

# Move this shell, and so every client it starts, to the CPUs that
# BENCH_SERVER_CPUS leaves free.  Without it, nothing is pinned.
split_cpus() {
	local all
	[ -n "$SERVER_CPUS" ] || return 0
	command -v taskset >/dev/null ||
		die "taskset is missing: install util-linux, or unset" \
			"BENCH_SERVER_CPUS"
	taskset -c "$SERVER_CPUS" true 2>/dev/null ||
		die "invalid BENCH_SERVER_CPUS=$SERVER_CPUS: this machine has" \
			"CPUs 0 to $(($(nproc) - 1)); use a list such as 0"
	all=$(taskset -pc $$ | sed 's/.*: //')
	CLIENT_CPUS=$("$PYTHON" - "$all" "$SERVER_CPUS" <<'PY'
import sys

def cpus(text):
    out = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        out.update(range(int(first), int(last or first) + 1))
    return out

left = sorted(cpus(sys.argv[1]) - cpus(sys.argv[2]))
print(",".join(map(str, left)))
PY
)
	[ -n "$CLIENT_CPUS" ] ||
		die "invalid BENCH_SERVER_CPUS=$SERVER_CPUS: it leaves no CPU" \
			"for the clients; name fewer CPUs"
	taskset -pc "$CLIENT_CPUS" $$ >/dev/null
	ON_SERVER_CPUS=(taskset -c "$SERVER_CPUS")
	log "server and proxies on CPUs $SERVER_CPUS, clients on $CLIENT_CPUS"
}

# ---- report

machine_info() {
	{
		echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "nproc: $(nproc)"
		echo "memory: $(free -h | awk '/^Mem:/ { print $2 }')"
		echo "kernel: $(uname -r)"
		echo "disk: $(df -h "$WORK" | awk 'NR == 2 { print $1 }')" \
			"rotational=$(lsblk -dno ROTA "$(df "$WORK" |
				awk 'NR == 2 { print $1 }')" 2>/dev/null ||
				echo '?')"
		echo "nearfs: $("$NEARFS" --version 2>&1 | head -n 1)" \
			"($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null ||
				echo '?'))"
		echo "rclone: $(rclone version 2>/dev/null | head -n 1)"
		echo "s3fs: $(s3fs --version 2>/dev/null | head -n 1)"
		echo "bindfs: $(bindfs --version 2>/dev/null | head -n 1)"
		echo "fio: $(fio --version)"
		if [ "$SERVER" = s3rver ]; then
			echo "server: s3rver $("$S3RVER" --version)"
		else
			echo "server: moto $("$PYTHON" -c \
				'import moto; print(moto.__version__)')"
		fi
		echo "scale: $SCALE (big ${BIG_MIB} MiB, $SMALL_FILES files," \
			"$TREE_DIRS x $TREE_FILES tree, $CREATES creates," \
			"${WRITE_MIB} MiB write), runs: $RUNS," \
			"delay: $DELAY_MS ms each way at $CONN_MBPS MB/s per" \
			"connection, server: $SERVER, root: $IS_ROOT"
		echo "cpus: server ${SERVER_CPUS:-all}, clients" \
			"${CLIENT_CPUS:-all}"
	} >"$WORK/machine.txt"
}

# wanted GROUP: whether BENCH_GROUPS names the test group.
wanted() {
	case " $GROUPS_WANTED " in
	*" $1 "*) return 0 ;;
	esac
	return 1
}

main() {
	[ -x "$NEARFS" ] || die "$NEARFS is missing: run make first"
	install_missing
	[ -c /dev/fuse ] || die "/dev/fuse is missing: nothing can mount"
	[ "$IS_ROOT" -eq 1 ] || log "not root: drop_caches is skipped, and" \
		"read_dropped is not measured"
	echo "test,system,run,value,unit,requests,request_kinds" >"$CSV"
	split_cpus
	start_servers
	write_rclone_config
	machine_info
	prepare_data
	if wanted read; then
		log "tests 1-3: sequential and random reads"
		read_tests "" "$PROXY_PORT"
	fi
	if wanted meta; then
		log "test 4: listings and stat"
		meta_tests "" "$PROXY_PORT"
	fi
	if wanted write; then
		log "test 5: writes"
		write_tests
	fi
	if wanted latency; then
		log "test 6: reads and listings with $DELAY_MS ms each way" \
			"and $CONN_MBPS MB/s per connection"
		read_tests lat_ "$DELAY_PORT"
		meta_tests lat_ "$DELAY_PORT"
	fi
	python3 "$BENCH_DIR/summarize.py" "$WORK" "$CHART"
	log "results in $WORK; chart $CHART"
}

main "$@"
