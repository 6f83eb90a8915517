/*
 * verify.c - offline check and repair of a cache folder (verify.h).
 *
 * The check fills a struct cache from the index with store_read_index(),
 * which changes no file, and collects every problem with what would fix
 * it.  The repair then replays the index again with store_replay(), as a
 * daemon start does, drops the broken chunks from that state, writes the
 * index back with store_compact(), removes the stray files and closes
 * the journal entries whose file is gone.  Problems are reported after
 * the repair, with its outcome.
 */
#include "verify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index.h"
#include "internal.h"
#include "journal.h"
#include "recordlog.h"

const char *const verify_kind_names[VERIFY_KIND_MAX] = {
	[VERIFY_CHECKSUM] = "checksum",
	[VERIFY_SHORT] = "short",
	[VERIFY_MISSING] = "missing",
	[VERIFY_ORPHAN] = "orphan",
	[VERIFY_TMP] = "tmp",
	[VERIFY_INDEX] = "index",
	[VERIFY_JOURNAL] = "journal",
	[VERIFY_DIRTY] = "dirty",
	[VERIFY_SIZE] = "size",
};

/* The action of the repair for a problem. */
enum fix {
	FIX_KEEP,	/* nothing: keep_reason says why */
	FIX_INDEX,	/* rewrite the index, which drops a torn tail */
	FIX_CHUNKS,	/* drop chunks of an object, then rewrite the index */
	FIX_UNLINK,	/* remove the file */
	FIX_JOURNAL,	/* rewrite the journal, which drops a torn tail */
	FIX_DONE,	/* append a DONE record for seq to the journal */
};

/* All chunks of an object whose end lies past end_limit. */
#define ALL_CHUNKS UINT32_MAX

struct problem {
	enum verify_kind kind;
	enum fix fix;
	char *rel;		/* the file, relative to the folder */
	char *message;
	const char *keep_reason;	/* FIX_KEEP */
	uint64_t id;		/* FIX_CHUNKS: the object */
	uint32_t index;		/* FIX_CHUNKS: one chunk, or ALL_CHUNKS */
	uint64_t end_limit;	/* FIX_CHUNKS with ALL_CHUNKS */
	uint64_t seq;		/* FIX_DONE */
	int result;		/* of the repair: 0 or -errno */
};

struct verify {
	const char *root;
	int root_fd;
	const struct verify_report *report;
	struct verify_counts *counts;
	struct problem *problems;
	size_t nproblems, alloc;
	uint32_t chunk_size;
	bool index_usable;	/* the index was read: orphans can be told */
	bool journal_usable;	/* the journal was read completely */
	struct htab live;	/* "%016x" id of the objects in the index */
	struct htab listed;	/* "dirty/SEQ" names the journal lists */
	char *buf;		/* one chunk */
	int error;		/* the check cannot go on: -errno */
	char *err;
	size_t errlen;
};

static struct problem *add_problem(struct verify *v, enum verify_kind kind,
				   enum fix fix, const char *rel,
				   const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static struct problem *add_problem(struct verify *v, enum verify_kind kind,
				   enum fix fix, const char *rel,
				   const char *fmt, ...)
{
	struct problem *p;
	va_list ap;
	int n;

	if (v->nproblems == v->alloc) {
		size_t alloc = v->alloc ? v->alloc * 2 : 16;
		struct problem *bigger = realloc(v->problems,
						 alloc * sizeof(*bigger));

		if (!bigger)
			goto out_nomem;
		v->problems = bigger;
		v->alloc = alloc;
	}
	p = &v->problems[v->nproblems];
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->fix = fix;
	p->rel = strdup(rel);
	va_start(ap, fmt);
	n = vasprintf(&p->message, fmt, ap);
	va_end(ap);
	if (!p->rel || n < 0) {
		free(p->rel);
		goto out_nomem;
	}
	v->nproblems++;
	v->counts->problems[kind]++;
	return p;
out_nomem:
	v->error = -ENOMEM;
	return NULL;
}

static void id_key(uint64_t id, char key[17])
{
	snprintf(key, 17, "%016" PRIx64, id);
}

/* ---- the check ---- */

/* Check the chunks of obj against its data file. */
static void check_object(struct verify *v, struct cache *c,
			 struct object *obj)
{
	uint32_t cs = c->cfg.chunk_size, nshort = 0, first_short = 0;
	const char *path = obj->path ? obj->path : "(removed)";
	struct problem *p;
	struct stat st;
	char rel[64];
	int fd;

	store_data_path(c, obj->id, rel, sizeof(rel));
	v->counts->objects++;
	fd = openat(v->root_fd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		v->error = -errno;
		snprintf(v->err, v->errlen, "cannot open %s/%s: %s", v->root,
			 rel, strerror(errno));
		return;
	}
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		p = add_problem(v, VERIFY_MISSING, FIX_CHUNKS, rel,
				"the index lists %u chunks of %s, but the "
				"data file is missing", obj->ncached, path);
		if (p) {
			p->id = obj->id;
			p->index = ALL_CHUNKS;
			p->end_limit = 0;
		}
		if (fd >= 0)
			close(fd);
		return;
	}
	for (uint32_t i = 0; i < obj->nchunks; i++) {
		struct chunk *ch = obj->chunks[i];
		uint64_t off = (uint64_t)i * cs;
		int ret;

		if (!ch || ch->state != CHUNK_PRESENT)
			continue;
		if (off + ch->len > (uint64_t)st.st_size) {
			if (nshort++ == 0)
				first_short = i;
			continue;
		}
		ret = store_check_chunk(c, fd, ch, v->buf);
		v->counts->chunks++;
		v->counts->bytes += ch->len;
		if (ret == 0)
			continue;
		p = add_problem(v, VERIFY_CHECKSUM, FIX_CHUNKS, rel,
				"chunk %u of %s (bytes %" PRIu64 "-%" PRIu64
				"): %s", i, path, off, off + ch->len - 1,
				ret == -EILSEQ ? "checksum mismatch" :
				strerror(-ret));
		if (p) {
			p->id = obj->id;
			p->index = i;
		}
	}
	close(fd);
	if (nshort == 0)
		return;
	p = add_problem(v, VERIFY_SHORT, FIX_CHUNKS, rel,
			"the data file of %s has %" PRIu64 " bytes, but %u "
			"cached chunks end past it, from chunk %u on", path,
			(uint64_t)st.st_size, nshort, first_short);
	if (p) {
		p->id = obj->id;
		p->index = ALL_CHUNKS;
		p->end_limit = st.st_size;
	}
}

static void check_one_object(void *arg, const char *key, void *value)
{
	void **pair = arg;
	struct verify *v = pair[0];
	struct object *obj = value;
	char id[17];

	(void)key;
	if (v->error)
		return;
	/* An object without chunks still names its data file: a crash
	 * while its first chunk arrived leaves both, and the next start
	 * removes them. */
	id_key(obj->id, id);
	if (htab_put(&v->live, id, obj) < 0) {
		v->error = -ENOMEM;
		return;
	}
	if (obj->ncached)
		check_object(v, pair[1], obj);
}

/* A cache for the index of the folder, with its chunk size. */
static struct cache *folder_cache(struct verify *v)
{
	struct cache_config cfg = {
		.chunk_size = v->chunk_size,
		.size_max = UINT64_MAX,
	};
	struct cache *c = cache_alloc(&cfg);

	if (!c)
		return NULL;
	c->root = strdup(v->root);
	c->root_fd = dup(v->root_fd);
	if (!c->root || c->root_fd < 0) {
		cache_close(c);
		return NULL;
	}
	return c;
}

static int check_index(struct verify *v)
{
	struct recordlog_scan scan;
	struct cache *c;
	char *path, msg[1024];
	int ret;

	if (asprintf(&path, "%s/index", v->root) < 0)
		return -ENOMEM;
	ret = index_read_chunk_size(path, &v->chunk_size, msg, sizeof(msg));
	if (ret == -ENOENT) {
		/* A folder no daemon opened yet: nothing is cached. */
		v->index_usable = true;
		ret = 0;
		goto out_free;
	}
	if (ret == -ENODATA) {
		/* A daemon starts such an index empty, as the repair does,
		 * with the default chunk size; a daemon with another one
		 * starts it empty again. */
		v->chunk_size = 4u << 20;
		v->index_usable = true;
		add_problem(v, VERIFY_INDEX, FIX_INDEX, "index", "%s", msg);
		ret = 0;
		goto out_free;
	}
	if (ret == -EPROTO || (ret == 0 && (v->chunk_size == 0 ||
		     (v->chunk_size & (v->chunk_size - 1)) != 0))) {
		struct problem *p;

		if (ret == 0)
			snprintf(msg, sizeof(msg), "the index header gives "
				 "chunk size %u, not a power of two",
				 v->chunk_size);
		p = add_problem(v, VERIFY_INDEX, FIX_KEEP, "index", "%s", msg);
		if (p)
			p->keep_reason = "kept: no daemon starts on it; move "
					 "the folder away to start an empty "
					 "cache";
		ret = 0;
		goto out_free;
	}
	if (ret < 0) {
		snprintf(v->err, v->errlen, "%s", msg);
		goto out_free;
	}
	c = folder_cache(v);
	if (!c) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = store_read_index(c, &scan, v->err, v->errlen);
	if (ret == 0) {
		void *pair[2] = { v, c };

		v->index_usable = true;
		if (scan.valid < scan.size)
			add_problem(v, VERIFY_INDEX, FIX_INDEX, "index",
				    "%" PRIu64 " bytes of a torn or damaged "
				    "record at offset %" PRIu64, scan.size -
				    scan.valid, scan.valid);
		v->buf = malloc(v->chunk_size);
		if (!v->buf)
			ret = -ENOMEM;
		else
			htab_for_each(&c->objects, check_one_object, pair);
	}
	cache_close(c);
out_free:
	free(path);
	return ret;
}

/* Call fn for every entry of the folder dir (relative to the folder),
 * "." and ".." excepted.  A missing folder has no entries. */
static void for_each_entry(struct verify *v, const char *dir,
			   void (*fn)(struct verify *v, const char *dir,
				      const struct dirent *e))
{
	int fd = openat(v->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			fn(v, dir, e);
	closedir(d);
}

/* A file in data/XX: an orphan unless a live object names it. */
static void check_data_file(struct verify *v, const char *dir,
			    const struct dirent *e)
{
	uint64_t id, low = 0;
	char rel[PATH_MAX];

	hex_name_value(dir + strlen("data/"), 2, &low);
	snprintf(rel, sizeof(rel), "%s/%s", dir, e->d_name);
	if (store_data_name_id((unsigned)low, e->d_name, &id)) {
		char key[17];

		id_key(id, key);
		if (htab_get(&v->live, key))
			return;
	}
	add_problem(v, VERIFY_ORPHAN, FIX_UNLINK, rel,
		    "no index record names this data file");
}

/* An entry of data/: a data/XX folder, or something nearfs never makes. */
static void check_data_entry(struct verify *v, const char *dir,
			     const struct dirent *e)
{
	char rel[PATH_MAX];
	struct problem *p;
	uint64_t low;

	snprintf(rel, sizeof(rel), "%s/%s", dir, e->d_name);
	if (hex_name_value(e->d_name, 2, &low)) {
		for_each_entry(v, rel, check_data_file);
		return;
	}
	p = add_problem(v, VERIFY_ORPHAN, FIX_UNLINK, rel,
			"not a data file or folder of nearfs");
	if (p && e->d_type == DT_DIR) {
		p->fix = FIX_KEEP;
		p->keep_reason = "kept: a folder nearfs did not make; remove "
				 "it by hand";
	}
}

static void check_tmp_file(struct verify *v, const char *dir,
			   const struct dirent *e)
{
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "%s/%s", dir, e->d_name);
	add_problem(v, VERIFY_TMP, FIX_UNLINK, rel, "left by a daemon that "
		    "stopped while the file was open for writing");
}

/* Report every entry of tmp/ and unfinished compactions. */
static void check_tmp(struct verify *v)
{
	static const char *const compactions[] = {
		"index.new", "journal.new",
	};

	for (size_t i = 0; i < 2; i++)
		if (faccessat(v->root_fd, compactions[i], F_OK, 0) == 0)
			add_problem(v, VERIFY_TMP, FIX_UNLINK, compactions[i],
				    "left by an unfinished compaction");
	for_each_entry(v, "tmp", check_tmp_file);
}

/* An entry of leftovers/: reported as what the next start removes at the
 * origin, or as a problem when it has no id. */
static void check_leftover(struct verify *v, const char *dir,
			   const struct dirent *e)
{
	char rel[PATH_MAX];
	uint64_t handle;
	struct stat st;
	char *id = NULL;
	bool part;
	int ret;

	if (!leftover_parse_name(e->d_name, &handle, &part))
		return;
	snprintf(rel, sizeof(rel), "%s/%s", dir, e->d_name);
	if (fstatat(v->root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return;
	if (part) {
		add_problem(v, VERIFY_TMP, FIX_UNLINK, rel, "an entry whose "
			    "write a crash cut short");
		return;
	}
	ret = leftover_read_id(v->root_fd, rel, &id);
	if (ret == -EINVAL) {
		add_problem(v, VERIFY_TMP, FIX_UNLINK, rel,
			    "an entry without the id of a leftover");
		return;
	}
	if (ret < 0) {
		v->error = ret;
		snprintf(v->err, v->errlen, "cannot read %s/%s: %s", v->root,
			 rel, strerror(-ret));
		return;
	}
	v->counts->leftovers++;
	if (v->report && v->report->leftover)
		v->report->leftover(v->report->arg, rel, id);
	free(id);
}

/* Compare the size of a pending file with the one the journal records
 * (none in a version 1 journal).  The file is kept whatever it holds. */
static void check_pending_size(struct verify *v, const char *name,
			       const char *path, uint64_t recorded,
			       uint64_t size)
{
	struct problem *p;

	if (recorded == JOURNAL_SIZE_UNKNOWN || recorded == size)
		return;
	p = add_problem(v, VERIFY_SIZE, FIX_KEEP, name, "the journal records "
			"%" PRIu64 " bytes for %s, but the file has %" PRIu64
			" bytes (%" PRIu64 " bytes %s)", recorded, path, size,
			size < recorded ? recorded - size : size - recorded,
			size < recorded ? "shorter" : "longer");
	if (p)
		p->keep_reason = "kept: verify never removes a pending "
				 "upload, and the next mount uploads the "
				 "file as it is now";
}

static void check_pending(void *arg, uint64_t seq, const char *path,
			  const struct origin_attr *meta)
{
	struct verify *v = arg;
	char *name = wb_dirty_name(seq);
	struct problem *p;
	struct stat st;

	if (!name || htab_put(&v->listed, name, v) < 0) {
		v->error = -ENOMEM;
		free(name);
		return;
	}
	if (fstatat(v->root_fd, name, &st, 0) == 0 && S_ISREG(st.st_mode)) {
		char *file;

		v->counts->pending++;
		v->counts->pending_bytes += st.st_size;
		if (v->report->pending &&
		    asprintf(&file, "%s/%s", v->root, name) >= 0) {
			v->report->pending(v->report->arg, path, file,
					   st.st_size);
			free(file);
		}
		check_pending_size(v, name, path, meta->size, st.st_size);
		free(name);
		return;
	}
	p = add_problem(v, VERIFY_JOURNAL, FIX_DONE, name, "the journal lists "
			"%s in this file, which is missing: that change "
			"cannot be uploaded", path);
	if (p)
		p->seq = seq;
	free(name);
}

static int check_journal(struct verify *v)
{
	struct recordlog_scan scan;
	char *path, msg[1024];
	struct problem *p;
	int ret;

	if (asprintf(&path, "%s/journal", v->root) < 0)
		return -ENOMEM;
	ret = journal_read(path, check_pending, v, &scan, msg, sizeof(msg));
	free(path);
	if (ret == -ENOENT)
		return 0;	/* files in dirty/ are kept: see below */
	if (ret == -EPROTO) {
		p = add_problem(v, VERIFY_JOURNAL, FIX_KEEP, "journal", "%s",
				msg);
		if (p)
			p->keep_reason = "kept: it may list uploads that are "
					 "still to be done";
		return 0;
	}
	if (ret < 0) {
		snprintf(v->err, v->errlen, "%s", msg);
		return ret;
	}
	v->journal_usable = scan.valid == scan.size;
	if (!v->journal_usable)
		add_problem(v, VERIFY_JOURNAL, FIX_JOURNAL, "journal",
			    "%" PRIu64 " bytes of a torn or damaged record at "
			    "offset %" PRIu64, scan.size - scan.valid,
			    scan.valid);
	return 0;
}

/* A file of dirty/: kept for its upload, or left over. */
static void check_dirty_file(struct verify *v, const char *dir,
			     const struct dirent *e)
{
	char rel[PATH_MAX];
	struct problem *p;

	snprintf(rel, sizeof(rel), "%s/%s", dir, e->d_name);
	if (htab_get(&v->listed, rel))
		return;
	p = add_problem(v, VERIFY_DIRTY, FIX_UNLINK, rel,
			"no pending journal entry lists this file");
	if (p && !v->journal_usable) {
		p->fix = FIX_KEEP;
		p->keep_reason = "kept: the journal is damaged or missing, "
				 "so it may still have to be uploaded";
	}
}

/* ---- the repair ---- */

static void index_by_id(void *arg, const char *key, void *value)
{
	struct htab *by_id = arg;
	struct object *obj = value;
	char id[17];

	(void)key;
	id_key(obj->id, id);
	htab_put(by_id, id, obj);
}

/* Drop the chunks p names from the replayed state of c; by_id maps ids
 * to the objects of c. */
static void drop_chunks(struct cache *c, struct htab *by_id,
			const struct problem *p)
{
	struct object *obj;
	char id[17];

	id_key(p->id, id);
	obj = htab_remove(by_id, id);
	if (!obj)
		return;
	for (uint32_t i = 0; i < obj->nchunks; i++) {
		struct chunk *ch = obj->chunks[i];
		uint64_t end = (uint64_t)i * c->cfg.chunk_size;

		if (!ch || ch->state != CHUNK_PRESENT)
			continue;
		end += ch->len;
		if (p->index == ALL_CHUNKS ? end <= p->end_limit :
		    i != p->index)
			continue;
		if (obj->lent) {
			/* Dropped whole, and its data file unlinked. */
			store_drop_chunk(c, obj, ch);
			return;
		}
		store_drop_chunk(c, obj, ch);
	}
	/* Nothing left to serve: remove the data file with the object. */
	if (obj->ncached == 0) {
		store_object_detach(c, obj);
		return;
	}
	htab_put(by_id, id, obj);
}

/* Replay the index as a daemon start does, drop the broken chunks and
 * write the index back compactly.  Returns 0 or -errno. */
static int repair_index(struct verify *v)
{
	struct cache *c = folder_cache(v);
	struct htab by_id = { 0 };
	char msg[1024];
	int ret;

	if (!c)
		return -ENOMEM;
	ret = store_replay(c, msg, sizeof(msg));
	if (ret >= 0)
		ret = htab_init(&by_id);
	if (ret >= 0) {
		htab_for_each(&c->objects, index_by_id, &by_id);
		if (by_id.count != c->objects.count)
			ret = -ENOMEM;
	}
	if (ret >= 0) {
		for (size_t i = 0; i < v->nproblems; i++)
			if (v->problems[i].fix == FIX_CHUNKS)
				drop_chunks(c, &by_id, &v->problems[i]);
		ret = store_compact(c);
	}
	htab_release(&by_id);
	index_close(c->index);
	c->index = NULL;
	cache_close(c);
	return ret < 0 ? ret : 0;
}

static void ignore_pending(void *arg, uint64_t seq, const char *path,
			   const struct origin_attr *meta)
{
	(void)arg;
	(void)seq;
	(void)path;
	(void)meta;
}

/* Open the journal, which cuts a torn tail and rewrites it with the
 * pending entries, and close the entries whose file is missing. */
static int repair_journal(struct verify *v)
{
	struct journal *j;
	char *path, msg[1024];
	int ret;

	if (asprintf(&path, "%s/journal", v->root) < 0)
		return -ENOMEM;
	ret = journal_open(path, ignore_pending, NULL, &j, msg, sizeof(msg));
	free(path);
	if (ret < 0)
		return ret;
	for (size_t i = 0; ret == 0 && i < v->nproblems; i++)
		if (v->problems[i].fix == FIX_DONE)
			ret = journal_done(j, v->problems[i].seq);
	if (ret == 0)
		ret = journal_sync(j);
	journal_close(j);
	return ret;
}

static bool needs(const struct verify *v, enum fix a, enum fix b)
{
	for (size_t i = 0; i < v->nproblems; i++)
		if (v->problems[i].fix == a || v->problems[i].fix == b)
			return true;
	return false;
}

static void set_result(struct verify *v, enum fix a, enum fix b, int ret)
{
	for (size_t i = 0; i < v->nproblems; i++)
		if (v->problems[i].fix == a || v->problems[i].fix == b)
			v->problems[i].result = ret;
}

static void repair_all(struct verify *v)
{
	if (needs(v, FIX_INDEX, FIX_CHUNKS))
		set_result(v, FIX_INDEX, FIX_CHUNKS, repair_index(v));
	for (size_t i = 0; i < v->nproblems; i++) {
		struct problem *p = &v->problems[i];

		if (p->fix == FIX_UNLINK && unlinkat(v->root_fd, p->rel, 0) <
		    0 && errno != ENOENT)
			p->result = -errno;
	}
	if (needs(v, FIX_JOURNAL, FIX_DONE))
		set_result(v, FIX_JOURNAL, FIX_DONE, repair_journal(v));
}

static const char *fix_outcome(enum fix fix)
{
	switch (fix) {
	case FIX_INDEX:
		return "repaired: the index was rewritten without it";
	case FIX_CHUNKS:
		return "repaired: dropped from the index, so the next read "
		       "fetches it again";
	case FIX_UNLINK:
		return "repaired: removed";
	case FIX_JOURNAL:
		return "repaired: the journal was rewritten without it";
	case FIX_DONE:
		return "repaired: the entry was closed in the journal";
	case FIX_KEEP:
		break;
	}
	return "kept";
}

static void report_problems(struct verify *v, bool repaired)
{
	for (size_t i = 0; i < v->nproblems; i++) {
		struct problem *p = &v->problems[i];
		struct verify_problem vp = {
			.kind = p->kind,
			.message = p->message,
		};
		char *file = NULL, *failed = NULL;

		if (asprintf(&file, "%s/%s", v->root, p->rel) < 0)
			file = NULL;
		vp.file = file ? file : p->rel;
		if (repaired && p->fix == FIX_KEEP) {
			vp.outcome = p->keep_reason;
			v->counts->kept++;
		} else if (repaired && p->result < 0) {
			if (asprintf(&failed, "repair failed: %s",
				     strerror(-p->result)) < 0)
				failed = NULL;
			vp.outcome = failed ? failed : "repair failed";
			v->counts->kept++;
		} else if (repaired) {
			vp.outcome = fix_outcome(p->fix);
			vp.repaired = true;
			v->counts->repaired++;
		}
		if (v->report->problem)
			v->report->problem(v->report->arg, &vp);
		free(failed);
		free(file);
	}
}

/* ---- the folder ---- */

/* Open and lock the folder; returns the lock descriptor or -errno. */
static int lock_root(struct verify *v, bool repair)
{
	char holder[32];
	struct stat st;
	int fd;

	v->root_fd = open(v->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v->root_fd < 0 || fstat(v->root_fd, &st) < 0) {
		snprintf(v->err, v->errlen, "cannot open the cache folder %s: "
			 "%s", v->root, strerror(errno));
		return -errno;
	}
	if (repair && st.st_uid != geteuid()) {
		snprintf(v->err, v->errlen, "the cache folder %s belongs to "
			 "uid %u: run the repair as that user, so that the "
			 "files it writes stay theirs", v->root,
			 (unsigned)st.st_uid);
		return -EPERM;
	}
	fd = cache_lock_folder(v->root_fd, holder, sizeof(holder), NULL);
	if (fd == -EBUSY)
		snprintf(v->err, v->errlen, "the cache folder %s is in use by "
			 "nearfs pid %s: unmount that mount first", v->root,
			 holder);
	else if (fd < 0)
		snprintf(v->err, v->errlen, "cannot lock %s/lock: %s", v->root,
			 strerror(-fd));
	return fd;
}

static void release(struct verify *v)
{
	for (size_t i = 0; i < v->nproblems; i++) {
		free(v->problems[i].rel);
		free(v->problems[i].message);
	}
	free(v->problems);
	htab_release(&v->live);
	htab_release(&v->listed);
	free(v->buf);
	if (v->root_fd >= 0)
		close(v->root_fd);
}

int verify_folder(const char *root, bool repair,
		  const struct verify_report *report,
		  struct verify_counts *counts, char *err, size_t errlen)
{
	struct verify v = {
		.root = root, .root_fd = -1, .report = report,
		.counts = counts, .err = err, .errlen = errlen,
	};
	int lock_fd, ret;

	if (htab_init(&v.live) < 0 || htab_init(&v.listed) < 0) {
		release(&v);
		return -ENOMEM;
	}
	lock_fd = lock_root(&v, repair);
	if (lock_fd < 0) {
		release(&v);
		return lock_fd;
	}
	ret = check_index(&v);
	if (ret == 0 && v.error == 0 && v.index_usable)
		for_each_entry(&v, "data", check_data_entry);
	if (ret == 0 && v.error == 0)
		check_tmp(&v);
	if (ret == 0 && v.error == 0)
		ret = check_journal(&v);
	if (ret == 0 && v.error == 0)
		for_each_entry(&v, "dirty", check_dirty_file);
	if (ret == 0 && v.error == 0)
		for_each_entry(&v, LEFTOVER_DIR, check_leftover);
	if (ret == 0)
		ret = v.error;
	if (ret == 0) {
		if (repair)
			repair_all(&v);
		report_problems(&v, repair);
	} else if (ret == -ENOMEM) {
		snprintf(err, errlen, "out of memory while checking %s", root);
	}
	close(lock_fd);
	release(&v);
	return ret;
}

bool verify_is_origin_folder(const char *path)
{
	char *index, *lock;
	bool found;

	if (asprintf(&index, "%s/index", path) < 0)
		return false;
	if (asprintf(&lock, "%s/lock", path) < 0) {
		free(index);
		return false;
	}
	found = access(index, F_OK) == 0 || access(lock, F_OK) == 0;
	free(index);
	free(lock);
	return found;
}
