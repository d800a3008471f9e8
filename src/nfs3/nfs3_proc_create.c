/*
 * The procedures that create objects: CREATE, MKDIR, SYMLINK, MKNOD (RFC 1813 sections
 * 3.3.8 - 3.3.11). They share one shape: a directory and a name in, the new object's
 * handle and attributes plus the directory's wcc data out.
 */
#include <errno.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "nfs3/nfs3_proc.h"

/* Default modes when the client sends none (they all send one in practice). */
#define NFS3_DEFAULT_FILE_MODE 0644
#define NFS3_DEFAULT_DIR_MODE 0755
/* A file made by an EXCLUSIVE CREATE: the client sets the real attributes next. */
#define NFS3_EXCLUSIVE_FILE_MODE 0600

struct nfs3_create_ctx {
    struct nfs3_dir_change d;
    struct nfs3_obj *dir; /* &d.dir */
    struct fs_fh fh;      /* the new object */
    struct stat st;       /* and its attributes */
    uint8_t fhbuf[FH_WIRE_MAX];
};

static nfsstat3 nfs3_create_begin(struct rpc_call *call, const diropargs3 *where, struct nfs3_create_ctx *c)
{
    memset(c, 0, sizeof(*c));
    c->dir = &c->d.dir;
    nfsstat3 status = nfs3_dir_change_begin(call, &where->dir, NULL, &c->d);
    if (status != NFS3_OK)
        return status;
    return nfs3_check_name(&where->name, NFS3_NAME_CREATE);
}

/* Fill what the four results have in common (their resok / resfail arms alias). */
static void nfs3_create_result(struct nfs3_create_ctx *c, nfsstat3 status, post_op_fh3 *obj,
                               post_op_attr *obj_attributes, wcc_data *ok_wcc, wcc_data *fail_wcc)
{
    if (status == NFS3_OK) {
        nfs3_post_op_fh(c->dir, &c->fh, c->fhbuf, obj);
        nfs3_post_op_attr_fh(c->dir, &c->fh, &c->st, obj_attributes);
        nfs3_dir_change_wcc(&c->d, ok_wcc);
    } else {
        nfs3_dir_change_wcc(&c->d, fail_wcc);
    }
}

static mode_t nfs3_create_mode(const sattr3 *attrs, mode_t dflt)
{
    return attrs->mode.set_it ? (mode_t)(attrs->mode.mode & 07777) : dflt;
}

/*
 * Apply the attributes the backend's create call did not take (everything but the
 * mode, and but `drop`). Owner and group only for root, as Linux knfsd: a new object
 * belongs to its creator. If this fails the object stays, as with knfsd.
 */
static nfsstat3 nfs3_create_setattr(struct nfs3_create_ctx *c, const sattr3 *attrs, unsigned drop)
{
    struct fs_setattr sa;

    nfs3_sattr_to_fs(attrs, &sa);
    sa.mask &= ~(FS_SET_MODE | drop);
    if (c->dir->cred.uid != 0)
        sa.mask &= ~(unsigned)(FS_SET_UID | FS_SET_GID);
    if (sa.mask == 0)
        return NFS3_OK;
    return nfs3_status(NFS3_FS(c->dir, setattr, &c->dir->cred, &c->fh, &sa, &c->st));
}

/* A size of 0 on a file just created is already true. */
static unsigned nfs3_new_file_drop(const sattr3 *attrs)
{
    return attrs->size.set_it && attrs->size.size == 0 ? FS_SET_SIZE : 0;
}

static int nfs3_create_excl(struct nfs3_create_ctx *c, const filename3 *name, mode_t mode)
{
    return NFS3_FS(c->dir, create, &c->dir->cred, &c->dir->fh, name->val, name->len, mode, true, &c->fh,
                   &c->st);
}

static int nfs3_create_lookup(struct nfs3_create_ctx *c, const filename3 *name)
{
    return NFS3_FS(c->dir, lookup, &c->dir->cred, &c->dir->fh, name->val, name->len, &c->fh, &c->st);
}

/*
 * UNCHECKED: create the file, or use the regular file that is there. Of the attributes
 * only the size then applies (open with O_TRUNC), as Linux knfsd does. The exclusive
 * create tells the two cases apart; if the file vanishes before we find it, try again.
 */
static nfsstat3 nfs3_create_unchecked(struct nfs3_create_ctx *c, const filename3 *name, const sattr3 *attrs)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int err = nfs3_create_excl(c, name, nfs3_create_mode(attrs, NFS3_DEFAULT_FILE_MODE));
        if (err == 0)
            return nfs3_create_setattr(c, attrs, nfs3_new_file_drop(attrs));
        if (err != -EEXIST)
            return nfs3_status(err);
        err = nfs3_create_lookup(c, name);
        if (err == -ENOENT)
            continue;
        if (err)
            return nfs3_status(err);
        if (!S_ISREG(c->st.st_mode))
            return NFS3ERR_EXIST;
        /* a truncation changes the file: recall its delegations first */
        if (attrs->size.set_it && nfs3_deleg_break(c->dir, &c->fh, true) != NFS3_OK)
            return NFS3ERR_JUKEBOX;
        return nfs3_create_setattr(c, attrs, ~(unsigned)FS_SET_SIZE);
    }
    return NFS3ERR_JUKEBOX; /* the name keeps flipping between existing and not */
}

static nfsstat3 nfs3_create_guarded(struct nfs3_create_ctx *c, const filename3 *name, const sattr3 *attrs)
{
    int err = nfs3_create_excl(c, name, nfs3_create_mode(attrs, NFS3_DEFAULT_FILE_MODE));
    if (err)
        return nfs3_status(err);
    return nfs3_create_setattr(c, attrs, nfs3_new_file_drop(attrs));
}

/*
 * EXCLUSIVE: the verifier is kept in the new file's mtime and atime seconds (high bits
 * cleared, as knfsd: some filesystems and clients mishandle negative times), so that a
 * retransmitted CREATE finds the file it made and succeeds, while a CREATE with another
 * verifier gets NFS3ERR_EXIST. The client replaces the times with a SETATTR afterwards.
 */
static nfsstat3 nfs3_create_exclusive(struct nfs3_create_ctx *c, const filename3 *name, const uint8_t verf[8])
{
    time_t v_mtime = xdr_get_be32(verf) & 0x7fffffff;
    time_t v_atime = xdr_get_be32(verf + 4) & 0x7fffffff;

    int err = nfs3_create_excl(c, name, NFS3_EXCLUSIVE_FILE_MODE);
    if (err == -EEXIST) {
        err = nfs3_create_lookup(c, name);
        if (err)
            return nfs3_status(err);
        bool ours = S_ISREG(c->st.st_mode) && c->st.st_mtim.tv_sec == v_mtime && c->st.st_atim.tv_sec == v_atime;
        return ours ? NFS3_OK : NFS3ERR_EXIST;
    }
    if (err)
        return nfs3_status(err);
    struct fs_setattr sa = {
        .mask = FS_SET_ATIME | FS_SET_MTIME,
        .atime = {.tv_sec = v_atime},
        .mtime = {.tv_sec = v_mtime},
    };
    return nfs3_status(NFS3_FS(c->dir, setattr, &c->dir->cred, &c->fh, &sa, &c->st));
}

enum rpc_accept_status nfs3_proc_create(struct rpc_call *call)
{
    CREATE3args args;
    CREATE3res res;
    struct nfs3_create_ctx c;

    if (!xdr_decode_CREATE3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_create_begin(call, &args.where, &c);
    if (res.status == NFS3_OK) {
        switch (args.how.mode) {
        case UNCHECKED:
            res.status = nfs3_create_unchecked(&c, &args.where.name, &args.how.obj_attributes);
            break;
        case GUARDED:
            res.status = nfs3_create_guarded(&c, &args.where.name, &args.how.obj_attributes);
            break;
        case EXCLUSIVE:
            res.status = nfs3_create_exclusive(&c, &args.where.name, args.how.verf);
            break;
        default:
            return RPC_GARBAGE_ARGS;
        }
    }
    nfs3_create_result(&c, res.status, &res.resok.obj, &res.resok.obj_attributes, &res.resok.dir_wcc,
                       &res.resfail.dir_wcc);
    return nfs3_reply(xdr_encode_CREATE3res(&call->res, &res));
}

enum rpc_accept_status nfs3_proc_mkdir(struct rpc_call *call)
{
    MKDIR3args args;
    MKDIR3res res;
    struct nfs3_create_ctx c;

    if (!xdr_decode_MKDIR3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_create_begin(call, &args.where, &c);
    if (res.status == NFS3_OK)
        res.status = nfs3_status(NFS3_FS(c.dir, mkdir, &c.dir->cred, &c.dir->fh, args.where.name.val,
                                         args.where.name.len,
                                         nfs3_create_mode(&args.attributes, NFS3_DEFAULT_DIR_MODE), &c.fh,
                                         &c.st));
    if (res.status == NFS3_OK)
        res.status = nfs3_create_setattr(&c, &args.attributes, FS_SET_SIZE);
    nfs3_create_result(&c, res.status, &res.resok.obj, &res.resok.obj_attributes, &res.resok.dir_wcc,
                       &res.resfail.dir_wcc);
    return nfs3_reply(xdr_encode_MKDIR3res(&call->res, &res));
}

/* A symlink's target: what symlink(2) would accept. */
static nfsstat3 nfs3_check_target(const nfspath3 *target)
{
    if (target->len == 0)
        return NFS3ERR_NOENT;
    if (target->len >= NFS3_PATH_MAX)
        return NFS3ERR_NAMETOOLONG;
    if (memchr(target->val, '\0', target->len))
        return NFS3ERR_INVAL;
    return NFS3_OK;
}

enum rpc_accept_status nfs3_proc_symlink(struct rpc_call *call)
{
    SYMLINK3args args;
    SYMLINK3res res;
    struct nfs3_create_ctx c;

    if (!xdr_decode_SYMLINK3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    const nfspath3 *target = &args.symlink.symlink_data;
    res.status = nfs3_create_begin(call, &args.where, &c);
    if (res.status == NFS3_OK)
        res.status = nfs3_check_target(target);
    if (res.status == NFS3_OK)
        res.status = nfs3_status(NFS3_FS(c.dir, symlink, &c.dir->cred, &c.dir->fh, args.where.name.val,
                                         args.where.name.len, target->val, target->len, &c.fh, &c.st));
    /* A symlink's mode means nothing on Linux and it has no size; owner and times apply. */
    if (res.status == NFS3_OK)
        res.status = nfs3_create_setattr(&c, &args.symlink.symlink_attributes, FS_SET_SIZE);
    nfs3_create_result(&c, res.status, &res.resok.obj, &res.resok.obj_attributes, &res.resok.dir_wcc,
                       &res.resfail.dir_wcc);
    return nfs3_reply(xdr_encode_SYMLINK3res(&call->res, &res));
}

/* The file type, attributes and device number MKNOD asks for; NFS3ERR_BADTYPE for
 * types MKNOD does not make (regular files, directories, symlinks). */
static nfsstat3 nfs3_mknod_what(const mknoddata3 *what, mode_t *type, const sattr3 **attrs, dev_t *rdev)
{
    *rdev = 0;
    switch (what->type) {
    case NF3CHR:
    case NF3BLK:
        *type = what->type == NF3CHR ? S_IFCHR : S_IFBLK;
        *attrs = &what->device.dev_attributes;
        *rdev = makedev(what->device.spec.specdata1, what->device.spec.specdata2);
        return NFS3_OK;
    case NF3SOCK:
    case NF3FIFO:
        *type = what->type == NF3SOCK ? S_IFSOCK : S_IFIFO;
        *attrs = &what->pipe_attributes;
        return NFS3_OK;
    default:
        return NFS3ERR_BADTYPE;
    }
}

enum rpc_accept_status nfs3_proc_mknod(struct rpc_call *call)
{
    MKNOD3args args;
    MKNOD3res res;
    struct nfs3_create_ctx c;
    mode_t type = 0;
    const sattr3 *attrs = NULL;
    dev_t rdev = 0;

    if (!xdr_decode_MKNOD3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_create_begin(call, &args.where, &c);
    if (res.status == NFS3_OK)
        res.status = nfs3_mknod_what(&args.what, &type, &attrs, &rdev);
    if (res.status == NFS3_OK)
        res.status = nfs3_status(NFS3_FS(c.dir, mknod, &c.dir->cred, &c.dir->fh, args.where.name.val,
                                         args.where.name.len,
                                         type | nfs3_create_mode(attrs, NFS3_DEFAULT_FILE_MODE), rdev,
                                         &c.fh, &c.st));
    if (res.status == NFS3_OK)
        res.status = nfs3_create_setattr(&c, attrs, FS_SET_SIZE);
    nfs3_create_result(&c, res.status, &res.resok.obj, &res.resok.obj_attributes, &res.resok.dir_wcc,
                       &res.resfail.dir_wcc);
    return nfs3_reply(xdr_encode_MKNOD3res(&call->res, &res));
}
