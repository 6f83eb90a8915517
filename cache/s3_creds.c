/* s3_creds.c - AWS credential and region lookup (see s3_creds.h). */
#include "s3_creds.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

#define DEFAULT_REGION "us-east-1"
#define DEFAULT_PROFILE "default"

/* Names of the values read from one profile section. */
enum cred_key {
	KEY_ACCESS,
	KEY_SECRET,
	KEY_TOKEN,
	KEY_COUNT,
};

static const char *const cred_key_names[KEY_COUNT] = {
	"aws_access_key_id", "aws_secret_access_key", "aws_session_token",
};

/* One shared file to look in: its path and how to name it in messages. */
struct aws_file {
	char *path;	/* expanded, for fopen */
	char *display;	/* "~/.aws/credentials" or the path as set */
};

static void aws_file_free(struct aws_file *file)
{
	free(file->path);
	free(file->display);
	file->path = NULL;
	file->display = NULL;
}

static const char *home_dir(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home && *home)
		return home;
	/* Only origin setup calls this, before the daemon starts threads. */
	/* cppcheck-suppress getpwuidCalled */
	pw = getpwuid(getuid());
	return pw && pw->pw_dir ? pw->pw_dir : NULL;
}

/*
 * Resolve the file named by environment variable env, or ~/.aws/name
 * when env is unset.  A leading "~/" is expanded, as the AWS CLI does.
 */
static int aws_file_resolve(const char *env, const char *name,
			    struct aws_file *file)
{
	const char *set = getenv(env);
	const char *home = home_dir();
	int n;

	file->path = NULL;
	if (set && *set) {
		file->display = strdup(set);
		if (set[0] == '~' && set[1] == '/' && home)
			n = asprintf(&file->path, "%s%s", home, set + 1);
		else
			n = (file->path = strdup(set)) ? 0 : -1;
	} else {
		n = asprintf(&file->display, "~/.aws/%s", name);
		if (n >= 0)
			n = asprintf(&file->path, "%s/.aws/%s",
				     home ? home : "", name);
	}
	if (n < 0 || !file->display || !file->path) {
		aws_file_free(file);
		return -ENOMEM;
	}
	return 0;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Cut a comment that follows a value after white space ("key = v ; x"). */
static void strip_inline_comment(char *value)
{
	for (char *p = value; *p; p++) {
		if ((*p == '#' || *p == ';') && p > value &&
		    isspace((unsigned char)p[-1])) {
			*p = '\0';
			return;
		}
	}
}

/* Collapse "profile   name" to "profile name" for comparison. */
static void normalize_section(char *name)
{
	char *out = name;
	bool space = false;

	for (char *p = name; *p; p++) {
		if (isspace((unsigned char)*p)) {
			space = true;
			continue;
		}
		if (space && out != name)
			*out++ = ' ';
		space = false;
		*out++ = *p;
	}
	*out = '\0';
}

static bool section_matches(const char *name, const char *const *sections)
{
	for (size_t i = 0; sections[i]; i++)
		if (strcmp(name, sections[i]) == 0)
			return true;
	return false;
}

/* Store value for key when it is one of keys[nkeys]. */
static int ini_store(const char *key, const char *value,
		     const char *const *keys, size_t nkeys, char **values)
{
	for (size_t i = 0; i < nkeys; i++) {
		char *copy;

		if (strcasecmp(key, keys[i]) != 0)
			continue;
		copy = strdup(value);
		if (!copy)
			return -ENOMEM;
		free(values[i]);
		values[i] = copy;
	}
	return 0;
}

/*
 * Read the values of keys[nkeys] from the INI sections named by one of
 * sections[] (NULL-terminated), where later values win.  Lines starting
 * with '#' or ';' are comments.  Indented lines after a key continue a
 * nested value (as in "s3 =\n  region = x") and are skipped.  Sets
 * *found when a matching section exists.  Returns 0, or -errno when the
 * file cannot be opened (-ENOENT when it does not exist), -ENOMEM.
 */
static int ini_read(const char *path, const char *const *sections,
		    const char *const *keys, size_t nkeys, char **values,
		    bool *found)
{
	bool in_section = false, after_key = false;
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;
	FILE *f;

	*found = false;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (!ret && getline(&line, &cap, f) >= 0) {
		bool indented = line[0] == ' ' || line[0] == '\t';
		char *s = trim(line);
		char *eq;

		if (!*s || *s == '#' || *s == ';')
			continue;
		if (indented && after_key)
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');

			after_key = false;
			if (!close) {
				in_section = false;
				continue;
			}
			*close = '\0';
			s = trim(s + 1);
			normalize_section(s);
			in_section = section_matches(s, sections);
			if (in_section)
				*found = true;
			continue;
		}
		eq = strchr(s, '=');
		if (!eq)
			continue;
		*eq = '\0';
		after_key = true;
		if (!in_section)
			continue;
		strip_inline_comment(eq + 1);
		ret = ini_store(trim(s), trim(eq + 1), keys, nkeys, values);
	}
	free(line);
	fclose(f);
	return ret;
}

static void free_values(char **values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(values[i]);
		values[i] = NULL;
	}
}

static const char *resolve_profile(const char *profile)
{
	const char *env = getenv("AWS_PROFILE");

	if (profile && *profile)
		return profile;
	return env && *env ? env : DEFAULT_PROFILE;
}

/* Append a formatted message to err[errlen], cutting it at the end. */
static void err_append(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void err_append(char *err, size_t errlen, const char *fmt, ...)
{
	size_t used;
	va_list ap;

	if (!err || !errlen)
		return;
	used = strnlen(err, errlen);
	if (used >= errlen - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(err + used, errlen - used, fmt, ap);
	va_end(ap);
}

static bool is_set(const char *s)
{
	return s && *s;
}

/*
 * Move values[] into creds, NULLing the taken slots.  The source reads
 * "place [profile]", or just "place" when profile is NULL.
 */
static int creds_take(struct s3_creds *creds, char **values,
		      const char *place, const char *profile)
{
	int n;

	if (profile)
		n = asprintf(&creds->source, "%s [%s]", place, profile);
	else
		n = (creds->source = strdup(place)) ? 0 : -1;
	if (n < 0) {
		creds->source = NULL;
		return -ENOMEM;
	}
	creds->access_key = values[KEY_ACCESS];
	creds->secret_key = values[KEY_SECRET];
	creds->session_token = is_set(values[KEY_TOKEN]) ?
			       values[KEY_TOKEN] : NULL;
	if (!creds->session_token)
		free(values[KEY_TOKEN]);
	values[KEY_ACCESS] = values[KEY_SECRET] = values[KEY_TOKEN] = NULL;
	return 0;
}

/*
 * Credentials from the environment.  Returns 0 when found, 1 when neither
 * key is set, -EINVAL for a half-set pair, -ENOMEM.
 */
static int creds_from_env(struct s3_creds *creds, char *err, size_t errlen)
{
	const char *access = getenv("AWS_ACCESS_KEY_ID");
	const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN");
	char *values[KEY_COUNT] = { NULL };
	int ret;

	if (!is_set(access) && !is_set(secret))
		return 1;
	if (!is_set(access) || !is_set(secret)) {
		err_append(err, errlen,
			   "%s is set but %s is not: set both, or unset "
			   "both to use the shared credentials file",
			   is_set(access) ? "AWS_ACCESS_KEY_ID" :
					    "AWS_SECRET_ACCESS_KEY",
			   is_set(access) ? "AWS_SECRET_ACCESS_KEY" :
					    "AWS_ACCESS_KEY_ID");
		return -EINVAL;
	}
	values[KEY_ACCESS] = strdup(access);
	values[KEY_SECRET] = strdup(secret);
	values[KEY_TOKEN] = is_set(token) ? strdup(token) : NULL;
	if (!values[KEY_ACCESS] || !values[KEY_SECRET] ||
	    (is_set(token) && !values[KEY_TOKEN])) {
		free_values(values, KEY_COUNT);
		return -ENOMEM;
	}
	ret = creds_take(creds, values, "environment", NULL);
	free_values(values, KEY_COUNT);
	return ret;
}

/* Messages for a lookup: the places looked at, and the final error. */
struct lookup_log {
	/* ", ~/.aws/credentials (no such profile), ..." */
	char places[768];
	char credentials_file[256];	/* display name, for the fix */
	char *err;
	size_t errlen;
};

/*
 * Credentials from one shared file under the given sections.  Returns 0
 * when found, 1 when the file or the profile is absent (noted in places),
 * -EINVAL for a half-set pair (message in err), -ENOMEM.
 */
static int creds_from_file(const struct aws_file *file,
			   const char *const *sections, const char *profile,
			   struct s3_creds *creds, struct lookup_log *log)
{
	char *values[KEY_COUNT] = { NULL };
	bool has_access, has_secret, found;
	int ret;

	ret = ini_read(file->path, sections, cred_key_names, KEY_COUNT,
		       values, &found);
	if (ret == -ENOMEM)
		goto out_free;
	if (ret) {
		err_append(log->places, sizeof(log->places), ", %s (%s)",
			   file->display, strerror(-ret));
		ret = 1;
		goto out_free;
	}
	has_access = is_set(values[KEY_ACCESS]);
	has_secret = is_set(values[KEY_SECRET]);
	if (!has_access && !has_secret) {
		err_append(log->places, sizeof(log->places), ", %s (%s)",
			   file->display,
			   found ? "profile has no aws_access_key_id" :
				   "no such profile");
		ret = 1;
		goto out_free;
	}
	if (!has_access || !has_secret) {
		snprintf(log->err, log->errlen,
			 "[%s] in %s has %s but no %s: add the missing key",
			 sections[0], file->display,
			 has_access ? "aws_access_key_id" :
				      "aws_secret_access_key",
			 has_access ? "aws_secret_access_key" :
				      "aws_access_key_id");
		ret = -EINVAL;
		goto out_free;
	}
	ret = creds_take(creds, values, file->display, profile);

out_free:
	free_values(values, KEY_COUNT);
	return ret;
}

/* Fill sections[3] with the config file section names of profile. */
static int config_sections(const char *profile, char **owned,
			   const char *sections[3])
{
	if (asprintf(owned, "profile %s", profile) < 0)
		return -ENOMEM;
	sections[0] = *owned;
	sections[1] = strcmp(profile, DEFAULT_PROFILE) == 0 ?
		      DEFAULT_PROFILE : NULL;
	sections[2] = NULL;
	return 0;
}

/* Look in the credentials file, then in the config file. */
static int creds_from_files(const char *profile, struct s3_creds *creds,
			    struct lookup_log *log)
{
	const char *cred_sections[] = { profile, NULL };
	const char *conf_sections[3];
	struct aws_file file = { 0 };
	char *owned = NULL;
	int ret;

	ret = aws_file_resolve("AWS_SHARED_CREDENTIALS_FILE", "credentials",
			       &file);
	if (ret)
		return ret;
	snprintf(log->credentials_file, sizeof(log->credentials_file), "%s",
		 file.display);
	ret = creds_from_file(&file, cred_sections, profile, creds, log);
	aws_file_free(&file);
	if (ret != 1)
		return ret;

	ret = aws_file_resolve("AWS_CONFIG_FILE", "config", &file);
	if (ret)
		return ret;
	ret = config_sections(profile, &owned, conf_sections);
	if (!ret)
		ret = creds_from_file(&file, conf_sections, profile, creds,
				      log);
	free(owned);
	aws_file_free(&file);
	return ret;
}

int s3_creds_load(const char *profile, struct s3_creds *creds, char *err,
		  size_t errlen)
{
	const char *name = resolve_profile(profile);
	struct lookup_log log = { .err = err, .errlen = errlen };
	char unused[1];
	int ret;

	memset(creds, 0, sizeof(*creds));
	if (!err || !errlen) {
		log.err = unused;
		log.errlen = sizeof(unused);
	}
	log.err[0] = '\0';

	/*
	 * As in botocore (1.43, create_credential_resolver), a profile named
	 * by the caller overrides credentials in the environment, while one
	 * named by AWS_PROFILE does not.
	 */
	if (!is_set(profile)) {
		ret = creds_from_env(creds, log.err, log.errlen);
		if (ret <= 0)
			goto out_found;
		err_append(log.places, sizeof(log.places), ", environment "
			   "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
			   "are not set)");
	}
	ret = creds_from_files(name, creds, &log);
	if (ret <= 0)
		goto out_found;

	snprintf(log.err, log.errlen,
		 "no AWS credentials found for profile %s; looked in %s. %s "
		 "aws_access_key_id and aws_secret_access_key under [%s] in %s",
		 name, log.places[0] ? log.places + 2 : "no place",
		 is_set(profile) ? "Add" : "Set AWS_ACCESS_KEY_ID and "
		 "AWS_SECRET_ACCESS_KEY, or add", name, log.credentials_file);
	return -ENOENT;

out_found:
	if (ret == 0)
		log_debug("using AWS credentials from %s", creds->source);
	return ret;
}

void s3_creds_free(struct s3_creds *creds)
{
	if (!creds)
		return;
	free(creds->access_key);
	free(creds->secret_key);
	free(creds->session_token);
	free(creds->source);
	memset(creds, 0, sizeof(*creds));
}

char *s3_region_load(const char *profile)
{
	static const char *const keys[] = { "region" };
	const char *env = getenv("AWS_REGION");
	const char *sections[3];
	struct aws_file file;
	char *values[1] = { NULL };
	char *owned = NULL;
	bool found;

	if (!is_set(env))
		env = getenv("AWS_DEFAULT_REGION");
	if (is_set(env))
		return strdup(env);

	if (aws_file_resolve("AWS_CONFIG_FILE", "config", &file))
		return NULL;
	if (config_sections(resolve_profile(profile), &owned, sections) == 0)
		ini_read(file.path, sections, keys, 1, values, &found);
	free(owned);
	aws_file_free(&file);
	if (is_set(values[0]))
		return values[0];
	free(values[0]);
	return strdup(DEFAULT_REGION);
}
