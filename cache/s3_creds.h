/*
 * s3_creds.h - the AWS credential and region chain, as the AWS CLI reads
 * it: environment first, then the shared files in ~/.aws.
 */
#ifndef NEARFS_S3_CREDS_H
#define NEARFS_S3_CREDS_H

#include <stdbool.h>
#include <stddef.h>

struct s3_creds {
	char *access_key;
	char *secret_key;
	char *session_token;	/* NULL unless temporary credentials */
	char *source;		/* where they came from, for messages:
				 * "environment" or "~/.aws/credentials
				 * [profile]"; never contains a secret */
};

/*
 * Find credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN, then AWS_SHARED_CREDENTIALS_FILE or
 * ~/.aws/credentials under [profile], then AWS_CONFIG_FILE or
 * ~/.aws/config under [profile NAME].  profile NULL means AWS_PROFILE,
 * then "default".  As in botocore, a profile given explicitly skips the
 * environment variables.  Returns 0, -ENOENT when none are found (err
 * names the places looked at), -EINVAL for a half-set pair.
 */
int s3_creds_load(const char *profile, struct s3_creds *creds, char *err,
		  size_t errlen);
void s3_creds_free(struct s3_creds *creds);

/*
 * Find the region: AWS_REGION, AWS_DEFAULT_REGION, then "region" in
 * AWS_CONFIG_FILE or ~/.aws/config under [default] or [profile NAME].
 * Returns a malloc'ed string: "us-east-1" when nothing is set.
 */
char *s3_region_load(const char *profile);

#endif
