/*
 * lendcli.c - ask a nearfs daemon for the local copy of a file, as the
 * preload library does (fs/preload/protocol.h), for the integration tests.
 *
 *   lendcli [--wait] SOCKET PATH
 *   lendcli [--wait] SOCKET --fd N
 *
 * Opens PATH read-only (or uses the inherited descriptor N), sends "open
 * SIZE MTIME_SEC MTIME_NSEC" with that descriptor over the control socket
 * SOCKET, prints the reply line and closes its own descriptor.  After an
 * "ok" reply it prints
 *
 *   sha256 HEX links N access ro|rw
 *
 * for the lent descriptor: the SHA-256 of its content, its link count and
 * its access mode.  With --wait it then reads one line from standard input
 * and prints that line again, so that a test can change the cache while
 * the descriptor stays open.  Exits with 0 when a reply arrived, 1 for a
 * usage error and 2 when the request could not be made.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fdpass.h"
#include "preload/protocol.h"

static int usage(void)
{
	fprintf(stderr, "usage: lendcli [--wait] SOCKET PATH\n"
		"       lendcli [--wait] SOCKET --fd N\n");
	return 1;
}

static int connect_socket(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "lendcli: socket path %s is too long\n", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr,
			      sizeof(addr)) < 0) {
		fprintf(stderr, "lendcli: cannot connect to %s: %s\n", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Read the reply line into line and the descriptor sent with it, if
 * any, into *lent. */
static int read_reply(int sock, char *line, size_t size, int *lent)
{
	size_t len = 0;

	*lent = -1;
	while (len + 1 < size) {
		ssize_t n = fdpass_recv(sock, line + len, size - 1 - len, lent,
					NULL);

		if (n < 0) {
			fprintf(stderr, "lendcli: cannot read the reply: "
				"%s\n", strerror((int)-n));
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		line[len] = '\0';
		if (memchr(line, '\n', len))
			break;
	}
	line[len] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (len == 0) {
		fprintf(stderr, "lendcli: the daemon closed the connection "
			"without a reply\n");
		return -1;
	}
	return 0;
}

/* Print the SHA-256, link count and access mode of fd. */
static int report(int fd)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char buf[65536];
	uint64_t off = 0;
	struct stat st;
	ssize_t n;
	int flags = fcntl(fd, F_GETFL);

	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		return -1;
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		off += (uint64_t)n;
	}
	EVP_DigestFinal_ex(ctx, digest, &digest_len);
	EVP_MD_CTX_free(ctx);
	if (n < 0 || fstat(fd, &st) < 0 || flags < 0) {
		fprintf(stderr, "lendcli: cannot read the lent descriptor: "
			"%s\n", strerror(errno));
		return -1;
	}
	printf("sha256 ");
	for (unsigned int i = 0; i < digest_len; i++)
		printf("%02x", digest[i]);
	printf(" links %ju access %s\n", (uintmax_t)st.st_nlink,
	       (flags & O_ACCMODE) == O_RDONLY ? "ro" : "rw");
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	char request[NEARFS_LEND_LINE_MAX], reply[NEARFS_LEND_LINE_MAX];
	const char *socket_path;
	bool wait = false;
	int argi = 1, file_fd, sock, lent, ret;
	struct stat st;

	if (argi < argc && strcmp(argv[argi], "--wait") == 0) {
		wait = true;
		argi++;
	}
	if (argc - argi == 3 && strcmp(argv[argi + 1], "--fd") == 0)
		file_fd = atoi(argv[argi + 2]);
	else if (argc - argi == 2)
		file_fd = open(argv[argi + 1], O_RDONLY | O_CLOEXEC);
	else
		return usage();
	socket_path = argv[argi];
	if (file_fd < 0 || fstat(file_fd, &st) < 0) {
		fprintf(stderr, "lendcli: cannot open %s: %s\n",
			argv[argc - 1], strerror(errno));
		return 2;
	}
	snprintf(request, sizeof(request), NEARFS_LEND_REQUEST " %jd %jd %ld\n",
		 (intmax_t)st.st_size, (intmax_t)st.st_mtim.tv_sec,
		 (long)st.st_mtim.tv_nsec);
	sock = connect_socket(socket_path);
	if (sock < 0)
		return 2;
	ret = fdpass_send(sock, request, strlen(request), file_fd);
	if (ret) {
		fprintf(stderr, "lendcli: cannot send the request: %s\n",
			strerror(-ret));
		return 2;
	}
	if (read_reply(sock, reply, sizeof(reply), &lent) < 0)
		return 2;
	printf("%s\n", reply);
	fflush(stdout);
	/* The preload library replaces its own descriptor with the lent one
	 * too, so the daemon's open handle goes away. */
	close(file_fd);
	if (lent < 0)
		return 0;
	if (report(lent) < 0)
		return 2;
	if (wait) {
		char line[64];

		if (!fgets(line, sizeof(line), stdin))
			return 2;
		if (report(lent) < 0)
			return 2;
	}
	return 0;
}
