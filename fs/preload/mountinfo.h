/*
 * mountinfo.h - parse lines of /proc/self/mountinfo.
 *
 * A line is (proc(5)):
 *
 *   ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE
 *   SOURCE SUPER_OPTIONS
 *
 * where ROOT and MOUNTPOINT escape space, tab, newline and backslash as
 * a backslash and three octal digits ("\040").
 */
#ifndef NEARFS_PRELOAD_MOUNTINFO_H
#define NEARFS_PRELOAD_MOUNTINFO_H

/* The filesystem type of a nearfs mount in the mount table. */
#define MOUNTINFO_NEARFS_TYPE "fuse.nearfs"

struct mountinfo_line {
	unsigned major, minor;	/* st_dev of the files on the mount */
	char *root;		/* the directory of the filesystem mounted */
	char *mountpoint;
	char *type;
};

/*
 * Split line (without its newline) in place, unescaping root and
 * mountpoint.  Returns 0, or -EINVAL when the line has not the fields
 * above.
 */
int mountinfo_parse_line(char *line, struct mountinfo_line *out);

#endif
