# nearfs - a caching filesystem for S3 buckets and slow directories.
#
#   make            build build/nearfs and build/nearfs-ctl
#   make check      install what the tests need, then run every test
#   make check SANITIZE=address,undefined
#                   the same with ASan and UBSan, built in build-asan/
#   make check-tsan the threaded tests with TSan, built in build-tsan/
#   make lint       cppcheck over fs/, cache/ and tools/
#   make soak       long random and concurrent tests (tests/soak.sh):
#                   SOAK_OPS operations per fsx run (default 5000),
#                   SOAK_SEEDS fixed seeds (default "1 2 3"),
#                   SOAK_ROUNDS concurrent rounds (default 100)
#   make demo       mount a local S3 server with sample data and use it
#   make install    PREFIX=/usr/local DESTDIR= honoured
#
# Overridable: CC, CFLAGS, LDFLAGS, PKG_CONFIG, PREFIX, DESTDIR, V=1,
# SANITIZE=address,undefined.

CC ?= cc
PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
MANDIR ?= $(PREFIX)/share/man
VERSION := 0.1.0

# Sanitizer builds get their own folder, so a normal build in build/ is
# kept: SANITIZE=address,undefined builds in build-asan/, SANITIZE=thread
# in build-tsan/.
ifeq ($(SANITIZE),)
B := build
else ifneq ($(findstring thread,$(SANITIZE)),)
B := build-tsan
else
B := build-asan
endif
PKGS := fuse3 libcurl expat libxxhash libcrypto

# Recursive '=' so that pkg-config runs only when a recipe needs it; the
# dependency install of 'make check' must be able to run first.
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS))
CMOCKA_LIBS = $(shell $(PKG_CONFIG) --libs cmocka)

WARN := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2
BASE_CFLAGS := -std=gnu11 -O2 -g -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
	-DNEARFS_VERSION='"$(VERSION)"' -pthread -Icache -Ifs $(WARN)
# -fno-sanitize-recover makes every UBSan finding abort the program, so
# the tests fail on it.
ifneq ($(SANITIZE),)
BASE_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
# Sanitized programs run about two to three times slower, so each
# integration test gets 1200 s in place of 600 s.
export NEARFS_TEST_TIMEOUT ?= 1200
endif
ALL_CFLAGS = $(BASE_CFLAGS) $(PKG_CFLAGS) $(CFLAGS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

CACHE_SRC := $(wildcard cache/*.c)
FS_SRC := $(filter-out fs/main.c,$(wildcard fs/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/%,$(UNIT_SRC))
# Small programs the integration tests drive (an S3 request tool, ...).
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(patsubst tests/tools/%.c,$(B)/tools/%,$(TOOL_SRC))

CACHE_OBJ := $(patsubst %.c,$(B)/%.o,$(CACHE_SRC))
FS_OBJ := $(patsubst %.c,$(B)/%.o,$(FS_SRC))

.PHONY: all deps check soak unit integration demo bench install uninstall \
	clean

all: $(B)/nearfs $(B)/nearfs-ctl $(TOOL_BIN)

$(B)/%.o: %.c $(wildcard cache/*.h fs/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/libnearfs-cache.a: $(CACHE_OBJ)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(B)/libnearfs-fs.a: $(FS_OBJ)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(B)/nearfs: $(B)/fs/main.o $(B)/libnearfs-fs.a $(B)/libnearfs-cache.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

# verify reads and repairs cache folders with the engine's own code, and
# fs/roots.c finds the roots of daemons without FUSE.
$(B)/nearfs-ctl: $(B)/tools/nearfs-ctl.o $(B)/fs/roots.o \
		$(B)/libnearfs-cache.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(B)/test_%: tests/unit/test_%.c $(B)/libnearfs-fs.a $(B)/libnearfs-cache.a \
		$(wildcard tests/unit/*.h tests/unit/fake_*.c)
	@mkdir -p $(B)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< \
		$(B)/libnearfs-fs.a $(B)/libnearfs-cache.a \
		$(PKG_LIBS) $(CMOCKA_LIBS) -lm

$(B)/tools/%: tests/tools/%.c $(B)/libnearfs-fs.a $(B)/libnearfs-cache.a
	@mkdir -p $(B)/tools
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

# libnearfs-preload.so, the LD_PRELOAD library (docs/preload.md).  It runs
# inside other programs, so it is built without the FUSE and curl flags,
# without sanitizers and without _FILE_OFFSET_BITS (it defines both open
# and open64), links only libc, libdl and libpthread, and exports only the
# functions in its version script.
PRELOAD_SRC := $(wildcard fs/preload/*.c)
PRELOAD_OBJ := $(patsubst %.c,$(B)/%.pic.o,$(PRELOAD_SRC))
PRELOAD_LIB := $(B)/libnearfs-preload.so
PRELOAD_CFLAGS = -std=gnu11 -O2 -g -D_GNU_SOURCE -fPIC -fvisibility=hidden \
	-pthread -Ifs $(WARN) $(filter-out -fsanitize=%,$(CFLAGS)) \
	-U_FILE_OFFSET_BITS -U_FORTIFY_SOURCE

all: $(PRELOAD_LIB)

$(B)/fs/preload/%.pic.o: fs/preload/%.c $(wildcard fs/preload/*.h) \
		fs/ctl_link.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(PRELOAD_CFLAGS) -c -o $@ $<

$(PRELOAD_LIB): $(PRELOAD_OBJ) fs/preload/preload.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -pthread $(filter-out -fsanitize=%,$(LDFLAGS)) \
		-Wl,--version-script=fs/preload/preload.map -Wl,-z,defs \
		-o $@ $(PRELOAD_OBJ) -ldl

# preload_probe runs only with LD_PRELOAD=libnearfs-preload.so.  A
# sanitizer runtime must be the first library of a program, and the
# preload library comes before it, so an instrumented probe crashes at
# start; the probe is built without sanitizers, as the library is.
$(B)/tools/preload_probe: tests/tools/preload_probe.c
	@mkdir -p $(B)/tools
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(filter-out -fsanitize=% -fno-sanitize-recover=%,\
		$(ALL_CFLAGS)) $(filter-out -fsanitize=%,$(LDFLAGS)) \
		-o $@ $< -ldl

# The unit tests of the mountinfo parser and of the path functions
# include their sources.
$(B)/test_preload_mountinfo: fs/preload/mountinfo.c fs/preload/mountinfo.h
$(B)/test_preload_paths: fs/preload/paths.c fs/preload/paths.h

# make lint: cppcheck over the daemon, the cache engine and the tools.
# readdirCalled is suppressed because the readdir_r it recommends is
# deprecated since glibc 2.24, and readdir is thread-safe on a stream
# that one thread uses.
CPPCHECK ?= cppcheck
CPPCHECK_FLAGS := --enable=warning,portability,performance \
	--error-exitcode=1 --inline-suppr --quiet --std=c11 --library=posix \
	-D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DNEARFS_VERSION='"$(VERSION)"' \
	-Icache -Ifs -Ifs/preload --suppress=readdirCalled

.PHONY: lint
lint:
	$(Q)$(CPPCHECK) $(CPPCHECK_FLAGS) fs cache tools

.PHONY: install-preload uninstall-preload
install: install-preload
uninstall: uninstall-preload

install-preload: $(PRELOAD_LIB)
	install -d $(DESTDIR)$(LIBDIR)
	install -m 0755 $(PRELOAD_LIB) $(DESTDIR)$(LIBDIR)/

uninstall-preload:
	rm -f $(DESTDIR)$(LIBDIR)/libnearfs-preload.so

# Install the Debian packages and the test S3 server the build and the
# tests need, when they are missing.
deps:
	$(Q)tools/install-deps.sh

unit: all $(UNIT_BIN)
	$(Q)tests/run-unit.sh $(UNIT_BIN)

# NEARFS_BUILD tells the integration tests which build folder to test.
integration: all
	$(Q)NEARFS_BUILD=$(B) tests/integration/run.sh

check: deps
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BIN)
	$(Q)tests/run-unit.sh $(UNIT_BIN)
	$(Q)NEARFS_BUILD=$(B) tests/integration/run.sh

# make fuzz: build the libFuzzer harnesses tests/fuzz/fuzz_*.c and run
# each for FUZZ_SECONDS (default 30) over its corpus in
# tests/fuzz/corpus/NAME (docs/reliability.md).  The engine and the
# option parser are built again with clang, coverage and the sanitizers
# into build-fuzz/, apart from build/.  A crash, a leak or a failed
# property assertion makes the run fail.
FZ := build-fuzz
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -std=gnu11 -O1 -g -fno-omit-frame-pointer -D_GNU_SOURCE \
	-D_FILE_OFFSET_BITS=64 -DNEARFS_VERSION='"$(VERSION)"' -pthread \
	-Icache -Ifs $(FUZZ_SAN) $(PKG_CFLAGS)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(FZ)/%,$(FUZZ_SRC))
FUZZ_LIB_OBJ := $(patsubst %.c,$(FZ)/%.o,$(CACHE_SRC) fs/options.c \
	fs/roots.c)

.PHONY: fuzz fuzz-build clean-fuzz

$(FZ)/%.o: %.c $(wildcard cache/*.h fs/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FZ)/libnearfs-fuzz.a: $(FUZZ_LIB_OBJ)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(FZ)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FZ)/libnearfs-fuzz.a
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
		$(FZ)/libnearfs-fuzz.a $(PKG_LIBS) -lm

fuzz-build: $(FUZZ_BIN)

clean: clean-fuzz
clean-fuzz:
	rm -rf $(FZ)

fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BIN)

# make check-tsan: the tests that run threads concurrently, built with
# ThreadSanitizer in build-tsan/.  The cache engine starts readahead and
# upload threads in every unit program, so all of them run.  TSAN_TESTS
# selects the integration tests (a regular expression, as NEARFS_TESTS).
# All six passes of test_write_modes.sh take longer than its 600 s limit
# under TSan on 2 cores, so it runs the S3 passes only.
TSAN_TESTS ?= concurrent|fsx|write_modes|writeback|s3_read|faults|ctl
TSAN_WRITE_MODES ?= s3/through s3/back
.PHONY: check-tsan
check-tsan: deps
	$(Q)$(MAKE) --no-print-directory SANITIZE=thread all \
		$(patsubst $(B)/%,build-tsan/%,$(UNIT_BIN))
	$(Q)tests/run-unit.sh $(patsubst $(B)/%,build-tsan/%,$(UNIT_BIN))
	$(Q)NEARFS_BUILD=build-tsan NEARFS_TESTS='$(TSAN_TESTS)' \
		WRITE_MODES_PASSES='$(TSAN_WRITE_MODES)' \
		NEARFS_TEST_TIMEOUT=$${NEARFS_TEST_TIMEOUT:-1200} \
		tests/integration/run.sh

# The random (tests/tools/fsx.py) and concurrent tests, long; see
# tests/soak.sh for the variables.
soak: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/soak.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo.sh

# Compare nearfs with rclone, s3fs, a direct client, the local disk and
# bindfs (tools/bench.sh; BENCH_QUICK=1 for a short run).
bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/bench.sh

# Install and uninstall also take BINDIR, MANDIR, MOUNTHELPERDIR and
# UNITDIR.  mount(8) of util-linux 2.38 runs mount.TYPE helpers only from
# /sbin, /sbin/fs.d and /sbin/fs, whatever PREFIX is, so the link for
# `mount -t nearfs` goes to /sbin.  systemd reads units from
# /usr/lib/systemd/system and /usr/local/lib/systemd/system.
install uninstall: MOUNTHELPERDIR ?= /sbin
install uninstall: UNITDIR ?= $(PREFIX)/lib/systemd/system

install: all
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(B)/nearfs $(B)/nearfs-ctl $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(MOUNTHELPERDIR)
	ln -sf $(BINDIR)/nearfs $(DESTDIR)$(MOUNTHELPERDIR)/mount.nearfs
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 0644 docs/nearfs.1 docs/nearfs-ctl.1 $(DESTDIR)$(MANDIR)/man1/
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|@BINDIR@|$(BINDIR)|g' tools/nearfs@.service.in \
		>$(DESTDIR)$(UNITDIR)/nearfs@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/nearfs@.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/nearfs $(DESTDIR)$(BINDIR)/nearfs-ctl \
		$(DESTDIR)$(MOUNTHELPERDIR)/mount.nearfs \
		$(DESTDIR)$(MANDIR)/man1/nearfs.1 \
		$(DESTDIR)$(MANDIR)/man1/nearfs-ctl.1 \
		$(DESTDIR)$(UNITDIR)/nearfs@.service

clean:
	rm -rf build build-asan build-tsan
