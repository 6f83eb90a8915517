#!/usr/bin/env bash
# test_s3_list.sh - directory listings over many listing pages, and object
# keys with spaces and other characters that need URL encoding, read and
# written through a mount.
. "$(dirname "$0")/../lib.sh"

MNT=$WORK/mnt
start_s3
s3 mb data
s3 gen-files data many/f 250 100
s3 gen-files data many/sub1/g 3 10
s3 gen-files data many/sub2/h 2 10

names=("a b.txt" "plus+sign.txt" "percent%20.txt" "ünïcode.txt"
	"tilde~and=equals&amp.txt" "semi;colon,comma.txt")
for name in "${names[@]}"; do
	s3 put-bytes data "odd/$name" "content of $name"
done

# Listing pages of 7 keys, so that the 252 entries of many/ (250 keys and
# 2 common prefixes) take 36 pages.
NEARFS_ENV=(NEARFS_S3_LIST_MAX_KEYS=7)
mount_nearfs s3://data "$MNT" "chunk_size=1M"
NEARFS_ENV=()

check "listing over many pages"
assert_eq 252 "$(ls "$MNT/many" | wc -l)" "entries of many/"
assert_eq 250 "$(ls "$MNT/many" | grep -c '^f')" "files f* in many/"
assert_eq "f00000 f00001 f00249" \
	"$(ls "$MNT/many" | sed -n '1p;2p;250p' | xargs)" \
	"first and last names in many/"
assert_eq "sub1 sub2" "$(cd "$MNT/many" && find . -mindepth 1 \
	-maxdepth 1 -type d | sed 's|^\./||' | sort | xargs)" \
	"directories in many/"
assert_eq "$(s3 get data many/f00123)" "$(cat "$MNT/many/f00123")" \
	"content of many/f00123"
assert_num "$(stat_field "$MNT" requests.LIST)" -ge 36 "requests.LIST"

check "keys that need URL encoding, read"
for name in "${names[@]}"; do
	assert_eq "content of $name" "$(cat "$MNT/odd/$name")" \
		"content of odd/$name"
done
assert_eq "${#names[@]}" "$(ls "$MNT/odd" | wc -l)" "entries of odd/"

check "keys that need URL encoding, written"
for name in "${names[@]}"; do
	echo "written $name" >"$MNT/odd/new $name"
	assert_eq "written $name" "$(s3 get data "odd/new $name")" \
		"object odd/new $name"
done
mv "$MNT/odd/new a b.txt" "$MNT/odd/renamed ü+%.txt"
assert_eq "written a b.txt" "$(s3 get data "odd/renamed ü+%.txt")" \
	"object odd/renamed ü+%.txt"
rm "$MNT/odd/renamed ü+%.txt"
status=0
s3 head data "odd/renamed ü+%.txt" >/dev/null 2>&1 || status=$?
assert_eq 3 "$status" "s3cli.py head status of the removed key"

check "keys that cannot be file names are hidden and logged once"
python3 - "$NEARFS_ROOT/tests/tools" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from s3cli import make_client
client = make_client()
for key in ["hide/ok.txt", "hide/../up", "hide/./dot", "hide/" + "n" * 256,
            "hide/" + "m" * 255, "hide/conf", "hide/conf/x"]:
    client.put_object(Bucket="data", Key=key, Body=b"x")
PY
assert_eq "conf $(printf 'm%.0s' $(seq 255)) ok.txt" \
	"$(ls "$MNT/hide" | xargs)" "entries of hide/"
ls "$MNT/hide" >/dev/null
assert_eq 1 "$(grep -c 'key hide/\.\./ is hidden' "${NEARFS_LOG[$MNT]}")" \
	"warnings for the prefix hide/../"
# The object hide/conf takes the name of the prefix hide/conf/.
assert_eq 1 "$(grep -c 'key hide/conf/ is hidden: an object of the same name' \
	"${NEARFS_LOG[$MNT]}")" "warnings for the prefix hide/conf/"
assert_eq regular "$(stat -c %F "$MNT/hide/conf" | cut -d' ' -f1)" \
	"type of hide/conf"
assert_eq 4 "$(grep -c 'warning: s3: key .* is hidden' "${NEARFS_LOG[$MNT]}")" \
	"warnings for hidden keys"

check "rmdir of a folder with only hidden keys"
s3 put-bytes data "hollow//z" "hidden"
assert_eq "" "$(ls -A "$MNT/hollow")" "entries of hollow/"
status=0
err=$(rmdir "$MNT/hollow" 2>&1) || status=$?
assert_eq 1 "$status" "rmdir status"
assert_contains "$err" "Directory not empty" "rmdir message"
assert_eq 1 "$(grep -c 'cannot remove the folder hollow: it contains the hidden key hollow//z' \
	"${NEARFS_LOG[$MNT]}")" "warning of rmdir"
assert_eq hidden "$(s3 get data "hollow//z")" "object hollow//z"
# The kernel resolves ".." itself, so hide/../up names up in the root.
status=0
cat "$MNT/hide/../up" >/dev/null 2>&1 || status=$?
assert_eq 1 "$status" "cat status of hide/../up"
unmount_nearfs "$MNT"

check "a recursive listing logs the prefix that an object hides"
# Listing the root starts a recursive listing of the bucket, so the
# listing of hide/ sends no LIST of its own.
mount_nearfs s3://data "$MNT" "cache_dir=$WORK/cache-walk,chunk_size=1M"
ls "$MNT" >/dev/null
lists=$(stat_field "$MNT" requests.LIST)
assert_eq "conf $(printf 'm%.0s' $(seq 255)) ok.txt" \
	"$(ls "$MNT/hide" | xargs)" "entries of hide/"
assert_eq "$lists" "$(stat_field "$MNT" requests.LIST)" \
	"requests.LIST after listing hide/"
assert_eq 1 "$(grep -c 'key hide/conf/ is hidden: an object of the same name' \
	"${NEARFS_LOG[$MNT]}")" "warnings for the prefix hide/conf/"
assert_eq regular "$(stat -c %F "$MNT/hide/conf" | cut -d' ' -f1)" \
	"type of hide/conf"
unmount_nearfs "$MNT"

# Listing prefetch: a walk over a tree gets every listing below the
# first one from one recursive listing.  30 directories of 5 files, a
# directory marker with nothing below it, a key with a space and a key
# with an empty component ("x//y", listed as an empty directory x): 153
# keys below tree/.
python3 - "$NEARFS_ROOT/tests/tools" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from s3cli import make_client
client = make_client()
client.create_bucket(Bucket="walk")
for d in range(30):
    for f in range(5):
        client.put_object(Bucket="walk", Key="tree/d%02d/f%d" % (d, f),
                          Body=b"x" * (d * 5 + f))
client.put_object(Bucket="walk", Key="tree/d00/empty/", Body=b"")
client.put_object(Bucket="walk", Key="tree/d01/a b.txt", Body=b"spaced")
client.put_object(Bucket="walk", Key="tree/d02/x//y", Body=b"hidden")
PY

expected_tree() {
	local d f
	{
		for d in $(seq 0 29); do
			printf 'd d%02d\n' "$d"
			for f in $(seq 0 4); do
				printf 'f d%02d/f%d %d\n' "$d" "$f" $((d * 5 + f))
			done
		done
		echo "d d00/empty"
		echo "f d01/a b.txt 6"
		echo "d d02/x"
	} | LC_ALL=C sort
}

# walk_tree MNT: every entry below MNT/tree with its type, and the size
# of each file, which a stat of every file returns.
walk_tree() {
	find "$1/tree" -mindepth 1 \( -type f -printf 'f %P %s\n' \) -o \
		\( -type d -printf 'd %P\n' \) | LC_ALL=C sort
}

WALK=$WORK/walk
expected_tree >"$WORK/tree.expected"

# check_walk PAGE OPTS LISTS: mount walk/ with listing pages of PAGE
# keys and OPTS, walk tree/ and check the entries, that the walk sent
# LISTS LIST requests and no HEAD, and unmount.
check_walk() {
	local page=$1 opts=$2 want=$3 lists heads
	NEARFS_ENV=(NEARFS_S3_LIST_MAX_KEYS="$page")
	mount_nearfs s3://walk "$WALK" "chunk_size=1M${opts:+,$opts}"
	NEARFS_ENV=()
	stat "$WALK/tree" >/dev/null
	lists=$(stat_field "$WALK" requests.LIST)
	heads=$(stat_field "$WALK" requests.HEAD)
	walk_tree "$WALK" >"$WORK/tree.walked"
	assert_same_file "$WORK/tree.expected" "$WORK/tree.walked" \
		"names, types and sizes of the walk"
	assert_eq $((lists + want)) "$(stat_field "$WALK" requests.LIST)" \
		"requests.LIST after the walk"
	assert_eq "$heads" "$(stat_field "$WALK" requests.HEAD)" \
		"requests.HEAD after the walk"
	unmount_nearfs "$WALK"
}

check "walk with prefetch: one delimited and 4 recursive LIST requests"
# 30 common prefixes fit one page; ceil(153 / 40) = 4 recursive pages.
check_walk 40 "" $((1 + 4))

check "walk with a prefetch budget smaller than the tree"
# ceil(30 / 7) = 5 pages for tree/, ceil(60 / 7) = 9 recursive pages
# that complete d00 to d10 (d11 is cut), then one LIST each for d11 to
# d29.
check_walk 7 dir_prefetch=60 $((5 + 9 + 19))

check "walk without prefetch lists the same tree"
# One LIST per directory: tree/, 30 below it, d00/empty and d02/x.
check_walk 40 dir_prefetch=0 33

# Streaming listings: 2500 keys below big/, listed in pages of 500, so
# that a complete listing takes 5 LIST requests.  A readdir past the
# entries fetched so far fetches the next page; the listing cache gets
# the listing once its last page arrived.
DIRREAD=${DIRREAD:-$NEARFS_BUILD/tools/dirread}
STREAM=$WORK/stream
s3 mb stream
s3 gen-files stream big/k 2500 1
for i in $(seq 0 2499); do
	printf 'k%05d\n' "$i"
done >"$WORK/big.expected"

# mount_stream [OPTS]: mount the bucket stream with pages of 500 keys,
# stat big/ and set lists to the LIST requests sent so far.
mount_stream() {
	NEARFS_ENV=(NEARFS_S3_LIST_MAX_KEYS=500)
	mount_nearfs s3://stream "$STREAM" "chunk_size=1M${1:+,$1}"
	NEARFS_ENV=()
	stat "$STREAM/big" >/dev/null
	lists=$(stat_field "$STREAM" requests.LIST)
}

mount_stream

check "first entry of a large directory: one LIST"
first=$(python3 -c '
import os, sys
with os.scandir(sys.argv[1]) as it:
    print(next(it).name)' "$STREAM/big")
assert_eq k00000 "$first" "first entry of big/"
assert_eq $((lists + 1)) "$(stat_field "$STREAM" requests.LIST)" \
	"requests.LIST after reading one entry"

check "full listing of a large directory: 5 LISTs"
lists=$(stat_field "$STREAM" requests.LIST)
"$DIRREAD" "$STREAM/big" 0 | LC_ALL=C sort >"$WORK/big.listed"
assert_same_file "$WORK/big.expected" "$WORK/big.listed" \
	"names of big/, each once"
assert_eq $((lists + 5)) "$(stat_field "$STREAM" requests.LIST)" \
	"requests.LIST after the full listing"

check "second listing within dir_ttl: no LIST"
heads=$(stat_field "$STREAM" requests.HEAD)
ls -f "$STREAM/big" | grep -v '^\.\.\?$' | LC_ALL=C sort \
	>"$WORK/big.relisted"
assert_same_file "$WORK/big.expected" "$WORK/big.relisted" \
	"names of big/ from ls -f"
assert_eq 1 "$(stat -c %s "$STREAM/big/k01234")" "size of big/k01234"
assert_eq $((lists + 5)) "$(stat_field "$STREAM" requests.LIST)" \
	"requests.LIST after the second listing"
assert_eq "$heads" "$(stat_field "$STREAM" requests.HEAD)" \
	"requests.HEAD after a stat of a listed name"
unmount_nearfs "$STREAM"

check "rewinddir in the middle of a listing lists again"
mount_stream
"$DIRREAD" "$STREAM/big" 1000 rewind | LC_ALL=C sort \
	>"$WORK/big.rewound"
assert_same_file "$WORK/big.expected" "$WORK/big.rewound" \
	"names of big/ after rewinddir"
# 2 pages for the first 1000 names, then 5 again after the rewind.
assert_eq $((lists + 7)) "$(stat_field "$STREAM" requests.LIST)" \
	"requests.LIST of the rewound listing"
unmount_nearfs "$STREAM"

# Last, because it stops the S3 server.
check "failed page: EIO, earlier entries stay valid"
mount_stream timeout=1s
mkfifo "$WORK/go"
"$DIRREAD" "$STREAM/big" 600 pause <"$WORK/go" >"$WORK/big.partial" \
	2>"$WORK/dirread.err" &
reader=$!
CLEANUP_PIDS+=("$reader")
exec 9>"$WORK/go"
for i in $(seq 100); do
	grep -q paused "$WORK/dirread.err" && break
	sleep 0.1
done
assert_contains "$(cat "$WORK/dirread.err")" paused "dirread before the stop"
stop_s3
echo go >&9
exec 9>&-
status=0
wait "$reader" || status=$?
assert_eq 3 "$status" "dirread exit status"
assert_contains "$(cat "$WORK/dirread.err")" "Input/output error" \
	"dirread message"
# Pages 1 and 2 arrived before the stop, page 3 failed.
head -n 1000 "$WORK/big.expected" >"$WORK/big.first"
LC_ALL=C sort "$WORK/big.partial" >"$WORK/big.partial.sorted"
assert_same_file "$WORK/big.first" "$WORK/big.partial.sorted" \
	"names returned before the failed page"
assert_contains "$(cat "${NEARFS_LOG[$STREAM]}")" \
	"listing of /big failed after 1000 entries" "nearfs log"
unmount_nearfs "$STREAM"
