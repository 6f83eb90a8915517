/*
 * fuzz_journal.c - replay of the write-back journal (cache/journal.c) from
 * arbitrary bytes: the input is the whole journal file, header included.
 *
 * Random bytes almost never carry a valid XXH3 checksum, so before the
 * file is written the harness sets the checksum of each complete record
 * whose first pad byte is 0, as in every record nearfs writes.  Records
 * with another pad byte keep the checksum of the input, which lets the
 * fuzzer reach damaged records too.
 *
 * Properties:
 * - journal_read() never changes the file, and journal_open() changes a
 *   file it rejects neither;
 * - both return the same result and report the same pending entries;
 * - every pending entry is an upload the engine could have queued.  Its
 *   seq is from 1 to JOURNAL_SEQ_MAX, so that dirty/SEQ stays a file of
 *   the cache folder and the next seq does not wrap, and entries come
 *   once each in increasing seq order.  Its path is a valid origin path
 *   (relative, no empty, "." or ".." component, components of at most
 *   NAME_MAX bytes, shorter than PATH_MAX), and its modification time
 *   has valid nanoseconds;
 * - every rename in progress that journal_renames() lists after
 *   journal_open() is one the engine could have started.  Its seq is
 *   from 1 to JOURNAL_SEQ_MAX, in increasing order, and its replaced seq
 *   is below it.  Its two paths are valid and differ.  No pending entry
 *   is the one that a listed rename replaces;
 * - journal_max_seq() is at least every reported seq and at most
 *   JOURNAL_SEQ_MAX;
 * - after journal_open() the file has no damaged tail left, and reading
 *   and opening it again report the same entries and renames.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "fuzz.h"
#include "journal.h"

#define MAX_ENTRIES 4096
/* The layout of recordlog.c. */
#define FILE_HEADER_SIZE 16
#define RECORD_HEADER_SIZE 16

/* The pending entries one replay reported. */
struct entries {
	size_t count;
	uint64_t seq[MAX_ENTRIES];
	char *path[MAX_ENTRIES];
	struct origin_attr meta[MAX_ENTRIES];
};

/* The renames in progress that one journal_open() listed. */
struct renames {
	size_t count;
	uint64_t seq[MAX_ENTRIES];
	uint64_t replaced[MAX_ENTRIES];
	char *from[MAX_ENTRIES];
	char *to[MAX_ENTRIES];
};

static char dir[64];
static char journal_path[96];
static struct entries first, second;
static struct renames first_renames, second_renames;

static void remove_dir(void)
{
	char new_path[128];

	snprintf(new_path, sizeof(new_path), "%s.new", journal_path);
	unlink(new_path);
	unlink(journal_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct stat st;

	log_max_level = LOG_CRIT;
	/* tmpfs, where the fsync of each compaction costs nothing. */
	snprintf(dir, sizeof(dir), "%s/nearfs-fuzz-journal-XXXXXX",
		 stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(journal_path, sizeof(journal_path), "%s/journal", dir);
	atexit(remove_dir);
	return 0;
}

static void entries_reset(struct entries *e)
{
	for (size_t i = 0; i < e->count; i++)
		free(e->path[i]);
	e->count = 0;
}

static void renames_reset(struct renames *r)
{
	for (size_t i = 0; i < r->count; i++) {
		free(r->from[i]);
		free(r->to[i]);
	}
	r->count = 0;
}

static bool valid_origin_path(const char *path)
{
	size_t len = strlen(path);
	const char *p = path;

	if (len == 0 || len >= PATH_MAX)
		return false;
	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 0 || n > NAME_MAX || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!p[n])
			return true;
		p += n + 1;
	}
}

static void record_pending(void *arg, uint64_t seq, const char *path,
			   const struct origin_attr *meta)
{
	struct entries *e = arg;

	FUZZ_ASSERT(e->count < MAX_ENTRIES);
	FUZZ_ASSERT(seq >= 1 && seq <= JOURNAL_SEQ_MAX);
	FUZZ_ASSERT(e->count == 0 || seq > e->seq[e->count - 1]);
	FUZZ_ASSERT(valid_origin_path(path));
	FUZZ_ASSERT(meta->mtime.tv_nsec >= 0);
	FUZZ_ASSERT(meta->mtime.tv_nsec < 1000000000);
	e->seq[e->count] = seq;
	e->path[e->count] = strdup(path);
	FUZZ_ASSERT(e->path[e->count] != NULL);
	e->meta[e->count] = *meta;
	e->count++;
}

static void assert_same(const struct entries *a, const struct entries *b)
{
	FUZZ_ASSERT(a->count == b->count);
	for (size_t i = 0; i < a->count; i++) {
		FUZZ_ASSERT(a->seq[i] == b->seq[i]);
		FUZZ_ASSERT(strcmp(a->path[i], b->path[i]) == 0);
		FUZZ_ASSERT(a->meta[i].mode == b->meta[i].mode);
		FUZZ_ASSERT(a->meta[i].uid == b->meta[i].uid);
		FUZZ_ASSERT(a->meta[i].gid == b->meta[i].gid);
		FUZZ_ASSERT(a->meta[i].valid == b->meta[i].valid);
		FUZZ_ASSERT(a->meta[i].mtime.tv_sec == b->meta[i].mtime.tv_sec);
		FUZZ_ASSERT(a->meta[i].mtime.tv_nsec ==
			    b->meta[i].mtime.tv_nsec);
	}
}

/* Record and check the renames that j lists, against the pending
 * entries e that its open reported. */
static void record_renames(const struct journal *j, const struct entries *e,
			   struct renames *r)
{
	const struct journal_rename *list;
	size_t count;

	renames_reset(r);
	list = journal_renames(j, &count);
	FUZZ_ASSERT(count <= MAX_ENTRIES);
	for (size_t i = 0; i < count; i++) {
		FUZZ_ASSERT(list[i].seq >= 1 && list[i].seq <= JOURNAL_SEQ_MAX);
		FUZZ_ASSERT(i == 0 || list[i].seq > list[i - 1].seq);
		FUZZ_ASSERT(list[i].replaced < list[i].seq);
		FUZZ_ASSERT(valid_origin_path(list[i].from));
		FUZZ_ASSERT(valid_origin_path(list[i].to));
		FUZZ_ASSERT(strcmp(list[i].from, list[i].to) != 0);
		FUZZ_ASSERT(journal_max_seq(j) >= list[i].seq);
		for (size_t k = 0; list[i].replaced && k < e->count; k++)
			FUZZ_ASSERT(e->seq[k] != list[i].replaced);
		r->seq[i] = list[i].seq;
		r->replaced[i] = list[i].replaced;
		r->from[i] = strdup(list[i].from);
		r->to[i] = strdup(list[i].to);
		FUZZ_ASSERT(r->from[i] != NULL && r->to[i] != NULL);
		r->count++;
	}
}

static void assert_same_renames(const struct renames *a,
				const struct renames *b)
{
	FUZZ_ASSERT(a->count == b->count);
	for (size_t i = 0; i < a->count; i++) {
		FUZZ_ASSERT(a->seq[i] == b->seq[i]);
		FUZZ_ASSERT(a->replaced[i] == b->replaced[i]);
		FUZZ_ASSERT(strcmp(a->from[i], b->from[i]) == 0);
		FUZZ_ASSERT(strcmp(a->to[i], b->to[i]) == 0);
	}
}

/* Set the checksums of the records of buf as described at the top. */
static void fix_checksums(uint8_t *buf, size_t size)
{
	size_t off = FILE_HEADER_SIZE;

	while (off + RECORD_HEADER_SIZE <= size) {
		uint8_t *h = buf + off;
		uint32_t len;
		uint64_t sum;

		memcpy(&len, h + 4, sizeof(len));
		if (len > RECORDLOG_PAYLOAD_MAX ||
		    len > size - off - RECORD_HEADER_SIZE)
			break;
		if (h[1] == 0) {
			sum = XXH3_64bits_withSeed(h + RECORD_HEADER_SIZE, len,
						   h[0]);
			memcpy(h + 8, &sum, sizeof(sum));
		}
		off += RECORD_HEADER_SIZE + len;
	}
}

static void write_file(const uint8_t *data, size_t size)
{
	int fd = open(journal_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		      0600);

	FUZZ_ASSERT(fd >= 0);
	FUZZ_ASSERT(write(fd, data, size) == (ssize_t)size);
	close(fd);
}

/* Whether the journal file still contains exactly data. */
static bool file_is(const uint8_t *data, size_t size)
{
	int fd = open(journal_path, O_RDONLY | O_CLOEXEC);
	uint8_t *buf = malloc(size + 1);
	ssize_t n;
	bool same;

	FUZZ_ASSERT(fd >= 0 && buf);
	n = read(fd, buf, size + 1);
	same = n == (ssize_t)size && memcmp(buf, data, size) == 0;
	free(buf);
	close(fd);
	return same;
}

/*
 * Open the journal, checking what it reports against expected, and
 * record its renames in renames.  With expected_renames, they must be
 * the same.
 */
static int open_and_check(const struct entries *expected,
			  struct renames *renames,
			  const struct renames *expected_renames)
{
	struct journal *j = NULL;
	char err[512] = "";
	int ret;

	entries_reset(&second);
	ret = journal_open(journal_path, record_pending, &second, &j, err,
			   sizeof(err));
	if (ret == 0) {
		FUZZ_ASSERT(j != NULL);
		assert_same(expected, &second);
		FUZZ_ASSERT(journal_max_seq(j) <= JOURNAL_SEQ_MAX);
		for (size_t i = 0; i < second.count; i++)
			FUZZ_ASSERT(journal_max_seq(j) >= second.seq[i]);
		record_renames(j, &second, renames);
		if (expected_renames)
			assert_same_renames(expected_renames, renames);
		journal_close(j);
	} else {
		FUZZ_ASSERT(j == NULL);
		FUZZ_ASSERT(err[0] != '\0');
	}
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
	struct recordlog_scan scan;
	char err[512] = "";
	int ret_read, ret_open;
	uint8_t *data = malloc(size + 1);

	FUZZ_ASSERT(data != NULL);
	memcpy(data, input, size);
	fix_checksums(data, size);
	write_file(data, size);
	entries_reset(&first);
	ret_read = journal_read(journal_path, record_pending, &first, &scan,
				err, sizeof(err));
	FUZZ_ASSERT(file_is(data, size));
	if (ret_read == 0) {
		FUZZ_ASSERT(scan.size == size);
		FUZZ_ASSERT(scan.valid <= scan.size);
	} else {
		FUZZ_ASSERT(err[0] != '\0');
	}

	ret_open = open_and_check(&first, &first_renames, NULL);
	FUZZ_ASSERT(ret_open == ret_read);
	if (ret_open) {
		FUZZ_ASSERT(file_is(data, size));
		free(data);
		return 0;
	}
	free(data);

	/* The compacted file replays to the same entries, undamaged. */
	entries_reset(&second);
	FUZZ_ASSERT(journal_read(journal_path, record_pending, &second, &scan,
				 err, sizeof(err)) == 0);
	assert_same(&first, &second);
	FUZZ_ASSERT(scan.valid == scan.size);
	FUZZ_ASSERT(open_and_check(&first, &second_renames,
				   &first_renames) == 0);
	return 0;
}
