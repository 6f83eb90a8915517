/* test_origin_dir.c - the directory origin against a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "origin.h"

struct fixture {
	char root[PATH_MAX];
	struct origin *o;
};

static void put_file(const char *root, const char *rel, const char *text)
{
	char path[2 * PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void make_dir(const char *root, const char *rel)
{
	char path[2 * PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static bool path_exists(const char *root, const char *rel)
{
	char path[2 * PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return lstat(path, &st) == 0;
}

static uint64_t count_of(struct origin *o, enum origin_request kind)
{
	return atomic_load(&o->counters.requests[kind]);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	const char *tmp = getenv("TMPDIR");
	char err[256];

	assert_non_null(fx);
	snprintf(fx->root, sizeof(fx->root), "%s/nearfs-test-origin-dir-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(fx->root));
	assert_int_equal(origin_dir_new(fx->root, &fx->o, err, sizeof(err)),
			 0);
	*state = fx;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	origin_free(fx->o);
	nftw(fx->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* A memory file holding text, as the cache engine hands to write(). */
static int source_fd(const char *text)
{
	int fd = memfd_create("source", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

static void test_new_names_origin(void **state)
{
	struct fixture *fx = *state;
	char real[PATH_MAX], identity[PATH_MAX + 8];

	assert_non_null(realpath(fx->root, real));
	snprintf(identity, sizeof(identity), "dir:%s", real);
	assert_string_equal(fx->o->name, real);
	assert_string_equal(fx->o->identity, identity);
}

static void test_new_missing_path(void **state)
{
	struct fixture *fx = *state;
	char path[PATH_MAX + 16], err[512] = "";
	struct origin *o = NULL;

	snprintf(path, sizeof(path), "%s/absent", fx->root);
	assert_int_equal(origin_dir_new(path, &o, err, sizeof(err)), -ENOENT);
	assert_null(o);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "existing directory"));
}

static void test_stat_file_version(void **state)
{
	struct fixture *fx = *state;
	struct origin_attr attr;
	char path[PATH_MAX + 8], expect[ORIGIN_VERSION_MAX];
	struct stat st;

	put_file(fx->root, "f", "hello");
	snprintf(path, sizeof(path), "%s/f", fx->root);
	assert_int_equal(stat(path, &st), 0);
	snprintf(expect, sizeof(expect), "%llu-5-%lld.%09ld",
		 (unsigned long long)st.st_ino, (long long)st.st_mtim.tv_sec,
		 st.st_mtim.tv_nsec);

	assert_int_equal(fx->o->ops->stat(fx->o, "f", &attr), 0);
	assert_true(S_ISREG(attr.mode));
	assert_int_equal(attr.size, 5);
	assert_int_equal(attr.uid, st.st_uid);
	assert_int_equal(attr.mtime.tv_sec, st.st_mtim.tv_sec);
	assert_int_equal(attr.valid, ORIGIN_ATTR_MODE | ORIGIN_ATTR_UID |
			 ORIGIN_ATTR_GID | ORIGIN_ATTR_MTIME);
	assert_string_equal(attr.version, expect);
	assert_int_equal(count_of(fx->o, ORIGIN_REQ_HEAD), 1);
}

static void test_stat_dir_and_root(void **state)
{
	struct fixture *fx = *state;
	struct origin_attr attr;

	make_dir(fx->root, "d");
	assert_int_equal(fx->o->ops->stat(fx->o, "d", &attr), 0);
	assert_true(S_ISDIR(attr.mode));
	assert_string_equal(attr.version, "");
	assert_int_equal(fx->o->ops->stat(fx->o, "", &attr), 0);
	assert_true(S_ISDIR(attr.mode));
	assert_int_equal(fx->o->ops->stat(fx->o, "absent", &attr), -ENOENT);
	assert_int_equal(fx->o->ops->stat(fx->o, "d/absent", &attr),
			 -ENOENT);
	assert_int_equal(fx->o->ops->stat(fx->o, "absent/x", &attr),
			 -ENOENT);
	assert_int_equal(atomic_load(&fx->o->counters.errors), 0);
}

struct listing {
	char names[8][NAME_MAX + 1];
	struct origin_attr attrs[8];
	int count;
	int stop_after;		/* 0: never stop */
};

static int collect(void *arg, const char *name,
		   const struct origin_attr *attr)
{
	struct listing *l = arg;

	assert_true(l->count < 8);
	snprintf(l->names[l->count], sizeof(l->names[0]), "%s", name);
	l->attrs[l->count] = *attr;
	l->count++;
	return l->stop_after && l->count == l->stop_after ? 42 : 0;
}

static int find_entry(const struct listing *l, const char *name)
{
	for (int i = 0; i < l->count; i++)
		if (strcmp(l->names[i], name) == 0)
			return i;
	return -1;
}

static void test_list_hides_tmp_files(void **state)
{
	struct fixture *fx = *state;
	struct listing l = { 0 };
	int i;

	make_dir(fx->root, "sub");
	put_file(fx->root, "sub/a", "123");
	make_dir(fx->root, "sub/inner");
	put_file(fx->root, "sub/.nearfs-tmp-abc123", "partial");
	put_file(fx->root, "sub/.hidden", "x");

	assert_int_equal(fx->o->ops->list(fx->o, "sub", collect, &l), 0);
	assert_int_equal(l.count, 3);
	assert_int_equal(find_entry(&l, ".nearfs-tmp-abc123"), -1);
	assert_int_equal(find_entry(&l, "."), -1);
	assert_int_equal(find_entry(&l, ".."), -1);
	assert_true(find_entry(&l, ".hidden") >= 0);

	i = find_entry(&l, "a");
	assert_true(i >= 0);
	assert_true(S_ISREG(l.attrs[i].mode));
	assert_int_equal(l.attrs[i].size, 3);
	assert_true(l.attrs[i].valid & ORIGIN_ATTR_MTIME);
	assert_true(l.attrs[i].version[0] != '\0');
	i = find_entry(&l, "inner");
	assert_true(i >= 0);
	assert_true(S_ISDIR(l.attrs[i].mode));
	assert_int_equal(count_of(fx->o, ORIGIN_REQ_LIST), 1);
}

static void test_list_stops_on_callback(void **state)
{
	struct fixture *fx = *state;
	struct listing l = { .stop_after = 1 };
	struct origin_attr attr;

	put_file(fx->root, "a", "1");
	put_file(fx->root, "b", "2");
	assert_int_equal(fx->o->ops->list(fx->o, "", collect, &l), 42);
	assert_int_equal(l.count, 1);
	assert_int_equal(fx->o->ops->list(fx->o, "a", collect, &l), -ENOTDIR);
	assert_int_equal(fx->o->ops->list(fx->o, "none", collect, &l),
			 -ENOENT);
	assert_int_equal(fx->o->ops->stat(fx->o, ".nearfs-tmp-x", &attr),
			 -ENOENT);
}

static void test_read_ranges(void **state)
{
	struct fixture *fx = *state;
	char buf[64];
	size_t done = 99;

	put_file(fx->root, "f", "0123456789");
	assert_int_equal(fx->o->ops->read(fx->o, "f", "", 0, 4, buf, &done),
			 0);
	assert_int_equal(done, 4);
	assert_memory_equal(buf, "0123", 4);
	assert_int_equal(fx->o->ops->read(fx->o, "f", NULL, 6, 32, buf,
					  &done), 0);
	assert_int_equal(done, 4);
	assert_memory_equal(buf, "6789", 4);
	assert_int_equal(fx->o->ops->read(fx->o, "f", "", 20, 4, buf, &done),
			 0);
	assert_int_equal(done, 0);
	assert_int_equal(fx->o->ops->read(fx->o, "none", "", 0, 4, buf,
					  &done), -ENOENT);
	assert_int_equal(count_of(fx->o, ORIGIN_REQ_GET), 4);
	assert_int_equal(atomic_load(&fx->o->counters.bytes_read), 8);
}

static void test_read_version_pin(void **state)
{
	struct fixture *fx = *state;
	struct origin_attr attr;
	char buf[64], path[PATH_MAX + 8];
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { 1000, 5 } };
	size_t done = 99;

	put_file(fx->root, "f", "first");
	assert_int_equal(fx->o->ops->stat(fx->o, "f", &attr), 0);
	assert_int_equal(fx->o->ops->read(fx->o, "f", attr.version, 0,
					  sizeof(buf), buf, &done), 0);
	assert_int_equal(done, 5);

	/* Same size, new mtime: a change that only the version shows. */
	snprintf(path, sizeof(path), "%s/f", fx->root);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	assert_int_equal(fx->o->ops->read(fx->o, "f", attr.version, 0,
					  sizeof(buf), buf, &done), -ESTALE);
	assert_int_equal(done, 0);
	assert_int_equal(fx->o->ops->read(fx->o, "f", "1-2-3.000000004", 0,
					  sizeof(buf), buf, &done), -ESTALE);
}

static void test_write_replaces_file(void **state)
{
	struct fixture *fx = *state;
	struct origin_attr meta = { 0 }, result, attr;
	struct listing l = { 0 };
	char buf[64];
	size_t done;
	int fd = source_fd("new content, and more");

	put_file(fx->root, "f", "old");
	meta.mode = S_IFREG | 0640;
	meta.mtime.tv_sec = 1500000000;
	meta.mtime.tv_nsec = 123;
	meta.valid = ORIGIN_ATTR_MODE | ORIGIN_ATTR_MTIME;

	assert_int_equal(fx->o->ops->write(fx->o, "f", fd, 11, &meta,
					   &result), 0);
	assert_int_equal(result.size, 11);
	assert_int_equal(result.mode & 07777, 0640);
	assert_int_equal(result.mtime.tv_sec, 1500000000);
	assert_int_equal(result.mtime.tv_nsec, 123);
	assert_int_equal(fx->o->ops->stat(fx->o, "f", &attr), 0);
	assert_string_equal(result.version, attr.version);

	assert_int_equal(fx->o->ops->read(fx->o, "f", result.version, 0,
					  sizeof(buf), buf, &done), 0);
	assert_int_equal(done, 11);
	assert_memory_equal(buf, "new content", 11);

	assert_int_equal(fx->o->ops->list(fx->o, "", collect, &l), 0);
	assert_int_equal(l.count, 1);
	assert_string_equal(l.names[0], "f");
	assert_int_equal(count_of(fx->o, ORIGIN_REQ_PUT), 1);
	assert_int_equal(atomic_load(&fx->o->counters.bytes_written), 11);
	close(fd);
}

static void test_write_new_file_in_subdir(void **state)
{
	struct fixture *fx = *state;
	struct origin_attr result;
	struct listing l = { 0 };
	int fd = source_fd("abc");

	make_dir(fx->root, "d");
	assert_int_equal(fx->o->ops->write(fx->o, "d/new", fd, 3, NULL,
					   &result), 0);
	assert_true(S_ISREG(result.mode));
	assert_int_equal(result.size, 3);
	assert_int_equal(fx->o->ops->list(fx->o, "d", collect, &l), 0);
	assert_int_equal(l.count, 1);
	assert_string_equal(l.names[0], "new");

	assert_int_equal(fx->o->ops->write(fx->o, "none/new", fd, 3, NULL,
					   &result), -ENOENT);
	assert_int_equal(fx->o->ops->write(fx->o, "d", fd, 3, NULL, &result),
			 -EISDIR);
	/* A source shorter than size is an error and leaves no file. */
	assert_int_equal(fx->o->ops->write(fx->o, "d/short", fd, 10, NULL,
					   &result), -EIO);
	assert_false(path_exists(fx->root, "d/short"));
	l.count = 0;
	assert_int_equal(fx->o->ops->list(fx->o, "d", collect, &l), 0);
	assert_int_equal(l.count, 1);
	close(fd);
}

/* A register of leftovers that records the origin's calls. */
struct register_log {
	struct origin_leftovers reg;
	const char *root;	/* of the origin, to look up each id */
	char ids[4][PATH_MAX];
	bool existed[4];	/* whether the file was there when recorded */
	uint64_t added[4], done[4];
	unsigned nadded, ndone;
};

static uint64_t log_add(void *arg, const char *id)
{
	struct register_log *r = arg;

	assert_true(r->nadded < 4);
	snprintf(r->ids[r->nadded], PATH_MAX, "%s", id);
	r->existed[r->nadded] = path_exists(r->root, id);
	r->added[r->nadded] = 100 + r->nadded;
	return r->added[r->nadded++];
}

static void log_done(void *arg, uint64_t handle)
{
	struct register_log *r = arg;

	assert_true(r->ndone < 4);
	r->done[r->ndone++] = handle;
}

static void test_write_records_tmp_file(void **state)
{
	struct fixture *fx = *state;
	struct register_log r = { .reg = { log_add, log_done, &r },
				  .root = fx->root };
	struct origin_attr result;
	int fd = source_fd("abc");

	fx->o->leftovers = &r.reg;
	make_dir(fx->root, "d");
	assert_int_equal(fx->o->ops->write(fx->o, "d/new", fd, 3, NULL,
					   &result), 0);
	assert_int_equal(r.nadded, 1);
	assert_int_equal(strncmp(r.ids[0], "d/.nearfs-tmp-", 14), 0);
	/* The entry comes before the file, so no crash leaves the file
	 * unrecorded. */
	assert_false(r.existed[0]);
	assert_int_equal(strlen(r.ids[0]), strlen("d/.nearfs-tmp-") + 6);
	assert_int_equal(r.ndone, 1);
	assert_int_equal(r.done[0], r.added[0]);
	assert_false(path_exists(fx->root, r.ids[0]));

	/* A failed write removes its temporary file and its entry too. */
	assert_int_equal(fx->o->ops->write(fx->o, "short", fd, 10, NULL,
					   &result), -EIO);
	assert_int_equal(r.nadded, 2);
	assert_int_equal(strncmp(r.ids[1], ".nearfs-tmp-", 12), 0);
	assert_int_equal(r.ndone, 2);
	assert_int_equal(r.done[1], r.added[1]);
	assert_false(path_exists(fx->root, r.ids[1]));
	fx->o->leftovers = NULL;
	close(fd);
}

static void test_discard_tmp_files_only(void **state)
{
	struct fixture *fx = *state;

	make_dir(fx->root, "sub");
	put_file(fx->root, "sub/.nearfs-tmp-abc123", "partial");
	assert_int_equal(fx->o->ops->discard(fx->o, "sub/.nearfs-tmp-abc123"),
			 0);
	assert_false(path_exists(fx->root, "sub/.nearfs-tmp-abc123"));
	assert_int_equal(fx->o->ops->discard(fx->o, "sub/.nearfs-tmp-abc123"),
			 -ENOENT);

	/* Only temporary files of the origin's own are removed. */
	put_file(fx->root, "sub/keep", "data");
	assert_int_equal(fx->o->ops->discard(fx->o, "sub/keep"), -EINVAL);
	assert_true(path_exists(fx->root, "sub/keep"));
	make_dir(fx->root, "sub/.nearfs-tmp-dir123");
	assert_int_equal(fx->o->ops->discard(fx->o, "sub/.nearfs-tmp-dir123"),
			 -EINVAL);
	assert_true(path_exists(fx->root, "sub/.nearfs-tmp-dir123"));
	assert_int_equal(fx->o->ops->discard(fx->o, "../.nearfs-tmp-abc123"),
			 -EINVAL);
}

static void test_write_owner_if_permitted(void **state)
{
	struct fixture *fx = *state;
	struct origin_attr meta = { .uid = 1234, .gid = 1234,
				    .valid = ORIGIN_ATTR_UID |
					     ORIGIN_ATTR_GID };
	struct origin_attr result;
	int fd = source_fd("x");

	/* Only root may give a file away.  Others keep their own ids. */
	assert_int_equal(fx->o->ops->write(fx->o, "f", fd, 1, &meta,
					   &result), 0);
	if (geteuid() == 0) {
		assert_int_equal(result.uid, 1234);
		assert_int_equal(result.gid, 1234);
	} else {
		assert_int_equal(result.uid, geteuid());
	}
	close(fd);
}

static void test_write_keeps_old_mode(void **state)
{
	struct fixture *fx = *state;
	struct origin_attr result;
	char path[PATH_MAX + 8];
	int fd = source_fd("new");

	put_file(fx->root, "f", "old");
	snprintf(path, sizeof(path), "%s/f", fx->root);
	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(fx->o->ops->write(fx->o, "f", fd, 3, NULL, &result),
			 0);
	assert_int_equal(result.mode & 07777, 0604);
	close(fd);
}

static void test_write_empty_file(void **state)
{
	struct fixture *fx = *state;
	struct origin_attr result;
	int fd = source_fd("");

	assert_int_equal(fx->o->ops->write(fx->o, "empty", fd, 0, NULL,
					   &result), 0);
	assert_int_equal(result.size, 0);
	assert_int_equal(result.mode & 07777, 0644);
	close(fd);
}

static void test_setattr_mode_mtime(void **state)
{
	struct fixture *fx = *state;
	struct origin_attr attr = { 0 }, result;

	put_file(fx->root, "f", "x");
	attr.mode = 0600;
	attr.mtime.tv_sec = 1234567890;
	assert_int_equal(fx->o->ops->setattr(fx->o, "f", &attr,
					     ORIGIN_ATTR_MODE |
					     ORIGIN_ATTR_MTIME, &result, NULL), 0);
	assert_int_equal(result.mode & 07777, 0600);
	assert_int_equal(result.mtime.tv_sec, 1234567890);
	assert_int_equal(fx->o->ops->setattr(fx->o, "none", &attr,
					     ORIGIN_ATTR_MODE, &result, NULL),
			 -ENOENT);
}

static void test_setattr_owner_self(void **state)
{
	struct fixture *fx = *state;
	struct origin_attr attr = { 0 }, result;

	put_file(fx->root, "f", "x");
	attr.uid = getuid();
	attr.gid = getgid();
	assert_int_equal(fx->o->ops->setattr(fx->o, "f", &attr,
					     ORIGIN_ATTR_UID |
					     ORIGIN_ATTR_GID, &result, NULL),
			 0);
	assert_int_equal(result.uid, getuid());
	assert_int_equal(result.gid, getgid());
}

static void test_mkdir_rmdir_notempty(void **state)
{
	struct fixture *fx = *state;
	struct origin_attr meta = { .mode = S_IFDIR | 0700,
				    .valid = ORIGIN_ATTR_MODE };
	struct origin_attr attr;

	assert_int_equal(fx->o->ops->mkdir(fx->o, "d", &meta), 0);
	assert_int_equal(fx->o->ops->stat(fx->o, "d", &attr), 0);
	assert_true(S_ISDIR(attr.mode));
	assert_int_equal(attr.mode & 07777, 0700);
	assert_int_equal(fx->o->ops->mkdir(fx->o, "d", NULL), -EEXIST);
	assert_int_equal(fx->o->ops->mkdir(fx->o, "none/d", NULL), -ENOENT);

	put_file(fx->root, "d/f", "x");
	assert_int_equal(fx->o->ops->rmdir(fx->o, "d"), -ENOTEMPTY);
	assert_int_equal(fx->o->ops->unlink(fx->o, "d/f"), 0);
	assert_int_equal(fx->o->ops->rmdir(fx->o, "d"), 0);
	assert_false(path_exists(fx->root, "d"));
	assert_int_equal(fx->o->ops->rmdir(fx->o, "d"), -ENOENT);
	assert_int_equal(fx->o->ops->unlink(fx->o, "d"), -ENOENT);
	assert_int_equal(fx->o->ops->rmdir(fx->o, ""), -EBUSY);
	assert_int_equal(count_of(fx->o, ORIGIN_REQ_DELETE), 6);
}

static void test_rename_file_and_dir(void **state)
{
	struct fixture *fx = *state;

	put_file(fx->root, "a", "1");
	put_file(fx->root, "b", "2");
	make_dir(fx->root, "d");
	put_file(fx->root, "d/inside", "3");

	assert_int_equal(fx->o->ops->rename(fx->o, "a", "d/a", 0), 0);
	assert_false(path_exists(fx->root, "a"));
	assert_true(path_exists(fx->root, "d/a"));
	assert_int_equal(fx->o->ops->rename(fx->o, "b", "d/a",
					    RENAME_NOREPLACE), -EEXIST);
	assert_true(path_exists(fx->root, "b"));
	assert_int_equal(fx->o->ops->rename(fx->o, "b", "d/a", 0), 0);
	assert_int_equal(fx->o->ops->rename(fx->o, "d", "e", 0), 0);
	assert_true(path_exists(fx->root, "e/inside"));
	assert_int_equal(fx->o->ops->rename(fx->o, "none", "x", 0), -ENOENT);
	assert_int_equal(count_of(fx->o, ORIGIN_REQ_COPY), 5);
}

static void test_dotdot_rejected(void **state)
{
	static const char *const bad[] = {
		"..", "../x", "a/../b", "a/..", ".", "./a", "a/./b", "/a",
		"a//b", "a/",
	};
	struct fixture *fx = *state;
	struct origin_attr attr = { 0 }, result;
	struct listing l = { 0 };
	char buf[16];
	size_t done;
	int fd = source_fd("x");

	make_dir(fx->root, "a");
	put_file(fx->root, "b", "x");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *p = bad[i];

		assert_int_equal(fx->o->ops->stat(fx->o, p, &attr), -EINVAL);
		assert_int_equal(fx->o->ops->list(fx->o, p, collect, &l),
				 -EINVAL);
		assert_int_equal(fx->o->ops->read(fx->o, p, "", 0, 1, buf,
						  &done), -EINVAL);
		assert_int_equal(fx->o->ops->write(fx->o, p, fd, 1, NULL,
						   &result), -EINVAL);
		assert_int_equal(fx->o->ops->unlink(fx->o, p), -EINVAL);
		assert_int_equal(fx->o->ops->rename(fx->o, "b", p, 0),
				 -EINVAL);
		assert_int_equal(fx->o->ops->mkdir(fx->o, p, NULL), -EINVAL);
	}
	assert_true(path_exists(fx->root, "b"));
	close(fd);
}

static void test_symlink_not_followed(void **state)
{
	struct fixture *fx = *state;
	struct origin_attr attr, result;
	char target[PATH_MAX];
	int ret;

	/* A link out of the root must not give access to what is there. */
	snprintf(target, sizeof(target), "%s", fx->root);
	*strrchr(target, '/') = '\0';
	assert_int_equal(fx->o->ops->symlink(fx->o, target, "out", &result),
			 0);
	ret = fx->o->ops->stat(fx->o, "out", &attr);
	assert_int_equal(ret, 0);
	assert_true(S_ISLNK(attr.mode));
	assert_string_equal(attr.version, "");

	ret = fx->o->ops->stat(fx->o, "out/anything", &attr);
	assert_true(ret == -ELOOP || ret == -ENOTDIR);
	ret = fx->o->ops->mkdir(fx->o, "out/made", NULL);
	assert_true(ret == -ELOOP || ret == -ENOTDIR);
}

static void test_symlink_readlink(void **state)
{
	struct fixture *fx = *state;
	struct origin_attr result;
	char buf[16];

	assert_int_equal(fx->o->ops->symlink(fx->o, "some/target", "l",
					     &result), 0);
	assert_true(S_ISLNK(result.mode));
	assert_int_equal(result.size, strlen("some/target"));
	assert_int_equal(fx->o->ops->readlink(fx->o, "l", buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "some/target");
	assert_int_equal(fx->o->ops->readlink(fx->o, "l", buf, 5), 0);
	assert_string_equal(buf, "some");
	assert_int_equal(fx->o->ops->symlink(fx->o, "x", "l", &result),
			 -EEXIST);
	put_file(fx->root, "f", "x");
	assert_int_equal(fx->o->ops->readlink(fx->o, "f", buf, sizeof(buf)),
			 -EINVAL);
}

static void test_check_and_statfs(void **state)
{
	struct fixture *fx = *state;
	struct origin *o;
	struct statvfs st;
	char msg[512] = "", path[PATH_MAX + 8];

	assert_int_equal(fx->o->ops->check(fx->o, msg, sizeof(msg)), 0);
	assert_int_equal(fx->o->ops->statfs(fx->o, &st), 0);
	assert_true(st.f_bsize > 0);

	/* A directory removed after creation fails the check by name. */
	snprintf(path, sizeof(path), "%s/gone", fx->root);
	make_dir(fx->root, "gone");
	assert_int_equal(origin_dir_new(path, &o, msg, sizeof(msg)), 0);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(o->ops->check(o, msg, sizeof(msg)), -ENOENT);
	assert_non_null(strstr(msg, path));
	assert_non_null(strstr(msg, "existing directory"));
	origin_free(o);
}

static void test_check_not_directory(void **state)
{
	struct fixture *fx = *state;
	struct origin *o;
	char msg[512] = "", path[PATH_MAX + 8];

	snprintf(path, sizeof(path), "%s/file", fx->root);
	put_file(fx->root, "file", "x");
	assert_int_equal(origin_dir_new(path, &o, msg, sizeof(msg)),
			 -ENOTDIR);
	assert_non_null(strstr(msg, path));
}

static void test_check_unreadable_dir(void **state)
{
	struct fixture *fx = *state;
	char msg[512] = "";

	if (geteuid() == 0)
		skip();		/* root passes every permission check */
	assert_int_equal(chmod(fx->root, 0300), 0);
	assert_int_equal(fx->o->ops->check(fx->o, msg, sizeof(msg)),
			 -EACCES);
	assert_int_equal(chmod(fx->root, 0700), 0);
	assert_non_null(strstr(msg, fx->o->name));
	assert_non_null(strstr(msg, "chmod u+rx"));
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_new_names_origin),
		TEST(test_new_missing_path),
		TEST(test_stat_file_version),
		TEST(test_stat_dir_and_root),
		TEST(test_list_hides_tmp_files),
		TEST(test_list_stops_on_callback),
		TEST(test_read_ranges),
		TEST(test_read_version_pin),
		TEST(test_write_replaces_file),
		TEST(test_write_new_file_in_subdir),
		TEST(test_write_records_tmp_file),
		TEST(test_discard_tmp_files_only),
		TEST(test_write_owner_if_permitted),
		TEST(test_write_keeps_old_mode),
		TEST(test_write_empty_file),
		TEST(test_setattr_mode_mtime),
		TEST(test_setattr_owner_self),
		TEST(test_mkdir_rmdir_notempty),
		TEST(test_rename_file_and_dir),
		TEST(test_dotdot_rejected),
		TEST(test_symlink_not_followed),
		TEST(test_symlink_readlink),
		TEST(test_check_and_statfs),
		TEST(test_check_not_directory),
		TEST(test_check_unreadable_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
