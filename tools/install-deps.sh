#!/usr/bin/env bash
# install-deps.sh - install the Debian packages and the test S3 server that
# building and testing nearfs need, when they are missing.
#
# Idempotent and silent when everything is present; prints one line per
# thing it installs.  Set NEARFS_S3_SERVER=s3rver to install the s3rver
# test server (npm) even when moto is available.
set -euo pipefail

cd "$(dirname "$0")/.."

# groff-base and man-db render and check the manual pages in docs/.
PACKAGES=(build-essential pkg-config libfuse3-dev fuse3 libcurl4-openssl-dev
	libexpat1-dev libxxhash-dev libcmocka-dev libssl-dev attr python3 strace
	groff-base man-db)
# clang and the libFuzzer runtime build the harnesses of make fuzz.  On
# Debian 12, libclang_rt.fuzzer-x86_64.a comes with libclang-rt-14-dev.
PACKAGES+=(clang libclang-rt-14-dev)
# cppcheck runs in make lint.
PACKAGES+=(cppcheck)
S3RVER_VERSION=3.7.1
S3RVER_PREFIX=tests/.s3rver

apt_updated=0
sudo_cmd=()

die() {
	echo "install-deps.sh: $*" >&2
	exit 1
}

pick_privilege() {
	if [ "$(id -u)" -eq 0 ]; then
		sudo_cmd=()
	elif command -v sudo >/dev/null 2>&1; then
		sudo_cmd=(sudo)
	else
		die "not root and sudo is missing: install these packages" \
			"as root: $*"
	fi
}

is_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null |
		grep -q 'install ok installed'
}

apt_install() {
	pick_privilege "$@"
	if [ "$apt_updated" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" \
			apt-get update -qq >/dev/null ||
			die "apt-get update failed"
		apt_updated=1
	fi
	for pkg in "$@"; do
		echo "installing $pkg (apt-get)"
	done
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" \
		apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
		die "apt-get install $* failed"
}

apt_has_candidate() {
	apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'
}

install_packages() {
	local missing=() pkg
	command -v dpkg-query >/dev/null 2>&1 ||
		die "dpkg-query not found: this script supports Debian and" \
			"its derivatives only; install by hand: ${PACKAGES[*]}"
	for pkg in "${PACKAGES[@]}"; do
		is_installed "$pkg" || missing+=("$pkg")
	done
	if [ "${#missing[@]}" -gt 0 ]; then
		apt_install "${missing[@]}"
	fi
	if ! python3 -c 'import botocore' >/dev/null 2>&1; then
		apt_install python3-botocore
	fi
}

has_moto() {
	command -v moto_server >/dev/null 2>&1 ||
		python3 -c 'import moto.server' >/dev/null 2>&1
}

install_moto() {
	has_moto && return 0
	echo "installing moto[server] (pip)"
	if python3 -m pip install --quiet 'moto[server]' >/dev/null 2>&1 &&
		has_moto; then
		return 0
	fi
	# Debian 12's pip refuses system-wide installs (PEP 668); fall back
	# to the distribution package when the archive has one.
	if apt_has_candidate python3-moto; then
		apt_install python3-moto
		has_moto && return 0
	fi
	return 1
}

install_s3rver() {
	[ -x "$S3RVER_PREFIX/node_modules/.bin/s3rver" ] && return 0
	if ! command -v npm >/dev/null 2>&1; then
		apt_install npm
	fi
	echo "installing s3rver@$S3RVER_VERSION (npm, $S3RVER_PREFIX)"
	npm install --silent --no-audit --no-fund --prefix "$S3RVER_PREFIX" \
		"s3rver@$S3RVER_VERSION" >/dev/null ||
		die "npm install s3rver@$S3RVER_VERSION failed"
}

install_s3_server() {
	if [ "${NEARFS_S3_SERVER:-moto}" = s3rver ]; then
		install_s3rver
		return
	fi
	install_moto && return 0
	echo "moto is unavailable; using s3rver instead" >&2
	install_s3rver
}

check_fuse_device() {
	[ -c /dev/fuse ] && return 0
	cat >&2 <<'MSG'
install-deps.sh: /dev/fuse is missing, so nearfs cannot mount.
  On a normal machine: modprobe fuse (as root).
  In a container: start it with --device /dev/fuse --cap-add SYS_ADMIN
  (docker/podman), or run the tests on a virtual machine.
The build works without it; the integration tests and the demo do not.
MSG
}

install_packages
install_s3_server
check_fuse_device
