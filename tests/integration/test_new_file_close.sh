#!/usr/bin/env bash
# test_new_file_close.sh - a new file closed without writes reaches the
# origin at that close, so the close reports an origin that refuses it.
# A shell redirection closes one duplicate of the new file before the
# program writes, and still costs one upload.  Over a directory origin,
# in write-through and write-around mode.
. "$(dirname "$0")/../lib.sh"

# puts MNT: the count of uploads the daemon of MNT has made.
puts() {
	stat_field "$1" requests.PUT
}

# assert_one_put MNT WHAT COMMAND...: run COMMAND and check that it made
# exactly one upload.
assert_one_put() {
	local mnt=$1 what=$2 before
	shift 2
	before=$(puts "$mnt")
	"$@" || fail "$what failed"
	assert_eq 1 "$(($(puts "$mnt") - before))" "uploads for $what"
}

for mode in through around; do
	ORIGIN=$WORK/origin-$mode
	MNT=$WORK/mnt-$mode
	mkdir -p "$ORIGIN/locked"
	mount_nearfs "$ORIGIN" "$MNT" "write_mode=$mode"

	check "$mode: a shell redirection costs one upload"
	assert_one_put "$MNT" "a redirection of a builtin" \
		bash -c "echo builtin >'$MNT/builtin'"
	assert_one_put "$MNT" "a redirection of a program" \
		bash -c "env printf program >'$MNT/program'"
	assert_eq builtin "$(cat "$ORIGIN/builtin")" "builtin in the origin"
	assert_eq program "$(cat "$ORIGIN/program")" "program in the origin"

	check "$mode: touch of a new file uploads it at its close"
	assert_one_put "$MNT" "touch" touch "$MNT/empty"
	[ -f "$ORIGIN/empty" ] || fail "empty is not in the origin after touch"
	assert_eq 0 "$(stat -c %s "$ORIGIN/empty")" "size of empty in the origin"

	check "$mode: a refused new file fails its close"
	if ! chattr +i "$ORIGIN/locked" 2>"$WORK/chattr.err"; then
		log "skip: chattr +i is not available here:" \
			"$(cat "$WORK/chattr.err")"
		unmount_nearfs "$MNT"
		continue
	fi
	# Nothing may fail while the folder is immutable, or the work
	# folder could not be removed.
	touch_status=0
	touch "$MNT/locked/new" 2>"$WORK/touch.err" || touch_status=$?
	py_status=0
	python3 -c "open('$MNT/locked/py', 'w').close()" \
		2>"$WORK/py.err" || py_status=$?
	chattr -i "$ORIGIN/locked"
	[ "$touch_status" -ne 0 ] ||
		fail "touch of a new file in a folder the origin refuses" \
			"exited 0"
	assert_contains "$(cat "$WORK/touch.err")" "Operation not permitted" \
		"the message of touch"
	[ "$py_status" -ne 0 ] ||
		fail "python's close of a refused new file did not raise"
	assert_contains "$(cat "$WORK/py.err")" PermissionError \
		"the error of python"
	assert_eq "" "$(ls -A "$ORIGIN/locked")" "files in the locked folder"
	assert_eq "" "$(ls -A "$MNT/locked")" \
		"files in the locked folder through the mount"
	unmount_nearfs "$MNT"
done
