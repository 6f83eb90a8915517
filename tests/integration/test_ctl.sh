#!/usr/bin/env bash
# test_ctl.sh - the operator commands of nearfs-ctl against live mounts
# over the test S3 server.  It checks the values of stats (counters,
# latency, settings) and of the Prometheus format, from nearfs-ctl
# metrics and from the HTTP endpoint.  Then set, forget, usage, uploads
# and warm, with its limit of cache_size, and the progress bars of warm
# and flush on a pseudo-terminal.
. "$(dirname "$0")/../lib.sh"

CHUNK=$(mib 1)
SRC=$WORK/src
MNT=$WORK/mnt
mkdir -p "$SRC/tree/sub" "$SRC/big"

random_file "$SRC/three.bin" "$(mib 3)"
random_file "$SRC/other.bin" $((CHUNK + 5))
random_file "$SRC/tree/a.bin" $((2 * CHUNK + 17))
random_file "$SRC/tree/b.bin" 1000
random_file "$SRC/tree/sub/c.bin" "$CHUNK"
: >"$SRC/tree/sub/empty.bin"
TREE_BYTES=$((2 * CHUNK + 17 + 1000 + CHUNK))
TREE_CHUNKS=5
for i in 1 2 3; do
	random_file "$SRC/big/part$i.bin" "$(mib 2)"
done

start_s3
s3 mb data
(cd "$SRC" && find . -type f | sed 's|^\./||') | while read -r key; do
	s3 put data "$key" "$SRC/$key"
done

# json MNT EXPR: a Python expression over the stats of MNT, bound to d.
json() {
	stats_json "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(eval(sys.argv[1]))' "$2"
}

# server_heads KEY: HEAD requests for KEY in the moto server's log.
server_heads() {
	grep -c "\"HEAD /data/$1 " "$S3_LOG" || true
}

# prom_check FILE: parse FILE strictly as the Prometheus text format
# 0.0.4 and print "NAME{LABELS} VALUE" for each sample, labels sorted.
# Every line must be a comment, HELP, TYPE or a sample with valid names.
# Each metric needs its TYPE before its samples, and here also a HELP.
# Counters end in _total, and histogram buckets grow up to the +Inf
# bucket, which equals _count.
prom_check() {
	python3 - "$1" <<'PY'
import math, re, sys

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*'
VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r'^(%s)(?:\{((?:%s=%s)(?:,%s=%s)*)?,?\})?'
                    r' (\S+)(?: (-?\d+))?$'
                    % (NAME, LABEL, VALUE, LABEL, VALUE))
PAIR = re.compile(r'(%s)=(%s)' % (LABEL, VALUE))
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}

def fail(lineno, why, line):
    sys.exit("line %d: %s: %r" % (lineno, why, line))

text = open(sys.argv[1], encoding="utf-8").read()
if not text.endswith("\n"):
    sys.exit("the exposition does not end with a newline")
types, helps, out = {}, set(), []
buckets = {}
for lineno, line in enumerate(text[:-1].split("\n"), 1):
    if line.startswith("#"):
        parts = line.split(" ", 3)
        if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
            if len(parts) < 4 or not re.fullmatch(NAME, parts[2]):
                fail(lineno, "invalid %s line" % parts[1], line)
            name = parts[2]
            if parts[1] == "TYPE":
                if parts[3] not in TYPES:
                    fail(lineno, "unknown type", line)
                if name in types:
                    fail(lineno, "second TYPE of " + name, line)
                types[name] = parts[3]
            else:
                if name in helps:
                    fail(lineno, "second HELP of " + name, line)
                helps.add(name)
        continue
    m = SAMPLE.match(line)
    if not m:
        fail(lineno, "not a comment, HELP, TYPE or sample", line)
    name, labels, value = m.group(1), m.group(2) or "", m.group(3)
    try:
        number = float(value)
    except ValueError:
        fail(lineno, "invalid value", line)
    pairs = PAIR.findall(labels)
    if len(set(k for k, _ in pairs)) != len(pairs):
        fail(lineno, "a label twice", line)
    family = name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            family = base
    if family not in types:
        fail(lineno, "sample before the TYPE of its metric", line)
    kind = types[family]
    if kind == "counter" and not name.endswith("_total"):
        fail(lineno, "a counter not named *_total", line)
    if kind == "counter" and (number < 0 or math.isnan(number)):
        fail(lineno, "a counter below 0", line)
    if kind == "histogram" and name.endswith("_bucket"):
        le = [v for k, v in pairs if k == "le"]
        if not le:
            fail(lineno, "a bucket without le", line)
        key = (family, tuple(p for p in pairs if p[0] != "le"))
        prev = buckets.get(key, (-math.inf, 0))
        bound = float(le[0].strip('"'))
        if bound <= prev[0] or number < prev[1]:
            fail(lineno, "buckets not increasing", line)
        buckets[key] = (bound, number)
    if kind == "histogram" and name.endswith("_count"):
        key = (family, tuple(pairs))
        if key not in buckets or buckets[key][0] != math.inf:
            fail(lineno, "_count without a +Inf bucket", line)
        if buckets[key][1] != number:
            fail(lineno, "_count differs from the +Inf bucket", line)
    shown = ",".join("%s=%s" % p for p in sorted(pairs))
    out.append("%s{%s} %s" % (name, shown, value))
for name in types:
    if name not in helps:
        sys.exit("no HELP for " + name)
print("\n".join(out))
PY
}

# prom_value FILE SAMPLE: the value of one sample of prom_check's output.
prom_value() {
	awk -v s="$2" '$1 == s { print $2; found = 1 } END { exit !found }' \
		"$1" || fail "no sample $2 in $1"
}

METRICS_PORT=$(free_port)
OPTS=chunk_size=1M,readahead=0,ttl=1h,attr_ttl=1h,dir_ttl=1h,cache_size=64M
mount_nearfs s3://data "$MNT" "$OPTS,metrics=127.0.0.1:$METRICS_PORT"

check "stats after a cold read of 3 MiB"
cat "$MNT/three.bin" >/dev/null
assert_eq 3 "$(stat_field "$MNT" requests.GET)" "requests.GET"
assert_eq "$(mib 3)" "$(stat_field "$MNT" bytes_from_origin)" \
	"bytes_from_origin"
assert_eq 3 "$(stat_field "$MNT" misses)" "misses"
assert_eq "$(mib 3)" "$(stat_field "$MNT" bytes_cached)" "bytes_cached"
assert_eq 3 "$(stat_field "$MNT" chunks_cached)" "chunks_cached"
assert_eq "$(mib 64)" "$(stat_field "$MNT" cache_size)" "cache_size"
assert_eq 3600000 "$(stat_field "$MNT" ttl_ms)" "ttl_ms"
assert_eq info "$(stat_field "$MNT" log_level)" "log_level"
assert_eq True "$(json "$MNT" 'd["latency"]["GET"]["p50_ms"] > 0')" \
	"latency.GET.p50_ms above 0"
assert_eq True "$(json "$MNT" \
	'd["latency"]["GET"]["p99_ms"] >= d["latency"]["GET"]["p50_ms"]')" \
	"latency.GET.p99_ms at least p50_ms"
assert_eq 0.0 "$(stat_field "$MNT" latency.PUT.p50_ms)" \
	"latency.PUT.p50_ms without PUT requests"

check "stats after a warm read of the same file"
hits=$(stat_field "$MNT" hits)
from_cache=$(stat_field "$MNT" bytes_from_cache)
drop_page_cache "$MNT/three.bin"
cat "$MNT/three.bin" >/dev/null
assert_eq 3 "$(stat_field "$MNT" requests.GET)" "requests.GET after a warm read"
assert_eq 3 "$(stat_field "$MNT" misses)" "misses after a warm read"
assert_num "$(stat_field "$MNT" hits)" -ge $((hits + 3)) \
	"hits after a warm read (one at least per chunk)"
assert_eq $((from_cache + $(mib 3))) "$(stat_field "$MNT" bytes_from_cache)" \
	"bytes_from_cache after a warm read"
assert_eq True "$(json "$MNT" \
	'abs(d["hit_ratio"] - d["hits"] / (d["hits"] + d["misses"])) < 1e-4')" \
	"hit_ratio equals hits / (hits + misses)"

check "stats --watch with --count"
"$NEARFS_CTL" stats --watch 0.1 --count 3 "$MNT" >"$WORK/watch.txt"
assert_eq 3 "$(grep -c '^hits: ' "$WORK/watch.txt")" "reports of --count 3"
"$NEARFS_CTL" stats --json --watch 0.1 --count 2 "$MNT" >"$WORK/watch.json"
assert_eq 2 "$(python3 -c 'import json, sys
lines = open(sys.argv[1]).readlines()
print(sum(1 for line in lines if json.loads(line)["requests"]["GET"] == 3))' \
	"$WORK/watch.json")" "JSON reports of --count 2 with requests.GET 3"

check "metrics: the Prometheus text format, parsed strictly"
"$NEARFS_CTL" metrics "$MNT" >"$WORK/metrics.txt"
prom_check "$WORK/metrics.txt" >"$WORK/metrics.samples" ||
	fail "nearfs-ctl metrics is not valid Prometheus text"
assert_eq 3 "$(prom_value "$WORK/metrics.samples" \
	'nearfs_origin_requests_total{kind="GET"}')" "GET requests"
assert_eq "$(mib 3)" "$(prom_value "$WORK/metrics.samples" \
	'nearfs_read_bytes_total{source="origin"}')" \
	"bytes read from the origin"
assert_eq 3 "$(prom_value "$WORK/metrics.samples" \
	'nearfs_cache_misses_total{}')" "nearfs_cache_misses_total"
assert_eq 3 "$(prom_value "$WORK/metrics.samples" \
	'nearfs_origin_request_duration_seconds_count{kind="GET"}')" \
	"GET durations counted"
assert_eq "$(mib 64)" "$(prom_value "$WORK/metrics.samples" \
	'nearfs_cache_size_bytes{}')" "nearfs_cache_size_bytes"

check "metrics over HTTP on 127.0.0.1"
curl -sS -f -o "$WORK/http.txt" -D "$WORK/http.head" \
	"http://127.0.0.1:$METRICS_PORT/metrics" ||
	fail "GET http://127.0.0.1:$METRICS_PORT/metrics failed"
assert_contains "$(cat "$WORK/http.head")" "text/plain; version=0.0.4" \
	"Content-Type of /metrics"
prom_check "$WORK/http.txt" >"$WORK/http.samples" ||
	fail "the HTTP metrics are not valid Prometheus text"
assert_eq 3 "$(prom_value "$WORK/http.samples" \
	'nearfs_origin_requests_total{kind="GET"}')" "GET requests over HTTP"
status=$(curl -s -o /dev/null -w '%{http_code}' \
	"http://127.0.0.1:$METRICS_PORT/other")
assert_eq 404 "$status" "HTTP status of /other"
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
	"http://127.0.0.1:$METRICS_PORT/metrics")
assert_eq 405 "$status" "HTTP status of POST /metrics"

check "a start whose metrics port is taken leaves no mount behind"
# In the background the parent exits with the child's status, and the
# mount point must be free by then.
mkdir -p "$WORK/taken"
status=0
env "${NEARFS_ENV[@]}" "$NEARFS_BIN" -o \
	"endpoint=$NEARFS_TEST_ENDPOINT,cache_dir=$WORK/cache-taken,metrics=127.0.0.1:$METRICS_PORT" \
	s3://data "$WORK/taken" >"$WORK/taken.out" 2>&1 || status=$?
# /proc/mounts also lists a mount whose daemon is gone, which
# mountpoint(1) cannot stat.
MOUNTED=no
grep -q " $WORK/taken " /proc/mounts && MOUNTED=yes
[ "$MOUNTED" = no ] || fusermount3 -u -z "$WORK/taken"
assert_eq 4 "$status" "exit status with the metrics port taken"
assert_eq no "$MOUNTED" "a mount left at $WORK/taken when nearfs exited"
assert_contains "$(cat "$WORK/taken.out")" "$METRICS_PORT" \
	"message with the metrics port taken"

check "metrics= rejects an address that is not loopback"
status=0
"$NEARFS_BIN" -f -o "cache_dir=$WORK/cache-x,metrics=192.0.2.1:$METRICS_PORT" \
	s3://data "$WORK/never" >"$WORK/bad-metrics.out" 2>&1 || status=$?
assert_eq 1 "$status" "exit status of a mount with metrics=192.0.2.1"
assert_contains "$(cat "$WORK/bad-metrics.out")" \
	"listens on loopback addresses only" "message of metrics=192.0.2.1"

check "usage counts the bytes read"
"$NEARFS_CTL" usage --json "$MNT" three.bin >"$WORK/usage.json"
assert_eq "$(mib 3) 3 1" "$(python3 -c 'import json, sys
u = json.load(open(sys.argv[1]))
print(u["bytes"], u["chunks"], u["files"])' "$WORK/usage.json")" \
	"usage of three.bin: bytes, chunks, files"
cat "$MNT/other.bin" >/dev/null
"$NEARFS_CTL" usage "$MNT" >"$WORK/usage.txt"
assert_contains "$(cat "$WORK/usage.txt")" "bytes: $(($(mib 3) + CHUNK + 5))" \
	"usage of the whole mount"
assert_contains "$(cat "$WORK/usage.txt")" "chunks: 5" \
	"chunks in usage of the whole mount"
assert_contains "$(cat "$WORK/usage.txt")" "path: ." "path of the mount root"
# The path that usage prints is one that nearfs-ctl takes back.
"$NEARFS_CTL" usage "$MNT" three.bin >"$WORK/usage-file.txt"
SHOWN=$(sed -n 's/^path: //p' "$WORK/usage-file.txt")
assert_eq three.bin "$SHOWN" "path printed by usage of three.bin"
"$NEARFS_CTL" usage "$MNT" "$SHOWN" >"$WORK/usage-again.txt" ||
	fail "nearfs-ctl usage rejected the path it printed: $SHOWN"
assert_eq "$(cat "$WORK/usage-file.txt")" "$(cat "$WORK/usage-again.txt")" \
	"usage of the printed path"

check "-- ends the options of the path commands"
"$NEARFS_CTL" usage "$MNT" -- three.bin >"$WORK/usage-dd.txt"
assert_contains "$(cat "$WORK/usage-dd.txt")" "path: three.bin" \
	"path of usage after --"
status=0
"$NEARFS_CTL" usage "$MNT" -dash 2>"$WORK/dash.err" || status=$?
assert_eq 1 "$status" "exit status of usage -dash"
assert_contains "$(cat "$WORK/dash.err")" "unknown option '-dash'" \
	"message of usage -dash"
"$NEARFS_CTL" usage "$MNT" -- -dash >"$WORK/usage-dash.txt"
assert_contains "$(cat "$WORK/usage-dash.txt")" "path: -dash" \
	"path of usage -- -dash"
"$NEARFS_CTL" warm "$MNT" -- three.bin >/dev/null ||
	fail "nearfs-ctl warm -- three.bin failed"
status=0
"$NEARFS_CTL" warm "$MNT" -- 2>"$WORK/warm-dd.err" || status=$?
assert_eq 1 "$status" "exit status of warm with -- and no path"
assert_contains "$(cat "$WORK/warm-dd.err")" "warm: missing PATH" \
	"message of warm with -- and no path"

check "set ttl=0 makes the next open revalidate"
revalidations=$(stat_field "$MNT" revalidations)
heads=$(stat_field "$MNT" requests.HEAD)
gets=$(stat_field "$MNT" requests.GET)
server_before=$(server_heads three.bin)
cat "$MNT/three.bin" >/dev/null
assert_eq "$revalidations" "$(stat_field "$MNT" revalidations)" \
	"revalidations within ttl=1h"
"$NEARFS_CTL" set "$MNT" ttl=0 >"$WORK/set.out"
assert_contains "$(cat "$WORK/set.out")" "ttl_ms: 3600000 -> 0" \
	"reply of set ttl=0"
assert_eq 0 "$(stat_field "$MNT" ttl_ms)" "ttl_ms after set"
# cat(1) calls fstat(2).  After a read through FUSE the kernel marks its
# cached atime stale and sends that stat to the daemon, which under ttl=0
# checks the origin as well.  Read without a stat, so that the open makes
# the only check.
python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
while os.read(fd, 1 << 20):
    pass
os.close(fd)' "$MNT/three.bin"
assert_eq $((revalidations + 1)) "$(stat_field "$MNT" revalidations)" \
	"revalidations after set ttl=0"
assert_eq $((heads + 1)) "$(stat_field "$MNT" requests.HEAD)" \
	"requests.HEAD after set ttl=0"
assert_eq "$gets" "$(stat_field "$MNT" requests.GET)" \
	"requests.GET after the revalidation (same version)"
if [ "$S3_KIND" = moto ]; then
	assert_eq $((server_before + 1)) "$(server_heads three.bin)" \
		"HEAD requests for three.bin in the S3 server's log"
fi
"$NEARFS_CTL" set "$MNT" ttl=1h attr_ttl=30s >/dev/null
assert_eq 30000 "$(stat_field "$MNT" attr_ttl_ms)" "attr_ttl_ms after set"

check "set rejects what cannot change and invalid values"
status=0
"$NEARFS_CTL" set "$MNT" chunk_size=4M 2>"$WORK/set.err" || status=$?
assert_eq 1 "$status" "exit status of set chunk_size=4M"
assert_contains "$(cat "$WORK/set.err")" "cannot change while mounted" \
	"message of set chunk_size=4M"
assert_contains "$(cat "$WORK/set.err")" "$MNT" \
	"the mount point in the message of set chunk_size=4M"
status=0
"$NEARFS_CTL" set "$MNT" ttl=soon 2>"$WORK/set.err" || status=$?
assert_eq 1 "$status" "exit status of set ttl=soon"
assert_contains "$(cat "$WORK/set.err")" "invalid duration 'soon' for ttl" \
	"message of set ttl=soon"

check "forget makes the next read a miss"
from_origin=$(stat_field "$MNT" bytes_from_origin)
misses=$(stat_field "$MNT" misses)
"$NEARFS_CTL" forget "$MNT" three.bin >"$WORK/forget.out"
assert_contains "$(cat "$WORK/forget.out")" "dropped 1 file (3.0 MiB)" \
	"output of forget"
assert_eq "$CHUNK" "$(($(stat_field "$MNT" bytes_cached) - 5))" \
	"bytes_cached after forget (other.bin is left)"
assert_eq "$(sha256 "$SRC/three.bin")" "$(sha256 "$MNT/three.bin")" \
	"content of three.bin after forget"
assert_eq $((from_origin + $(mib 3))) "$(stat_field "$MNT" bytes_from_origin)" \
	"bytes_from_origin after forget and a read"
assert_eq $((misses + 3)) "$(stat_field "$MNT" misses)" \
	"misses after forget and a read"

check "warm of a tree fills the cache, then reads make no GET"
"$NEARFS_CTL" forget "$MNT" . >/dev/null
assert_eq 0 "$(stat_field "$MNT" bytes_cached)" "bytes_cached after forget ."
"$NEARFS_CTL" warm "$MNT" tree >"$WORK/warm.out"
assert_eq "$TREE_BYTES" "$(stat_field "$MNT" bytes_cached)" \
	"bytes_cached after warm"
assert_eq "$TREE_CHUNKS" "$(stat_field "$MNT" chunks_cached)" \
	"chunks_cached after warm"
assert_contains "$(cat "$WORK/warm.out")" "warm: 4 files" \
	"final line of warm"
if grep -q $'\r' "$WORK/warm.out"; then
	fail "warm drew a bar into a pipe: $(cat -v "$WORK/warm.out")"
fi
gets=$(stat_field "$MNT" requests.GET)
for f in tree/a.bin tree/b.bin tree/sub/c.bin tree/sub/empty.bin; do
	assert_eq "$(sha256 "$SRC/$f")" "$(sha256 "$MNT/$f")" \
		"content of $f after warm"
done
assert_eq "$gets" "$(stat_field "$MNT" requests.GET)" \
	"requests.GET of reads after warm"

check "warm draws a progress bar on a terminal"
"$NEARFS_CTL" forget "$MNT" tree >/dev/null
script -qec "$NEARFS_CTL warm $MNT tree" /dev/null >"$WORK/warm.tty"
assert_contains "$(cat "$WORK/warm.tty")" "100% [####################]" \
	"full bar of warm"
assert_contains "$(cat "$WORK/warm.tty")" "4/4 files" "files on the bar"
assert_contains "$(cat "$WORK/warm.tty")" $'\r' "redrawn bar line"
assert_contains "$(cat "$WORK/warm.tty")" \
	"warm: 4 files (3.0 MiB) in the cache" \
	"final totals of warm on a terminal"

unmount_nearfs "$MNT"

check "warm of a set larger than cache_size says so"
SMALL=$WORK/small
mount_nearfs s3://data "$SMALL" \
	"cache_dir=$WORK/cache-small,chunk_size=1M,readahead=0,cache_size=4M"
status=0
"$NEARFS_CTL" warm "$SMALL" big >"$WORK/warm-big.out" \
	2>"$WORK/warm-big.err" || status=$?
assert_eq 3 "$status" "exit status of a warm over cache_size"
assert_contains "$(cat "$WORK/warm-big.err")" "more than cache_size (4.0 MiB)" \
	"warning of a warm over cache_size"
assert_contains "$(cat "$WORK/warm-big.out")" \
	"warm: 2 files (4.0 MiB) in the cache" \
	"final line of a warm over cache_size"
assert_eq "$(mib 4)" "$(stat_field "$SMALL" bytes_cached)" \
	"bytes_cached after a warm over cache_size"
assert_eq 0 "$(stat_field "$SMALL" evictions)" \
	"evictions of a warm over cache_size"
unmount_nearfs "$SMALL"

check "uploads lists a pending write-back file"
WB=$WORK/wb
WB_OPTS=cache_dir=$WORK/cache-wb,chunk_size=1M,write_mode=back
mount_nearfs s3://data "$WB" "$WB_OPTS,writeback_delay=1h"
mkdir -p "$WB/out"
random_file "$WB/out/new.bin" 123457
"$NEARFS_CTL" uploads --json "$WB" >"$WORK/uploads.json"
assert_eq "1 /out/new.bin 123457 waiting 0" "$(python3 -c 'import json, sys
u = json.load(open(sys.argv[1]))["uploads"]
print(len(u), u[0]["path"], u[0]["size"], u[0]["state"], u[0]["attempts"])' \
	"$WORK/uploads.json")" "uploads: count, path, size, state, attempts"
"$NEARFS_CTL" uploads "$WB" >"$WORK/uploads.txt"
assert_contains "$(cat "$WORK/uploads.txt")" "123457  out/new.bin" \
	"size and path in the uploads table"

check "uploads escapes control characters in names"
mkdir -p "$WB/odd"
printf 'x' >"$WB/odd/nl
x"
"$NEARFS_CTL" uploads "$WB" >"$WORK/uploads.txt"
assert_eq 3 "$(wc -l <"$WORK/uploads.txt")" \
	"lines of the uploads table: header and two files"
assert_contains "$(cat "$WORK/uploads.txt")" '1  odd/nl\x0ax' \
	"size and escaped path in the uploads table"
rm "$WB/odd/nl
x"
rmdir "$WB/odd"

check "forget keeps data that is not uploaded yet"
status=0
"$NEARFS_CTL" forget "$WB" out 2>"$WORK/forget-wb.err" || status=$?
assert_eq 3 "$status" "exit status of forget of a pending file"
assert_contains "$(cat "$WORK/forget-wb.err")" "forget of $WB: kept 1 file" \
	"message of forget of a pending file"
assert_eq 1 "$(stat_field "$WB" uploads_pending)" "uploads_pending after forget"
assert_eq 123457 "$(stat_field "$WB" dirty_bytes)" "dirty_bytes after forget"
assert_eq 123457 "$(stat -c %s "$WB/out/new.bin")" "size after forget"

check "flush draws the same progress bar on a terminal"
script -qec "$NEARFS_CTL flush $WB" /dev/null >"$WORK/flush.tty"
assert_contains "$(cat "$WORK/flush.tty")" "100% [####################]" \
	"full bar of flush"
assert_contains "$(cat "$WORK/flush.tty")" "1/1 files" "files on the bar"
assert_contains "$(cat "$WORK/flush.tty")" \
	"flush: 1 file (120.6 KiB) uploaded" \
	"final totals of flush on a terminal"
assert_eq 0 "$(stat_field "$WB" uploads_pending)" "uploads_pending after flush"
s3 get data out/new.bin >"$WORK/new.bin"
assert_same_file "$WB/out/new.bin" "$WORK/new.bin" "uploaded new.bin"
"$NEARFS_CTL" uploads "$WB" >"$WORK/uploads.txt"
assert_eq "no file waits for upload" "$(cat "$WORK/uploads.txt")" \
	"uploads after flush"

check "errors name the mount point and the cause"
status=0
"$NEARFS_CTL" usage "$WORK" 2>"$WORK/notmount.err" || status=$?
assert_eq 2 "$status" "exit status of usage outside a mount"
assert_contains "$(cat "$WORK/notmount.err")" "is not on a nearfs mount" \
	"message of usage outside a mount"
status=0
"$NEARFS_CTL" warm "$WB" ../x 2>/dev/null || status=$?
assert_eq 1 "$status" "exit status of warm ../x"
status=0
"$NEARFS_CTL" warm "$WB" nothere 2>"$WORK/nothere.err" || status=$?
assert_eq 1 "$status" "exit status of warm of a missing path"
assert_contains "$(cat "$WORK/nothere.err")" "$WB" \
	"mount point in the message of warm of a missing path"
assert_contains "$(cat "$WORK/nothere.err")" "/nothere: No such file" \
	"cause in the message of warm of a missing path"

check "a start removes the control sockets of ended daemons"
SOCK_DIR=
for dir in /run/nearfs ${XDG_RUNTIME_DIR:+"$XDG_RUNTIME_DIR/nearfs"} \
	"/tmp/nearfs-$(id -u)"; do
	[ -S "$dir/${NEARFS_PID[$WB]}.sock" ] && SOCK_DIR=$dir && break
done
[ -n "$SOCK_DIR" ] || fail "no control socket of pid ${NEARFS_PID[$WB]}"
# Two pids of processes that have ended: one socket without a listener,
# and one with a listener, as a daemon of another pid namespace has.
GONE1=$(sh -c 'echo $$')
GONE2=$(sh -c 'echo $$')
python3 -c 'import socket, sys
socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$SOCK_DIR/$GONE1.sock"
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(1)
time.sleep(300)' "$SOCK_DIR/$GONE2.sock" &
LISTENER=$!
CLEANUP_PIDS+=("$LISTENER")
wait_until [ -S "$SOCK_DIR/$GONE2.sock" ] ||
	fail "the listener at $SOCK_DIR/$GONE2.sock did not start"
mount_nearfs s3://data "$WORK/again" "$OPTS"
if [ -e "$SOCK_DIR/$GONE1.sock" ]; then
	fail "$SOCK_DIR/$GONE1.sock stayed after a start"
fi
[ -S "$SOCK_DIR/$GONE2.sock" ] ||
	fail "$SOCK_DIR/$GONE2.sock, which has a listener, was removed"
[ -S "$SOCK_DIR/${NEARFS_PID[$WB]}.sock" ] ||
	fail "the socket of the running daemon was removed"
kill "$LISTENER"
wait "$LISTENER" 2>/dev/null || true
rm -f "$SOCK_DIR/$GONE2.sock"
unmount_nearfs "$WORK/again"
unmount_nearfs "$WB"
