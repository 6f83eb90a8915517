#!/usr/bin/env bash
# test_install.sh - make install lays out exactly the expected files under
# DESTDIR, for PREFIX=/usr and for the default PREFIX; the manual pages
# render and cover every option of nearfs --help; systemd-analyze accepts
# the unit; make uninstall with the same variables removes every file.
. "$(dirname "$0")/../lib.sh"

ROOT=$WORK/root

# run_make TARGET VAR=VALUE...: run make in the source tree, with its
# output in $WORK/make.log.
run_make() {
	make -C "$NEARFS_ROOT" --no-print-directory "$@" >"$WORK/make.log" 2>&1 ||
		fail "make $* failed: $(tail -n 20 "$WORK/make.log")"
}

# installed DIR: one line per file or link below DIR, directories left
# out: type (f or l), octal mode of files, path, and the target of links.
installed() {
	find "$1" ! -type d -printf '%y %m %P %l\n' |
		sed -e 's/^l [0-7]* /l /' -e 's/ $//' | sort
}

# render_man MANPATH NAME: the page NAME(1) as man(1) renders it, which
# is plain text when the output is not a terminal.
render_man() {
	MANWIDTH=80 man -M "$1" 1 "$2" 2>"$WORK/man.err"
}

check "make install DESTDIR PREFIX=/usr: exactly the expected files"
run_make install DESTDIR="$ROOT" PREFIX=/usr
cat >"$WORK/expected" <<'EOF'
f 644 usr/lib/systemd/system/nearfs@.service
f 644 usr/share/man/man1/nearfs-ctl.1
f 644 usr/share/man/man1/nearfs.1
f 755 usr/bin/nearfs
f 755 usr/bin/nearfs-ctl
f 755 usr/lib/libnearfs-preload.so
l sbin/mount.nearfs /usr/bin/nearfs
EOF
sort -o "$WORK/expected" "$WORK/expected"
installed "$ROOT" >"$WORK/actual"
diff "$WORK/expected" "$WORK/actual" ||
	fail "the files under DESTDIR differ from the expected list"
log "ok: $(wc -l <"$WORK/actual") files, as expected"
assert_same_file "$NEARFS_BIN" "$ROOT/usr/bin/nearfs" "installed nearfs"
assert_same_file "$NEARFS_CTL" "$ROOT/usr/bin/nearfs-ctl" \
	"installed nearfs-ctl"
assert_same_file "$NEARFS_ROOT/docs/nearfs.1" \
	"$ROOT/usr/share/man/man1/nearfs.1" "installed nearfs.1"

check "the unit runs the installed nearfs in the foreground"
UNIT=$ROOT/usr/lib/systemd/system/nearfs@.service
assert_eq 'ExecStart=/usr/bin/nearfs -f -o ${OPTIONS} ${ORIGIN} %f' \
	"$(grep '^ExecStart=' "$UNIT")" "ExecStart of the installed unit"
assert_eq "Type=notify" "$(grep '^Type=' "$UNIT")" "Type of the unit"
assert_eq 0 "$(grep -c '@BINDIR@' "$UNIT" || true)" \
	"@BINDIR@ left in the installed unit"

check "man -M renders both pages without warnings"
MANS=$ROOT/usr/share/man
render_man "$MANS" nearfs >"$WORK/nearfs.txt"
assert_eq "" "$(cat "$WORK/man.err")" "messages of man nearfs"
assert_contains "$(head -n 5 "$WORK/nearfs.txt" | tr -s " ")" \
	"nearfs - mount an S3 bucket or a slow directory with a local cache" \
	"NAME of nearfs(1)"
render_man "$MANS" nearfs-ctl >"$WORK/nearfs-ctl.txt"
assert_eq "" "$(cat "$WORK/man.err")" "messages of man nearfs-ctl"
assert_contains "$(head -n 5 "$WORK/nearfs-ctl.txt" | tr -s " ")" \
	"nearfs-ctl - show the counters of a nearfs mount" "NAME of nearfs-ctl(1)"
for page in nearfs nearfs-ctl; do
	assert_eq "" "$(groff -man -Tutf8 -ww -z "$MANS/man1/$page.1" 2>&1)" \
		"groff warnings for $page.1"
done

check "nearfs(1) names every option of nearfs --help"
# One word per option: the nearfs options (NAME=METAVAR or NAME), then
# the comma lists of FUSE and ignored options, without a trailing '='.
"$NEARFS_BIN" --help | python3 -c '
import re, sys
text = sys.stdin.read()
own = text.split("nearfs options:\n")[1].split("\n\n")[0]
for line in own.splitlines():
    m = re.match(r"  (\w+)[= ]", line + " ")
    if m:
        print(m.group(1))
for title in ("FUSE options", "Ignored"):
    block = text.split(title)[1].split("\n\n")[0].split(":\n", 1)[1]
    for word in re.split(r"[,\s]+", block):
        if word:
            print(word.rstrip("="))
' >"$WORK/options"
assert_num "$(wc -l <"$WORK/options")" -ge 50 "options in nearfs --help"
# The rendered page breaks long words with a hyphen; join them back.
tr '\n' ' ' <"$WORK/nearfs.txt" | sed 's/‐ *//g; s/- \+//g' >"$WORK/nearfs.flat"
missing=
while read -r option; do
	grep -qwF -- "$option" "$WORK/nearfs.flat" || missing="$missing $option"
done <"$WORK/options"
assert_eq "" "$missing" "options of nearfs --help missing from nearfs(1)"
for status in 0 1 2 3 4 5; do
	grep -qE "^ {7}$status {6}" "$WORK/nearfs.txt" ||
		fail "nearfs(1) does not describe exit status $status"
done
log "ok: nearfs(1) describes exit statuses 0 to 5"

check "nearfs-ctl(1) names every command of nearfs-ctl --help"
for cmd in $("$NEARFS_CTL" --help | sed -n 's/^  \([a-z]\+\) .*/\1/p'); do
	grep -qE "^ {7}$cmd " "$WORK/nearfs-ctl.txt" ||
		fail "nearfs-ctl(1) does not describe the command $cmd"
	log "ok: nearfs-ctl(1) describes $cmd"
done
for status in 0 1 2 3; do
	grep -qE "^ {7}$status {6}" "$WORK/nearfs-ctl.txt" ||
		fail "nearfs-ctl(1) does not describe exit status $status"
done
log "ok: nearfs-ctl(1) describes exit statuses 0 to 3"

check "make uninstall with the same variables removes every file"
run_make uninstall DESTDIR="$ROOT" PREFIX=/usr
assert_eq "" "$(installed "$ROOT")" "files left under DESTDIR"

check "the default PREFIX is /usr/local"
run_make install DESTDIR="$ROOT"
cat >"$WORK/expected" <<'EOF'
f 644 usr/local/lib/systemd/system/nearfs@.service
f 644 usr/local/share/man/man1/nearfs-ctl.1
f 644 usr/local/share/man/man1/nearfs.1
f 755 usr/local/bin/nearfs
f 755 usr/local/bin/nearfs-ctl
f 755 usr/local/lib/libnearfs-preload.so
l sbin/mount.nearfs /usr/local/bin/nearfs
EOF
sort -o "$WORK/expected" "$WORK/expected"
installed "$ROOT" >"$WORK/actual"
diff "$WORK/expected" "$WORK/actual" ||
	fail "the files of the default PREFIX differ from the expected list"
log "ok: $(wc -l <"$WORK/actual") files under usr/local and sbin"
run_make uninstall DESTDIR="$ROOT"
assert_eq "" "$(installed "$ROOT")" "files left after uninstall"

check "systemd-analyze verify accepts the installed unit"
if ! command -v systemd-analyze >/dev/null; then
	log "systemd-analyze is missing: the unit is not verified"
else
	# An install without DESTDIR, so that the paths in the unit exist;
	# MANPATH lets the check of Documentation=man:nearfs(1) find it.
	PREFIX_DIR=$WORK/prefix
	run_make install PREFIX="$PREFIX_DIR" \
		MOUNTHELPERDIR="$PREFIX_DIR/sbin"
	status=0
	out=$(MANPATH=$PREFIX_DIR/share/man systemd-analyze verify \
		"$PREFIX_DIR/lib/systemd/system/nearfs@mnt-data.service" 2>&1) ||
		status=$?
	assert_eq 0 "$status" "exit status of systemd-analyze verify"
	assert_eq "" "$out" "messages of systemd-analyze verify"
	run_make uninstall PREFIX="$PREFIX_DIR" \
		MOUNTHELPERDIR="$PREFIX_DIR/sbin"
	assert_eq "" "$(installed "$PREFIX_DIR")" \
		"files left after uninstall of PREFIX=$PREFIX_DIR"
fi
