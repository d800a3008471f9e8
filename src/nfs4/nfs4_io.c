/*
 * The data operations: READ, WRITE, COMMIT (RFC 7530 16.23, 16.36, 16.3; RFC 8881
 * 18.22, 18.32, 18.3) and the NFSv4.2 ones, SEEK, ALLOCATE, DEALLOCATE and READ_PLUS
 * (RFC 7862 15.11, 15.1, 15.4, 15.10).
 *
 * READ and READ_PLUS data is read straight into the reply (they are DIRECT ops: the
 * result is encoded here), WRITE data is written straight from the request buffer.
 * Stable writes and COMMIT really reach the disk unless the export is `async`, where
 * the admin chose to let them claim it, as with NFSv3.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "nfs4/nfs4_io.h"

/* The current filehandle as a regular file for I/O: its attributes, its type, the
 * stateid and the caller's permission, in the order knfsd checks them. sid NULL: no
 * stateid (COMMIT); may 0: no permission check. */
static nfsstat4 nfs4_io_begin(struct nfs4_compound *c, const stateid4 *sid, bool write, unsigned may,
                              struct stat *st)
{
    if (c->cur.kind == NFS4_FH_PSEUDO)
        return NFS4ERR_ISDIR;
    nfsstat4 s = nfs4_fh_getattr(&c->cur, st);
    if (s != NFS4_OK)
        return s;
    s = nfs4_want_type(c->minor, st->st_mode, S_IFREG);
    if (s != NFS4_OK)
        return s;
    /* The engine refuses MODIFIES ops on read-only exports; this keeps the handlers
     * safe should the table and the op disagree. */
    if (write && nfs4_fh_read_only(&c->cur))
        return NFS4ERR_ROFS;
    if (sid) {
        s = nfs4_check_io_stateid(c, sid, write);
        if (s != NFS4_OK)
            return s;
    }
    if (!may)
        return NFS4_OK;
    const struct nfs4_fh *f = &c->cur;
    int err = NFS4_FS(f, permission, &f->cred, st, may);
    /* Reading with execute permission alone is allowed: a client must read a mode
     * 0711 program to execute it. */
    if (err && may == FS_MAY_READ && NFS4_FS(f, permission, &f->cred, st, FS_MAY_EXEC) == 0)
        err = 0;
    return nfs4_errno(err);
}

/* The bytes a READ may return: what was asked, at most NFS4_MAXIO, and what is left
 * of the reply after `overhead` more bytes of result. */
static uint32_t nfs4_read_room(const struct xdr_enc *x, uint32_t count, uint32_t overhead)
{
    size_t left = xdr_enc_left(x);
    left = left > overhead ? (left - overhead) & ~(size_t)3 : 0;
    uint32_t want = count < NFS4_MAXIO ? count : NFS4_MAXIO;
    return want > left ? (uint32_t)left : want;
}

/*
 * Read into the reply at `data` (room for `want` bytes reserved there). Returns the
 * backend's status; on success *n and *eof.
 */
static nfsstat4 nfs4_read_data(struct nfs4_compound *c, uint64_t offset, uint8_t *data, uint32_t want,
                               size_t *n, bool *eof)
{
    *n = 0;
    *eof = false;
    return nfs4_errno(NFS4_FS(&c->cur, read, &c->cur.fh, offset, data, want, n, eof));
}

/*
 * Reserve `head_len` bytes of result header, then read up to `count` bytes at `offset`
 * straight into the reply after it (READ and READ_PLUS). *head is NULL when the reply
 * buffer is full (direct_overflow set); on an error nothing stays written.
 */
static nfsstat4 nfs4_read_into_reply(struct nfs4_compound *c, uint32_t head_len, uint32_t count,
                                     uint64_t offset, uint8_t **head, uint8_t **data, size_t *n, bool *eof)
{
    struct xdr_enc *x = c->enc;
    uint8_t *mark = x->p;
    *head = xdr_enc_reserve(x, head_len);
    uint32_t want = *head ? nfs4_read_room(x, count, 0) : 0;
    if (!*head || (want == 0 && count > 0)) {
        x->p = mark;
        *head = NULL;
        c->direct_overflow = true;
        return NFS4_OK;
    }
    *data = xdr_enc_reserve(x, want);
    nfsstat4 s = nfs4_read_data(c, offset, *data, want, n, eof);
    if (s != NFS4_OK)
        x->p = mark;
    return s;
}

/* READ4resok in place: status, eof, data length, data. */
static nfsstat4 nfs4_read_encode(struct nfs4_compound *c, const READ4args *a)
{
    uint8_t *head, *data;
    size_t n;
    bool eof;
    nfsstat4 s = nfs4_read_into_reply(c, 12, a->count, a->offset, &head, &data, &n, &eof);
    if (s != NFS4_OK || !head)
        return s;
    xdr_enc_shrink(c->enc, data, (uint32_t)n);
    xdr_put_be32(head, NFS4_OK);
    xdr_put_be32(head + 4, eof);
    xdr_put_be32(head + 8, (uint32_t)n);
    return NFS4_OK;
}

NFS4_OP(read)
{
    const READ4args *a = &arg->opread;
    struct stat st;
    (void)res;
    nfsstat4 s = nfs4_io_begin(c, &a->stateid, false, FS_MAY_READ, &st);
    if (s != NFS4_OK)
        return s;
    if (a->offset > (uint64_t)INT64_MAX)
        return NFS4ERR_INVAL; /* no byte there can exist (knfsd answers the same) */
    return nfs4_read_encode(c, a);
}

/*
 * READ_PLUS4res in place with at most one segment, of data: holes are not reported.
 * Finding them costs two lseeks per call and buys little on a LAN; knfsd stopped
 * returning hole segments for the same reasons. No data (at or past the end) is an
 * empty segment list with eof.
 */
static nfsstat4 nfs4_read_plus_encode(struct nfs4_compound *c, const READ_PLUS4args *a)
{
    struct xdr_enc *x = c->enc;
    uint8_t *head, *data;
    size_t n;
    bool eof;
    /* status, eof, segment count, content type, offset (8), data length */
    nfsstat4 s = nfs4_read_into_reply(c, 28, a->rpa_count, a->rpa_offset, &head, &data, &n, &eof);
    if (s != NFS4_OK || !head)
        return s;
    xdr_put_be32(head, NFS4_OK);
    xdr_put_be32(head + 4, eof);
    if (n == 0) {
        xdr_put_be32(head + 8, 0);
        x->p = head + 12;
        return NFS4_OK;
    }
    xdr_enc_shrink(x, data, (uint32_t)n);
    xdr_put_be32(head + 8, 1);
    xdr_put_be32(head + 12, NFS4_CONTENT_DATA);
    xdr_put_be32(head + 16, (uint32_t)(a->rpa_offset >> 32));
    xdr_put_be32(head + 20, (uint32_t)a->rpa_offset);
    xdr_put_be32(head + 24, (uint32_t)n);
    return NFS4_OK;
}

NFS4_OP(read_plus)
{
    const READ_PLUS4args *a = &arg->opread_plus;
    struct stat st;
    (void)res;
    nfsstat4 s = nfs4_io_begin(c, &a->rpa_stateid, false, FS_MAY_READ, &st);
    if (s != NFS4_OK)
        return s;
    if (a->rpa_offset > (uint64_t)INT64_MAX)
        return NFS4ERR_INVAL;
    return nfs4_read_plus_encode(c, a);
}

static enum fs_stable nfs4_fs_stable(stable_how4 how)
{
    switch (how) {
    case UNSTABLE4:
        return FS_UNSTABLE;
    case DATA_SYNC4:
        return FS_DATA_SYNC;
    default:
        return FS_FILE_SYNC;
    }
}

/* `async` export: stable writes and COMMIT do not wait for the disk. */
static bool nfs4_async(const struct nfs4_fh *f)
{
    return f->rule->opts & EXPORT_ASYNC;
}

NFS4_OP(write)
{
    const WRITE4args *a = &arg->opwrite;
    WRITE4res *r = &res->opwrite;
    struct stat st, post;
    size_t written = 0;

    nfsstat4 s = nfs4_io_begin(c, &a->stateid, true, FS_MAY_WRITE, &st);
    if (s != NFS4_OK)
        return r->status = s;
    if (a->offset > (uint64_t)INT64_MAX || a->data.len > (uint64_t)INT64_MAX - a->offset)
        return r->status = NFS4ERR_FBIG;
    /* The backend writes exactly as durably as asked, so `committed` is `stable`; on
     * an `async` export it is what the admin told us to claim. */
    enum fs_stable how = nfs4_async(&c->cur) ? FS_UNSTABLE : nfs4_fs_stable(a->stable);
    int err = NFS4_FS(&c->cur, write, &c->cur.fh, a->offset, a->data.val, a->data.len, how, &written, &post);
    if (err)
        return r->status = nfs4_errno(err);
    r->resok4.count = (count4)written;
    r->resok4.committed = a->stable <= FILE_SYNC4 ? a->stable : FILE_SYNC4;
    memcpy(r->resok4.writeverf, c->srv->write_verf, sizeof(r->resok4.writeverf));
    return r->status = NFS4_OK;
}

NFS4_OP(commit)
{
    const COMMIT4args *a = &arg->opcommit;
    COMMIT4res *r = &res->opcommit;
    struct stat st;

    nfsstat4 s = nfs4_io_begin(c, NULL, false, 0, &st);
    if (s != NFS4_OK)
        return r->status = s;
    if (a->offset > (uint64_t)INT64_MAX || a->count > (uint64_t)INT64_MAX - a->offset)
        return r->status = NFS4ERR_INVAL;
    if (!nfs4_async(&c->cur)) {
        int err = NFS4_FS(&c->cur, commit, &c->cur.fh, a->offset, a->count);
        if (err)
            return r->status = nfs4_errno(err);
    }
    memcpy(r->resok4.writeverf, c->srv->write_verf, sizeof(r->resok4.writeverf));
    return r->status = NFS4_OK;
}

/*
 * SEEK: the next data or hole at or after sa_offset. An offset at or past the end of
 * the file is NXIO (RFC 7862 15.11.3). So is SEEK_DATA with only a hole after the
 * offset: the RFC would answer OK with sr_eof, but clients turn SEEK's answer into
 * lseek(2)'s, where that case is ENXIO, and knfsd answers NXIO too.
 */
NFS4_OP(seek)
{
    const SEEK4args *a = &arg->opseek;
    SEEK4res *r = &res->opseek;
    struct stat st;

    nfsstat4 s = nfs4_io_begin(c, &a->sa_stateid, false, FS_MAY_READ, &st);
    if (s != NFS4_OK)
        return r->sa_status = s;
    if (!c->cur.ex->ops->seek)
        return r->sa_status = NFS4ERR_NOTSUPP;
    int whence;
    switch (a->sa_what) {
    case NFS4_CONTENT_DATA:
        whence = SEEK_DATA;
        break;
    case NFS4_CONTENT_HOLE:
        whence = SEEK_HOLE;
        break;
    default:
        return r->sa_status = NFS4ERR_UNION_NOTSUPP;
    }
    uint64_t pos = 0;
    int err = NFS4_FS(&c->cur, seek, &c->cur.fh, a->sa_offset, whence, &pos);
    if (err)
        return r->sa_status = err == -ENXIO ? NFS4ERR_NXIO : nfs4_errno(err);
    r->resok4.sr_offset = pos;
    /* The attributes are from before the seek; a file growing meanwhile only makes
     * eof false where it could have been true, which costs the client one more SEEK. */
    r->resok4.sr_eof = st.st_size >= 0 && pos >= (uint64_t)st.st_size;
    return r->sa_status = NFS4_OK;
}

/* ALLOCATE and DEALLOCATE: fallocate(2) on the backing file. */
static nfsstat4 nfs4_allocate(struct nfs4_compound *c, const stateid4 *sid, uint64_t offset, uint64_t length,
                              bool punch)
{
    struct stat st;
    nfsstat4 s = nfs4_io_begin(c, sid, true, FS_MAY_WRITE, &st);
    if (s != NFS4_OK)
        return s;
    if (!c->cur.ex->ops->allocate)
        return NFS4ERR_NOTSUPP;
    if (length == 0)
        return NFS4ERR_INVAL;
    if (offset > (uint64_t)INT64_MAX || length > (uint64_t)INT64_MAX - offset)
        return NFS4ERR_FBIG;
    struct stat post;
    return nfs4_errno(NFS4_FS(&c->cur, allocate, &c->cur.fh, offset, length, punch, &post));
}

NFS4_OP(allocate)
{
    const ALLOCATE4args *a = &arg->opallocate;
    return res->opallocate.ar_status = nfs4_allocate(c, &a->aa_stateid, a->aa_offset, a->aa_length, false);
}

NFS4_OP(deallocate)
{
    const DEALLOCATE4args *a = &arg->opdeallocate;
    return res->opdeallocate.dr_status = nfs4_allocate(c, &a->da_stateid, a->da_offset, a->da_length, true);
}
