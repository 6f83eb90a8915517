/* mountinfo.c - parse lines of /proc/self/mountinfo (see mountinfo.h). */
#include "mountinfo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Cut the next space-separated field off *pos; NULL at the end. */
static char *next_field(char **pos)
{
	char *start = *pos, *end;

	if (!start || *start == '\0')
		return NULL;
	end = strchr(start, ' ');
	if (end) {
		*end = '\0';
		*pos = end + 1;
	} else {
		*pos = NULL;
	}
	return start;
}

static bool is_octal(char c)
{
	return c >= '0' && c <= '7';
}

/* Undo the kernel's escaping of "\ooo" in place. */
static void unescape(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && is_octal(s[1]) && is_octal(s[2]) &&
		    is_octal(s[3])) {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
					(s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

static int parse_device(const char *field, unsigned *major, unsigned *minor)
{
	char *end;
	unsigned long value;

	errno = 0;
	value = strtoul(field, &end, 10);
	if (errno || end == field || *end != ':' || value > 0xfffff)
		return -EINVAL;
	*major = (unsigned)value;
	field = end + 1;
	value = strtoul(field, &end, 10);
	if (errno || end == field || *end != '\0' || value > 0xfffff)
		return -EINVAL;
	*minor = (unsigned)value;
	return 0;
}

int mountinfo_parse_line(char *line, struct mountinfo_line *out)
{
	char *pos = line, *device, *field;
	int saved_errno = errno, ret;

	/* ID and PARENT */
	if (!next_field(&pos) || !next_field(&pos))
		return -EINVAL;
	device = next_field(&pos);
	out->root = next_field(&pos);
	out->mountpoint = next_field(&pos);
	if (!device || !out->mountpoint || !next_field(&pos))
		return -EINVAL;
	ret = parse_device(device, &out->major, &out->minor);
	errno = saved_errno;
	if (ret)
		return ret;
	/* The optional fields end with a lone "-". */
	do {
		field = next_field(&pos);
		if (!field)
			return -EINVAL;
	} while (strcmp(field, "-") != 0);
	out->type = next_field(&pos);
	if (!out->type)
		return -EINVAL;
	unescape(out->root);
	unescape(out->mountpoint);
	return 0;
}
