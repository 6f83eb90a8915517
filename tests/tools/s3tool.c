/* s3tool.c - drive one S3 origin operation from the command line, for tests. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "origin.h"

#define GET_CHUNK (1024 * 1024)

static const char usage[] =
	"usage: s3tool ENDPOINT BUCKET[/PREFIX] COMMAND [ARGS]\n"
	"commands:\n"
	"  stat PATH                 print the attributes of PATH\n"
	"  list DIR                  print one line per entry of DIR\n"
	"  get PATH OFFSET LEN [VERSION]\n"
	"                            write LEN bytes from OFFSET to stdout,\n"
	"                            failing if the ETag is not VERSION\n"
	"  put PATH LOCALFILE [MODE] upload LOCALFILE, MODE in octal\n"
	"  setattr PATH MODE         change the permission bits (octal)\n"
	"  rm PATH | mkdir PATH | rmdir PATH | mv FROM TO | check\n"
	"PATH \"\" is the root.  Credentials and region come from the AWS\n"
	"environment variables.  Environment:\n"
	"  S3TOOL_PART_SIZE=BYTES    multipart part size\n"
	"  S3TOOL_TIMEOUT_MS=MS      request timeout in milliseconds\n"
	"  S3TOOL_ANONYMOUS=1        send unsigned requests\n"
	"  S3TOOL_LOG=LEVEL          error, warn, info or debug\n"
	"  S3TOOL_COUNTERS=1         print request counters to stderr\n";

static void print_attr(const char *name, const struct origin_attr *attr)
{
	printf("%s\tmode=0%o uid=%u gid=%u size=%" PRIu64
	       " mtime=%lld.%09ld valid=0x%x version=%s\n", name,
	       (unsigned)attr->mode, (unsigned)attr->uid,
	       (unsigned)attr->gid, attr->size,
	       (long long)attr->mtime.tv_sec, attr->mtime.tv_nsec,
	       attr->valid, attr->version);
}

static int print_entry(void *arg, const char *name,
		       const struct origin_attr *attr)
{
	(*(unsigned *)arg)++;
	print_attr(name, attr);
	return 0;
}

static int cmd_get(struct origin *o, const char *path, uint64_t offset,
		   uint64_t len, const char *version)
{
	char *buf = malloc(GET_CHUNK);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (len) {
		size_t want = len < GET_CHUNK ? (size_t)len : GET_CHUNK;
		size_t done = 0;

		rc = o->ops->read(o, path, version, offset, want, buf, &done);
		if (rc || !done)
			break;
		if (fwrite(buf, 1, done, stdout) != done) {
			rc = -EIO;
			break;
		}
		offset += done;
		len -= done;
		if (done < want)
			break;
	}
	free(buf);
	return rc;
}

static int cmd_put(struct origin *o, const char *path, const char *file,
		   const char *mode)
{
	struct origin_attr meta = { 0 }, result;
	struct stat st;
	int fd = open(file, O_RDONLY);
	int rc;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		rc = -errno;
		goto out_close;
	}
	meta.mtime = st.st_mtim;
	meta.valid = ORIGIN_ATTR_MTIME;
	if (mode) {
		meta.mode = S_IFREG | (mode_t)strtoul(mode, NULL, 8);
		meta.valid |= ORIGIN_ATTR_MODE;
	}
	rc = o->ops->write(o, path, fd, (uint64_t)st.st_size, &meta,
			   &result);
	if (!rc)
		print_attr(path, &result);
out_close:
	close(fd);
	return rc;
}

static int cmd_setattr(struct origin *o, const char *path, const char *mode)
{
	struct origin_attr attr = { 0 }, result;
	int rc;

	attr.mode = (mode_t)strtoul(mode, NULL, 8);
	rc = o->ops->setattr(o, path, &attr, ORIGIN_ATTR_MODE, &result,
			     NULL);
	if (!rc)
		print_attr(path, &result);
	return rc;
}

static int cmd_mkdir(struct origin *o, const char *path)
{
	struct origin_attr meta = { 0 };

	meta.mode = S_IFDIR | 0755;
	meta.valid = ORIGIN_ATTR_MODE;
	return o->ops->mkdir(o, path, &meta);
}

static int cmd_check(struct origin *o)
{
	char msg[1024] = "";
	int rc = o->ops->check(o, msg, sizeof(msg));

	if (rc)
		fprintf(stderr, "s3tool: check failed: %s\n", msg);
	else
		printf("ok\n");
	return rc;
}

/* Returned by run() for a usage error.  Operations return 0 or -errno. */
#define USAGE_ERROR 1

/* Run argv[0..argc) as a command. */
static int run(struct origin *o, int argc, char **argv)
{
	const char *cmd = argv[0];
	struct origin_attr attr;
	unsigned count = 0;
	int rc;

	if (!strcmp(cmd, "stat") && argc == 2) {
		rc = o->ops->stat(o, argv[1], &attr);
		if (!rc)
			print_attr(argv[1], &attr);
		return rc;
	}
	if (!strcmp(cmd, "list") && argc == 2) {
		rc = o->ops->list(o, argv[1], print_entry, &count);
		fprintf(stderr, "s3tool: %u entries\n", count);
		return rc;
	}
	if (!strcmp(cmd, "get") && (argc == 4 || argc == 5))
		return cmd_get(o, argv[1], strtoull(argv[2], NULL, 10),
			       strtoull(argv[3], NULL, 10),
			       argc == 5 ? argv[4] : "");
	if (!strcmp(cmd, "put") && (argc == 3 || argc == 4))
		return cmd_put(o, argv[1], argv[2], argc == 4 ? argv[3] : NULL);
	if (!strcmp(cmd, "setattr") && argc == 3)
		return cmd_setattr(o, argv[1], argv[2]);
	if (!strcmp(cmd, "rm") && argc == 2)
		return o->ops->unlink(o, argv[1]);
	if (!strcmp(cmd, "mkdir") && argc == 2)
		return cmd_mkdir(o, argv[1]);
	if (!strcmp(cmd, "rmdir") && argc == 2)
		return o->ops->rmdir(o, argv[1]);
	if (!strcmp(cmd, "mv") && argc == 3)
		return o->ops->rename(o, argv[1], argv[2], 0);
	if (!strcmp(cmd, "check") && argc == 1)
		return cmd_check(o);
	fputs(usage, stderr);
	return USAGE_ERROR;
}

static void print_counters(const struct origin *o)
{
	fprintf(stderr, "s3tool: counters");
	for (int i = 0; i < ORIGIN_REQ_MAX; i++)
		fprintf(stderr, " %s=%" PRIu64, origin_request_names[i],
			(uint64_t)o->counters.requests[i]);
	fprintf(stderr, " retries=%" PRIu64 " errors=%" PRIu64 "\n",
		(uint64_t)o->counters.retries, (uint64_t)o->counters.errors);
}

int main(int argc, char **argv)
{
	struct s3_config cfg = { .path_style = -1 };
	const char *level = getenv("S3TOOL_LOG");
	const char *part = getenv("S3TOOL_PART_SIZE");
	const char *anonymous = getenv("S3TOOL_ANONYMOUS");
	const char *counters = getenv("S3TOOL_COUNTERS");
	const char *timeout = getenv("S3TOOL_TIMEOUT_MS");
	struct origin *o;
	char err[512] = "";
	char *bucket, *slash;
	int rc;

	if (argc < 4) {
		fputs(usage, stderr);
		return 2;
	}
	log_max_level = level ? log_level_parse(level) : LOG_WARNING;
	if (log_max_level < 0) {
		fprintf(stderr, "s3tool: invalid S3TOOL_LOG=%s\n", level);
		return 2;
	}
	bucket = strdup(argv[2]);
	if (!bucket)
		return 1;
	slash = strchr(bucket, '/');
	if (slash)
		*slash++ = '\0';
	cfg.endpoint = argv[1];
	cfg.bucket = bucket;
	cfg.prefix = slash ? slash : "";
	cfg.anonymous = anonymous && !strcmp(anonymous, "1");
	cfg.multipart_size = part ? strtoull(part, NULL, 10) : 0;
	cfg.timeout_ms = timeout ? strtoull(timeout, NULL, 10) : 0;

	rc = origin_s3_new(&cfg, &o, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "s3tool: %s\n", err);
		free(bucket);
		return 1;
	}
	rc = run(o, argc - 3, argv + 3);
	if (rc < 0)
		fprintf(stderr, "s3tool: %s failed: %s\n", argv[3],
			strerror(-rc));
	if (counters && !strcmp(counters, "1"))
		print_counters(o);
	origin_free(o);
	free(bucket);
	fflush(stdout);
	if (rc == USAGE_ERROR)
		return 2;
	return rc ? 1 : 0;
}
