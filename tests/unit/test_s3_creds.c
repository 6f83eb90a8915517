/* test_s3_creds.c - unit tests of the AWS credential and region chain. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3_creds.h"

#define MAX_ENV 6
#define MAX_NEEDLES 4

static const char *const aws_env_names[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
	"AWS_REGION", "AWS_DEFAULT_REGION",
};

/* One environment: variables and the files under a fresh $HOME. */
struct env_setup {
	const char *env[MAX_ENV];	/* "NAME=value" */
	const char *credentials;	/* ~/.aws/credentials, or NULL */
	const char *config;		/* ~/.aws/config, or NULL */
	const char *alt_file;		/* ~/alt-file, or NULL */
};

static char tmp_root[] = "/tmp/nearfs-test-creds-XXXXXX";
static int home_count;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Clear the AWS variables, then set HOME to a new directory with files. */
static void apply_setup(const struct env_setup *setup)
{
	char home[256], path[300];

	for (size_t i = 0; i < sizeof(aws_env_names) / sizeof(*aws_env_names);
	     i++)
		unsetenv(aws_env_names[i]);
	snprintf(home, sizeof(home), "%s/home%d", tmp_root, home_count++);
	assert_int_equal(mkdir(home, 0700), 0);
	snprintf(path, sizeof(path), "%s/.aws", home);
	assert_int_equal(mkdir(path, 0700), 0);
	setenv("HOME", home, 1);

	if (setup->credentials) {
		snprintf(path, sizeof(path), "%s/.aws/credentials", home);
		write_file(path, setup->credentials);
	}
	if (setup->config) {
		snprintf(path, sizeof(path), "%s/.aws/config", home);
		write_file(path, setup->config);
	}
	if (setup->alt_file) {
		snprintf(path, sizeof(path), "%s/alt-file", home);
		write_file(path, setup->alt_file);
	}
	for (size_t i = 0; i < MAX_ENV && setup->env[i]; i++)
		assert_int_equal(putenv((char *)setup->env[i]), 0);
}

static const char default_credentials[] =
	"# shared credentials\n"
	"[default]\n"
	"aws_access_key_id = AKIDDEFAULT\n"
	"aws_secret_access_key=SKEYdefault\n"
	"\n"
	"; the production account\n"
	"[ prod ]\n"
	"  # indented comment\n"
	"AWS_ACCESS_KEY_ID\t=  AKIDPROD   \n"
	"aws_secret_access_key = SKEYprod ; inline comment\n"
	"aws_session_token = STOKprod\n"
	"[half]\n"
	"aws_access_key_id = AKIDHALF\n"
	"[empty]\n"
	"region = eu-west-1\n";

static const struct {
	const char *name;
	struct env_setup setup;
	const char *profile;
	int ret;
	const char *access_key;
	const char *secret_key;
	const char *session_token;
	const char *source;
	const char *err_needles[MAX_NEEDLES];
} cred_cases[] = {
	{ .name = "environment pair",
	  .setup = { .env = { "AWS_ACCESS_KEY_ID=AKIDENV",
			      "AWS_SECRET_ACCESS_KEY=SKEYenv",
			      "AWS_SESSION_TOKEN=STOKenv" },
		     .credentials = default_credentials },
	  .access_key = "AKIDENV", .secret_key = "SKEYenv",
	  .session_token = "STOKenv", .source = "environment" },
	{ .name = "environment beats AWS_PROFILE",
	  .setup = { .env = { "AWS_ACCESS_KEY_ID=AKIDENV",
			      "AWS_SECRET_ACCESS_KEY=SKEYenv",
			      "AWS_PROFILE=prod" },
		     .credentials = default_credentials },
	  .access_key = "AKIDENV", .secret_key = "SKEYenv",
	  .source = "environment" },
	{ .name = "profile argument beats environment",
	  .setup = { .env = { "AWS_ACCESS_KEY_ID=AKIDENV",
			      "AWS_SECRET_ACCESS_KEY=SKEYenv" },
		     .credentials = default_credentials },
	  .profile = "prod",
	  .access_key = "AKIDPROD", .secret_key = "SKEYprod",
	  .session_token = "STOKprod", .source = "~/.aws/credentials [prod]" },
	{ .name = "environment access key only",
	  .setup = { .env = { "AWS_ACCESS_KEY_ID=AKIDENV" },
		     .credentials = default_credentials },
	  .ret = -EINVAL,
	  .err_needles = { "AWS_SECRET_ACCESS_KEY is not", "set both" } },
	{ .name = "environment secret only",
	  .setup = { .env = { "AWS_SECRET_ACCESS_KEY=SKEYenv" },
		     .credentials = default_credentials },
	  .ret = -EINVAL, .err_needles = { "AWS_ACCESS_KEY_ID is not" } },
	{ .name = "empty environment ignored",
	  .setup = { .env = { "AWS_ACCESS_KEY_ID=",
			      "AWS_SECRET_ACCESS_KEY=" },
		     .credentials = default_credentials },
	  .access_key = "AKIDDEFAULT", .secret_key = "SKEYdefault",
	  .source = "~/.aws/credentials [default]" },
	{ .name = "default profile file",
	  .setup = { .credentials = default_credentials },
	  .access_key = "AKIDDEFAULT", .secret_key = "SKEYdefault",
	  .source = "~/.aws/credentials [default]" },
	{ .name = "AWS_PROFILE selects section",
	  .setup = { .env = { "AWS_PROFILE=prod" },
		     .credentials = default_credentials },
	  .access_key = "AKIDPROD", .secret_key = "SKEYprod",
	  .session_token = "STOKprod", .source = "~/.aws/credentials [prod]" },
	{ .name = "shared credentials file variable",
	  .setup = { .env = { "AWS_SHARED_CREDENTIALS_FILE=~/alt-file" },
		     .credentials = default_credentials,
		     .alt_file = "[default]\naws_access_key_id=AKIDALT\n"
				 "aws_secret_access_key=SKEYalt\n" },
	  .access_key = "AKIDALT", .secret_key = "SKEYalt",
	  .source = "~/alt-file [default]" },
	{ .name = "half pair in file",
	  .setup = { .credentials = default_credentials },
	  .profile = "half", .ret = -EINVAL,
	  .err_needles = { "[half]", "~/.aws/credentials",
			   "no aws_secret_access_key" } },
	{ .name = "profile not found",
	  .setup = { .credentials = default_credentials },
	  .profile = "missing", .ret = -ENOENT,
	  .err_needles = { "profile missing",
			   "~/.aws/credentials (no such profile)",
			   "~/.aws/config (No such file",
			   "Add aws_access_key_id and aws_secret_access_key "
			   "under [missing] in ~/.aws/credentials" } },
	{ .name = "profile without keys",
	  .setup = { .credentials = default_credentials },
	  .profile = "empty", .ret = -ENOENT,
	  .err_needles = { "profile has no aws_access_key_id" } },
	{ .name = "no files",
	  .ret = -ENOENT,
	  .err_needles = { "environment (AWS_ACCESS_KEY_ID",
			   "~/.aws/credentials (No such file",
			   "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
			   "or add", "under [default] in ~/.aws/credentials" }
	},
	{ .name = "missing credentials file variable",
	  .setup = { .env = { "AWS_SHARED_CREDENTIALS_FILE=~/nowhere" },
		     .credentials = default_credentials },
	  .ret = -ENOENT,
	  .err_needles = { "~/nowhere (No such file",
			   "under [default] in ~/nowhere" } },
	{ .name = "config file profile",
	  .setup = { .env = { "AWS_PROFILE=dev" },
		     .credentials = "[default]\n",
		     .config = "[profile   dev]\nregion = eu-west-1\n"
			       "aws_access_key_id = AKIDDEV\n"
			       "aws_secret_access_key = SKEYdev\n" },
	  .access_key = "AKIDDEV", .secret_key = "SKEYdev",
	  .source = "~/.aws/config [dev]" },
	{ .name = "config bare section ignored",
	  .setup = { .config = "[dev]\naws_access_key_id = AKIDDEV\n"
			       "aws_secret_access_key = SKEYdev\n" },
	  .profile = "dev", .ret = -ENOENT,
	  .err_needles = { "~/.aws/config (no such profile)" } },
	{ .name = "nested value skipped",
	  .setup = { .credentials =
			"[default]\ns3 =\n  aws_access_key_id = AKIDNESTED\n"
			"aws_secret_access_key = SKEYnested\n"
			"aws_access_key_id = AKIDTOP\n" },
	  .access_key = "AKIDTOP", .secret_key = "SKEYnested",
	  .source = "~/.aws/credentials [default]" },
};

static void check_needles(const char *err, const char *const *needles)
{
	for (size_t i = 0; i < MAX_NEEDLES && needles[i]; i++) {
		if (!strstr(err, needles[i]))
			fail_msg("\"%s\" not in \"%s\"", needles[i], err);
	}
}

static void test_s3_creds_load_table(void **state)
{
	for (size_t i = 0; i < sizeof(cred_cases) / sizeof(cred_cases[0]);
	     i++) {
		struct s3_creds creds;
		char err[1024];
		int ret;

		print_message("case %s\n", cred_cases[i].name);
		apply_setup(&cred_cases[i].setup);
		ret = s3_creds_load(cred_cases[i].profile, &creds, err,
				    sizeof(err));
		assert_int_equal(ret, cred_cases[i].ret);
		/* Messages never show a secret key or a session token. */
		assert_null(strstr(err, "SKEY"));
		assert_null(strstr(err, "STOK"));
		if (ret) {
			assert_null(creds.access_key);
			assert_null(creds.secret_key);
			assert_true(strlen(err) > 0);
			check_needles(err, cred_cases[i].err_needles);
			continue;
		}
		assert_string_equal(creds.access_key,
				    cred_cases[i].access_key);
		assert_string_equal(creds.secret_key,
				    cred_cases[i].secret_key);
		if (cred_cases[i].session_token)
			assert_string_equal(creds.session_token,
					    cred_cases[i].session_token);
		else
			assert_null(creds.session_token);
		assert_string_equal(creds.source, cred_cases[i].source);
		assert_null(strstr(creds.source, "SKEY"));
		s3_creds_free(&creds);
		assert_null(creds.secret_key);
	}
}

/* A NULL or tiny error buffer is allowed and messages are cut short. */
static void test_s3_creds_small_error_buffer(void **state)
{
	const struct env_setup setup = { .credentials = NULL };
	struct s3_creds creds;
	char err[8];

	apply_setup(&setup);
	assert_int_equal(s3_creds_load(NULL, &creds, NULL, 0), -ENOENT);
	assert_int_equal(s3_creds_load(NULL, &creds, err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(strlen(err), sizeof(err) - 1);
}

static const char region_config[] =
	"[default]\n"
	"s3 =\n"
	"  region = nested-region-1\n"
	"region = us-west-2\n"
	"[profile prod]\n"
	"region=eu-central-1   # Frankfurt\n"
	"[dev]\n"
	"region = bare-section-1\n";

static const struct {
	const char *name;
	struct env_setup setup;
	const char *profile;
	const char *expected;
} region_cases[] = {
	{ .name = "AWS_REGION first",
	  .setup = { .env = { "AWS_REGION=ap-south-1",
			      "AWS_DEFAULT_REGION=sa-east-1" },
		     .config = region_config },
	  .profile = "prod", .expected = "ap-south-1" },
	{ .name = "AWS_DEFAULT_REGION second",
	  .setup = { .env = { "AWS_DEFAULT_REGION=sa-east-1" },
		     .config = region_config },
	  .expected = "sa-east-1" },
	{ .name = "config default section",
	  .setup = { .config = region_config }, .expected = "us-west-2" },
	{ .name = "config profile argument",
	  .setup = { .config = region_config },
	  .profile = "prod", .expected = "eu-central-1" },
	{ .name = "config AWS_PROFILE",
	  .setup = { .env = { "AWS_PROFILE=prod" }, .config = region_config },
	  .expected = "eu-central-1" },
	{ .name = "config file variable",
	  .setup = { .env = { "AWS_CONFIG_FILE=~/alt-file" },
		     .config = region_config,
		     .alt_file = "[default]\nregion = me-south-1\n" },
	  .expected = "me-south-1" },
	{ .name = "bare config section ignored",
	  .setup = { .config = region_config },
	  .profile = "dev", .expected = "us-east-1" },
	{ .name = "nothing set", .expected = "us-east-1" },
};

static void test_s3_creds_region_table(void **state)
{
	for (size_t i = 0; i < sizeof(region_cases) / sizeof(region_cases[0]);
	     i++) {
		char *region;

		print_message("case %s\n", region_cases[i].name);
		apply_setup(&region_cases[i].setup);
		region = s3_region_load(region_cases[i].profile);
		assert_non_null(region);
		assert_string_equal(region, region_cases[i].expected);
		free(region);
	}
}

static int make_tmp_root(void **state)
{
	return mkdtemp(tmp_root) ? 0 : -1;
}

static int remove_tmp_root(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s3_creds_load_table),
		cmocka_unit_test(test_s3_creds_small_error_buffer),
		cmocka_unit_test(test_s3_creds_region_table),
	};

	return cmocka_run_group_tests(tests, make_tmp_root, remove_tmp_root);
}
