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

unmount_nearfs "$MNT"
