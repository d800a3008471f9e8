/* nfstool: tiny static helper for the kclient guest (busybox lacks these).
 *   nfstool mount SRC DIR FSTYPE OPTS   mount(2) with text options (kernel parses them)
 *   nfstool copy SRC DST                copy_file_range() whole file (-> NFSv4.2 COPY)
 *   nfstool lock FILE [FILE2]           fcntl: set/test/conflict/blocking-lock checks
 *   nfstool flock FILE [FILE2]          flock(LOCK_EX) + conflict check from a child
 *   nfstool trylock FILE                F_SETLK write lock on the whole file: exit 0 got it
 *                                       (then unlocks), 3 EAGAIN/EACCES (held elsewhere)
 *   nfstool waitlock FILE [HOLD_SECS]   F_SETLKW write lock (blocks), prints the wait, holds
 *                                       it HOLD_SECS (default 0)
 *   nfstool utimes FILE SEC NSEC        utimensat(): atime = mtime = SEC.NSEC exactly
 *   nfstool readdir DIR                 names in directory (cookie) order, without . and ..;
 *                                       busybox ls always sorts and has no -f
 *   nfstool holdlock FILE GO1 GO2       keeps one descriptor and one lock across a server
 *                                       restart: creates FILE, F_SETLK write lock, writes
 *                                       block 1 + fsync, prints "holdlock: locked", waits for
 *                                       the local file GO1; writes block 2 + fsync through the
 *                                       same descriptor and checks both blocks with pread,
 *                                       prints "holdlock: written", waits for GO2, unlocks
 *   nfstool pattern SIZE                the bytes holdlock writes (blocks 1 and 2 of SIZE/2),
 *                                       on stdout, to compare checksums with
 *   nfstool cat-as UID FILE             as user UID (gid UID too): open FILE read-only and copy
 *                                       it to stdout; a new NFSv4 open owner, so the client
 *                                       cannot reuse another process's open state
 *   nfstool xattr set|get|list|remove FILE [NAME [VALUE]]
 *                                       user extended attributes (NFSv4.2 SETXATTR, GETXATTR,
 *                                       LISTXATTRS, REMOVEXATTR): set creates (XATTR_CREATE),
 *                                       get prints the value, list the names; exit 4 ENODATA,
 *                                       5 EOPNOTSUPP, 6 EEXIST, 1 other errors
 * FILE2: the same file seen through a second mount made with -o nosharecache; the
 * child process then uses it, so the client's local lock checks cannot see the
 * parent's lock and the conflict must be found by the server (NLM TEST/LOCK,
 * NFSv4 LOCKT/LOCK; a blocked NLM lock then gets the server's GRANTED callback).
 * Exit 0 on success, 1 on failure; prints what it did. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/xattr.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <dirent.h>
#include <grp.h>
#include <unistd.h>

static double now(void) { struct timeval t; gettimeofday(&t, 0); return t.tv_sec + t.tv_usec / 1e6; }
static int die(const char *what) { fprintf(stderr, "nfstool: %s: %s\n", what, strerror(errno)); return 1; }

static int setlk(int fd, int cmd, short type) {
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	return fcntl(fd, cmd, &fl);
}

static int do_copy(const char *src, const char *dst) {
	int in = open(src, O_RDONLY), out;
	struct stat st;
	if (in < 0 || fstat(in, &st)) return die(src);
	if ((out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) return die(dst);
	double t0 = now();
	off_t left = st.st_size, done = 0;
	while (left > 0) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, left, 0);
		if (n < 0) return die("copy_file_range");
		if (n == 0) break;
		left -= n; done += n;
	}
	if (fsync(out)) return die("fsync");
	printf("copy_file_range: %lld bytes in %.2fs\n", (long long)done, now() - t0);
	return done == st.st_size ? 0 : 1;
}

static int do_lock(const char *path, const char *path2) {
	int fd = open(path, O_RDWR | O_CREAT, 0644), p[2], st;
	char c;
	if (fd < 0) return die(path);
	double t0 = now();
	if (setlk(fd, F_SETLK, F_WRLCK)) return die("F_SETLK write lock");
	printf("lock: F_SETLK write lock ok (%.2fs)\n", now() - t0);
	if (pipe(p)) return die("pipe");
	pid_t pid = fork();
	if (pid == 0) { /* child: a different lock owner */
		int cfd = open(path2, O_RDWR);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fcntl(cfd, F_GETLK, &fl)) _exit(die("child F_GETLK"));
		printf("lock: child F_GETLK sees %s (holder pid %d)\n", fl.l_type == F_UNLCK ? "UNLOCKED" : "conflict", fl.l_pid);
		if (fl.l_type == F_UNLCK) _exit(2);
		if (setlk(cfd, F_SETLK, F_WRLCK) == 0 || (errno != EAGAIN && errno != EACCES)) _exit(die("child F_SETLK should conflict"));
		printf("lock: child F_SETLK conflicts as expected (%s)\n", strerror(errno));
		fflush(stdout);
		write(p[1], "x", 1);
		double t1 = now();
		if (setlk(cfd, F_SETLKW, F_WRLCK)) _exit(die("child F_SETLKW"));
		printf("lock: child blocking F_SETLKW granted after %.2fs\n", now() - t1);
		setlk(cfd, F_SETLK, F_UNLCK);
		_exit(0);
	}
	close(p[1]); /* a child that fails early closes its end: read() sees EOF, no hang */
	if (read(p[0], &c, 1) != 1) {
		waitpid(pid, &st, 0);
		printf("lock: FAILED (child exited early, status %d)\n", st);
		return 1;
	}
	sleep(2); /* let the child block on the server */
	if (setlk(fd, F_SETLK, F_UNLCK)) return die("F_UNLCK");
	printf("lock: parent unlocked\n");
	fflush(stdout);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) { printf("lock: FAILED (child status %d)\n", st); return 1; }
	printf("lock: OK\n");
	return 0;
}

static int do_flock(const char *path, const char *path2) {
	int fd = open(path, O_RDWR | O_CREAT, 0644), st;
	if (fd < 0) return die(path);
	if (flock(fd, LOCK_EX)) return die("flock LOCK_EX");
	printf("flock: LOCK_EX ok\n");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int cfd = open(path2, O_RDWR);
		if (flock(cfd, LOCK_EX | LOCK_NB) == 0) { printf("flock: child got lock: NO conflict\n"); _exit(1); }
		printf("flock: child LOCK_NB conflicts as expected (%s)\n", strerror(errno));
		_exit(0);
	}
	waitpid(pid, &st, 0);
	if (flock(fd, LOCK_UN)) return die("flock LOCK_UN");
	printf("flock: %s\n", WIFEXITED(st) && !WEXITSTATUS(st) ? "OK" : "FAILED");
	return !(WIFEXITED(st) && !WEXITSTATUS(st));
}

static int do_utimes(const char *path, const char *sec, const char *nsec) {
	struct timespec ts[2];
	ts[0].tv_sec = strtoll(sec, NULL, 10);
	ts[0].tv_nsec = strtol(nsec, NULL, 10);
	ts[1] = ts[0];
	if (utimensat(AT_FDCWD, path, ts, 0)) return die("utimensat");
	return 0;
}

static int do_readdir(const char *path) {
	DIR *d = opendir(path);
	struct dirent *e;
	if (!d) return die(path);
	for (;;) {
		errno = 0;
		if (!(e = readdir(d))) break;
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			printf("%s\n", e->d_name);
	}
	/* readdir() returns NULL both at the end and on error: errno tells them apart */
	if (errno) return die("readdir");
	closedir(d);
	return 0;
}

static int do_trylock(const char *path) {
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	if (fd < 0) return die(path);
	if (setlk(fd, F_SETLK, F_WRLCK)) {
		int e = errno;
		printf("trylock: %s\n", strerror(e));
		return e == EAGAIN || e == EACCES ? 3 : 1;
	}
	printf("trylock: got the lock\n");
	setlk(fd, F_SETLK, F_UNLCK);
	return 0;
}

static int do_waitlock(const char *path, int hold) {
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	if (fd < 0) return die(path);
	double t0 = now();
	if (setlk(fd, F_SETLKW, F_WRLCK)) return die("F_SETLKW");
	printf("waitlock: granted after %.2fs\n", now() - t0);
	if (hold > 0) sleep(hold);
	return 0;
}

/* holdlock's data: a 64 KiB block per phase, bytes that differ by offset and by block,
 * so a block written twice, lost, or put at the wrong offset changes the checksum */
#define HOLD_BLOCK 65536
static void hold_fill(unsigned char *b, int block) {
	for (int i = 0; i < HOLD_BLOCK; i++) b[i] = (unsigned char)(i * 7 + block * 131 + (i >> 8));
}

/* wait_file PATH: poll for a local file (the test script's go-ahead), at most 15 minutes */
static int wait_file(const char *path) {
	struct stat st;
	for (int i = 0; i < 9000; i++) {
		if (stat(path, &st) == 0) return 0;
		usleep(100000);
	}
	fprintf(stderr, "nfstool: %s never appeared\n", path);
	return -1;
}

static int do_holdlock(const char *path, const char *go1, const char *go2) {
	static unsigned char want[2 * HOLD_BLOCK], got[2 * HOLD_BLOCK];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) return die(path);
	if (setlk(fd, F_SETLK, F_WRLCK)) return die("holdlock: F_SETLK write lock");
	hold_fill(want, 1);
	hold_fill(want + HOLD_BLOCK, 2);
	if (pwrite(fd, want, HOLD_BLOCK, 0) != HOLD_BLOCK) return die("holdlock: write block 1");
	if (fsync(fd)) return die("holdlock: fsync block 1");
	printf("holdlock: locked, block 1 written and synced\n");
	if (wait_file(go1)) return 1;
	double t0 = now();
	if (pwrite(fd, want + HOLD_BLOCK, HOLD_BLOCK, HOLD_BLOCK) != HOLD_BLOCK) return die("holdlock: write block 2 (after the restart)");
	if (fsync(fd)) return die("holdlock: fsync block 2 (after the restart)");
	ssize_t n = pread(fd, got, sizeof got, 0);
	if (n < 0) return die("holdlock: pread");
	if (n != (ssize_t)sizeof got || memcmp(got, want, sizeof got)) {
		printf("holdlock: read back %zd bytes, content %s\n", n, memcmp(got, want, sizeof got) ? "differs" : "ok");
		return 1;
	}
	printf("holdlock: written, block 2 written+synced through the old descriptor in %.2fs, both blocks read back\n", now() - t0);
	if (wait_file(go2)) return 1;
	if (setlk(fd, F_SETLK, F_UNLCK)) return die("holdlock: F_UNLCK");
	if (close(fd)) return die("holdlock: close");
	printf("holdlock: unlocked and closed\n");
	return 0;
}

static int xattr_status(const char *what) {
	int e = errno;
	fprintf(stderr, "nfstool: xattr %s: %s\n", what, strerror(e));
	return e == ENODATA ? 4 : e == EOPNOTSUPP ? 5 : e == EEXIST ? 6 : 1;
}

static int do_xattr(int argc, char **argv) {
	const char *op = argv[2], *file = argv[3], *name = argc > 4 ? argv[4] : NULL;
	char buf[65536];
	if (!strcmp(op, "set") && argc == 6) {
		if (setxattr(file, name, argv[5], strlen(argv[5]), XATTR_CREATE)) return xattr_status("set");
		return 0;
	}
	if (!strcmp(op, "get") && argc == 5) {
		ssize_t n = getxattr(file, name, buf, sizeof(buf));
		if (n < 0) return xattr_status("get");
		printf("%.*s\n", (int)n, buf);
		return 0;
	}
	if (!strcmp(op, "list") && argc == 4) {
		ssize_t n = listxattr(file, buf, sizeof(buf));
		if (n < 0) return xattr_status("list");
		for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1) printf("%s\n", buf + i);
		return 0;
	}
	if (!strcmp(op, "remove") && argc == 5) {
		if (removexattr(file, name)) return xattr_status("remove");
		return 0;
	}
	fprintf(stderr, "nfstool: xattr set FILE NAME VALUE | get FILE NAME | list FILE | remove FILE NAME\n");
	return 2;
}

static int do_pattern(long size) {
	static unsigned char b[HOLD_BLOCK];
	for (int block = 1; block <= 2 && size > 0; block++) {
		hold_fill(b, block);
		long n = size < HOLD_BLOCK ? size : HOLD_BLOCK;
		if (fwrite(b, 1, n, stdout) != (size_t)n) return die("pattern: write");
		size -= n;
	}
	return fflush(stdout) ? die("pattern: flush") : 0;
}

static int do_cat_as(const char *uid, const char *path) {
	char buf[65536];
	uid_t id = (uid_t)strtoul(uid, NULL, 10);
	ssize_t n;
	if (setgroups(0, NULL) || setresgid(id, id, id) || setresuid(id, id, id)) return die("cat-as: set ids");
	int fd = open(path, O_RDONLY);
	if (fd < 0) return die(path);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		if (fwrite(buf, 1, n, stdout) != (size_t)n) return die("cat-as: write");
	if (n < 0) return die("cat-as: read");
	close(fd);
	return 0;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 6 && !strcmp(argv[1], "mount")) {
		if (mount(argv[2], argv[3], argv[4], 0, argv[5])) return die("mount");
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "copy")) return do_copy(argv[2], argv[3]);
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "lock")) return do_lock(argv[2], argv[argc - 1]);
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "flock")) return do_flock(argv[2], argv[argc - 1]);
	if (argc == 3 && !strcmp(argv[1], "trylock")) return do_trylock(argv[2]);
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "waitlock")) return do_waitlock(argv[2], argc == 4 ? atoi(argv[3]) : 0);
	if (argc == 5 && !strcmp(argv[1], "utimes")) return do_utimes(argv[2], argv[3], argv[4]);
	if (argc == 3 && !strcmp(argv[1], "readdir")) return do_readdir(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "holdlock")) return do_holdlock(argv[2], argv[3], argv[4]);
	if (argc == 3 && !strcmp(argv[1], "pattern")) return do_pattern(atol(argv[2]));
	if (argc == 4 && !strcmp(argv[1], "cat-as")) return do_cat_as(argv[2], argv[3]);
	if (argc >= 4 && !strcmp(argv[1], "xattr")) return do_xattr(argc, argv);
	fprintf(stderr, "usage: nfstool mount SRC DIR FSTYPE OPTS | copy SRC DST | lock FILE [FILE2] |"
		" flock FILE [FILE2] | trylock FILE | waitlock FILE [SECS] | utimes FILE SEC NSEC | readdir DIR |"
		" holdlock FILE GO1 GO2 | pattern SIZE | cat-as UID FILE | xattr OP FILE [NAME [VALUE]]\n");
	return 2;
}
