/*
 * Attributes: fattr3 and wcc data from struct stat, sattr3 to fs_setattr, and wire
 * handles for objects a procedure returns.
 */
#include <string.h>
#include <sys/sysmacros.h>

#include "nfs3/nfs3_proc.h"

int nfs3_getattr(const struct nfs3_obj *obj, struct stat *st)
{
    return NFS3_FS(obj, getattr, &obj->fh, st);
}

static ftype3 nfs3_ftype(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR:
        return NF3DIR;
    case S_IFBLK:
        return NF3BLK;
    case S_IFCHR:
        return NF3CHR;
    case S_IFLNK:
        return NF3LNK;
    case S_IFSOCK:
        return NF3SOCK;
    case S_IFIFO:
        return NF3FIFO;
    default:
        return NF3REG;
    }
}

nfstime3 nfs3_time(struct timespec ts)
{
    /* nfstime3 seconds are unsigned 32-bit: times before 1970 wrap, as with knfsd. */
    nfstime3 t = {.seconds = (uint32_t)ts.tv_sec, .nseconds = (uint32_t)ts.tv_nsec};
    return t;
}

/*
 * fsid is the export id: stable across restarts and distinct per export, so a client
 * never mistakes two exports for one filesystem. fileid is the inode number.
 */
void nfs3_fattr(const struct nfs3_obj *obj, const struct stat *st, fattr3 *fa)
{
    memset(fa, 0, sizeof(*fa));
    fa->type = nfs3_ftype(st->st_mode);
    fa->mode = st->st_mode & 07777;
    fa->nlink = (uint32_t)st->st_nlink;
    fa->uid = st->st_uid;
    fa->gid = st->st_gid;
    fa->size = (uint64_t)st->st_size;
    fa->used = (uint64_t)st->st_blocks * 512u;
    fa->rdev.specdata1 = major(st->st_rdev);
    fa->rdev.specdata2 = minor(st->st_rdev);
    fa->fsid = obj->ex->id;
    fa->fileid = st->st_ino;
    fa->atime = nfs3_time(st->st_atim);
    fa->mtime = nfs3_time(st->st_mtim);
    fa->ctime = nfs3_time(st->st_ctim);
}

void nfs3_post_op_attr_fh(const struct nfs3_obj *obj, const struct fs_fh *fh, const struct stat *st,
                          post_op_attr *pa)
{
    struct stat now;

    if (!st) {
        if (NFS3_FS(obj, getattr, fh, &now) != 0) {
            pa->attributes_follow = false;
            return;
        }
        st = &now;
    }
    pa->attributes_follow = true;
    nfs3_fattr(obj, st, &pa->attributes);
}

void nfs3_post_op_attr(const struct nfs3_obj *obj, const struct stat *st, post_op_attr *pa)
{
    nfs3_post_op_attr_fh(obj, &obj->fh, st, pa);
}

void nfs3_wcc(const struct nfs3_obj *obj, const struct stat *pre, const struct stat *post, wcc_data *w)
{
    w->before.attributes_follow = pre != NULL;
    if (pre) {
        w->before.attributes.size = (uint64_t)pre->st_size;
        w->before.attributes.mtime = nfs3_time(pre->st_mtim);
        w->before.attributes.ctime = nfs3_time(pre->st_ctim);
    }
    nfs3_post_op_attr(obj, post, &w->after);
}

void nfs3_wrap_fh(const struct nfs3_obj *obj, const struct fs_fh *fh, uint8_t buf[FH_WIRE_MAX],
                  nfs_fh3 *out)
{
    out->data.len = fh_wrap(&obj->svc->fh_key, obj->ex->id, fh, buf);
    out->data.val = buf;
}

void nfs3_post_op_fh(const struct nfs3_obj *obj, const struct fs_fh *fh, uint8_t buf[FH_WIRE_MAX],
                     post_op_fh3 *out)
{
    out->handle_follows = true;
    nfs3_wrap_fh(obj, fh, buf, &out->handle);
}

static struct timespec nfs3_timespec(nfstime3 t)
{
    struct timespec ts = {.tv_sec = t.seconds, .tv_nsec = t.nseconds};
    return ts;
}

void nfs3_sattr_to_fs(const sattr3 *sa, struct fs_setattr *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->mode.set_it) {
        out->mask |= FS_SET_MODE;
        out->mode = sa->mode.mode & 07777;
    }
    if (sa->uid.set_it) {
        out->mask |= FS_SET_UID;
        out->uid = sa->uid.uid;
    }
    if (sa->gid.set_it) {
        out->mask |= FS_SET_GID;
        out->gid = sa->gid.gid;
    }
    if (sa->size.set_it) {
        out->mask |= FS_SET_SIZE;
        out->size = sa->size.size;
    }
    if (sa->atime.set_it == SET_TO_SERVER_TIME) {
        out->mask |= FS_SET_ATIME_NOW;
    } else if (sa->atime.set_it == SET_TO_CLIENT_TIME) {
        out->mask |= FS_SET_ATIME;
        out->atime = nfs3_timespec(sa->atime.atime);
    }
    if (sa->mtime.set_it == SET_TO_SERVER_TIME) {
        out->mask |= FS_SET_MTIME_NOW;
    } else if (sa->mtime.set_it == SET_TO_CLIENT_TIME) {
        out->mask |= FS_SET_MTIME;
        out->mtime = nfs3_timespec(sa->mtime.mtime);
    }
}
