/*
 * A 4.0 OPEN whose reply never comes (the test freezes the server with SIGSTOP while it
 * is in flight): client_v40_lost URL (vers=4.0, timeo=1; a directory: the files are
 * opened with nfs_open_at, so that each open is the OPEN alone) talks over stdin/stdout:
 *   prints "ready" after opening "lost-a"; waits for a line; opens "lost-b" (the server
 *   is frozen: it times out), prints "lost STATUS"; waits for a line (the server runs
 *   again and has now processed that OPEN); opens "lost-c" and checks that the handle it
 *   got is lost-c's (a LOOKUP gives the same fileid) and that I/O on it works; "ok".
 * The owner's seqid is what is at stake: if the client reused the lost OPEN's seqid, the
 * server would take "c"'s OPEN for a retransmission and answer with "b"'s reply.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client/nfs_client.h"

static int wait_line(void)
{
    char line[64];
    return fgets(line, sizeof(line), stdin) ? 0 : -1;
}

static struct nfs_fh dir_fh;

static int open_in(struct nfs_client *c, const char *name, struct nfs_file *f)
{
    return nfs_open_at(c, &dir_fh, name, NFS_O_CREAT, 0644, f);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: client_v40_lost URL\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int st;
    char err[256];
    struct nfs_client *c = nfs_client_connect(argv[1], &st, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "connect: %s\n", err);
        return 1;
    }
    const char *dir = nfs_client_url_rest(c);
    if ((st = nfs_lookup_path(c, dir, &dir_fh, NULL)) != 0) {
        fprintf(stderr, "lookup %s: %s\n", dir, nfs_client_strerror(st));
        return 1;
    }
    struct nfs_file a, b, cf;
    if ((st = open_in(c, "lost-a", &a)) != 0) {
        fprintf(stderr, "open lost-a: %s\n", nfs_client_strerror(st));
        return 1;
    }
    printf("ready\n");
    if (wait_line())
        return 1;
    st = open_in(c, "lost-b", &b);
    printf("lost %d\n", st);
    if (st == 0) {
        fprintf(stderr, "open lost-b succeeded: the server was not frozen\n");
        return 1;
    }
    if (wait_line())
        return 1;
    if ((st = open_in(c, "lost-c", &cf)) != 0) {
        fprintf(stderr, "open lost-c: %s\n", nfs_client_strerror(st));
        return 1;
    }
    char path[600];
    snprintf(path, sizeof(path), "%s%slost-c", dir, *dir ? "/" : "");
    struct nfs_fh fh;
    struct nfs_attr attr;
    if ((st = nfs_lookup_path(c, path, &fh, &attr)) != 0) {
        fprintf(stderr, "lookup lost-c: %s\n", nfs_client_strerror(st));
        return 1;
    }
    if (attr.fileid != cf.attr.fileid) {
        fprintf(stderr, "OPEN of c returned another file (fileid %llu, c is %llu): the lost "
                "OPEN's reply was replayed\n", (unsigned long long)cf.attr.fileid,
                (unsigned long long)attr.fileid);
        return 1;
    }
    struct nfs_io_result res;
    if ((st = nfs_write(c, &cf.fh, 0, "seqid", 5, NFS_FILE_SYNC, &res)) != 0) {
        fprintf(stderr, "write c: %s\n", nfs_client_strerror(st));
        return 1;
    }
    if ((st = nfs_close(c, &cf)) != 0 || (st = nfs_close(c, &a)) != 0) {
        fprintf(stderr, "close: %s\n", nfs_client_strerror(st));
        return 1;
    }
    nfs_client_destroy(c);
    printf("ok\n");
    return 0;
}
