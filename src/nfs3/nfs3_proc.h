/*
 * Internal interface of the NFSv3 and MOUNT handlers: the per-call object context
 * (filehandle -> export, client rule, squashed credential), attribute conversion, name
 * checks and the errno table. Not for use outside src/nfs3/.
 */
#ifndef PEERNFS_NFS3_PROC_H
#define PEERNFS_NFS3_PROC_H

#include <stdbool.h>
#include <sys/stat.h>

#include "fs/export.h"
#include "fs/fh.h"
#include "fs/fs.h"
#include "nfs3/nfs3.h"
#include "rpc/svc.h"
#include "xdr/nfs3_xdr.h"

/* Transfer sizes announced by FSINFO. READ replies are capped at rtmax; the reply
 * buffer rpc/ gives a handler holds at least 1 MiB + 4 KiB. */
#define NFS3_RTMAX (1024u * 1024u)
#define NFS3_WTMAX (1024u * 1024u)
#define NFS3_DTPREF (64u * 1024u)
#define NFS3_NAME_MAX 255u
/* Longest symlink target READLINK returns and SYMLINK accepts (Linux PATH_MAX). */
#define NFS3_PATH_MAX 4096u

/* An object named by a filehandle, with the access the caller has to it. */
struct nfs3_obj {
    struct nfs_service *svc;
    struct export *ex;
    const struct export_rule *rule;
    struct fs_cred cred; /* the caller's credential after squashing */
    struct fs_fh fh;     /* the backend handle */
    /* FSINFO let through with AUTH_SYS/AUTH_NONE although the rule's sec= list lacks it
     * (RFC 2623 2.3.2): the reply must carry no attributes */
    bool weak_flavor;
};

/* Call a backend operation on the object's export: NFS3_FS(obj, getattr, &fh, &st). */
#define NFS3_FS(obj, op, ...) ((obj)->ex->ops->op((obj)->ex->fs, __VA_ARGS__))

/* ---- nfs3_status.c ---- */

/* 0 -> NFS3_OK, -errno (or errno) -> its NFSv3 status. */
nfsstat3 nfs3_status(int err);

/* ---- nfs3_call.c ---- */

/* Unwrap the filehandle and check the caller against the export's rules.
 * NFS3ERR_BADHANDLE (malformed or forged), NFS3ERR_STALE (unknown export; a removed
 * object is found later by the backend), NFS3ERR_ACCES (no rule for this client, or a
 * flavor not in its sec= list), NFS3ERR_PERM (an unreserved source port on a `secure`
 * export). */
nfsstat3 nfs3_resolve(struct rpc_call *call, const nfs_fh3 *wire, struct nfs3_obj *obj);
/* Same, for the second handle of LINK and RENAME: NFS3ERR_XDEV across exports. */
nfsstat3 nfs3_resolve_peer(struct rpc_call *call, const nfs_fh3 *wire, const struct nfs3_obj *first,
                           struct nfs3_obj *obj);
/* Before every procedure but NULL (nfs3_program.c): RPC_AUTH_TOOWEAK when the call's
 * flavor is not in the sec= list of the client's rule for the export of the handle the
 * procedure works on (FSINFO excepted, see nfs3_call.c), else RPC_SUCCESS. */
enum rpc_accept_status nfs3_sec_gate(struct rpc_call *call);
/* `secure` (the default): only clients on a reserved port (< 1024), which only root
 * can bind, are served; `insecure` lifts that. */
bool nfs3_port_allowed(const struct rpc_call *call, const struct export_rule *rule);
/* The caller's credential after the rule's squash options (AUTH_NONE = anonymous). */
void nfs3_squash_cred(const struct rpc_call *call, const struct export_rule *rule, struct fs_cred *out);

static inline bool nfs3_read_only(const struct nfs3_obj *obj)
{
    return !(obj->rule->opts & EXPORT_RW);
}

/* `async` export: stable writes and COMMIT do not wait for the disk (the admin's
 * choice, as with knfsd; the default is sync). */
static inline bool nfs3_async(const struct nfs3_obj *obj)
{
    return obj->rule->opts & EXPORT_ASYNC;
}

/* A directory a procedure changes, with what its wcc data needs. */
struct nfs3_dir_change {
    struct nfs3_obj dir;
    bool resolved; /* dir is valid */
    bool have_pre; /* pre holds its attributes from before the change */
    struct stat pre;
};

/* Resolve the directory (in first's export when first is not NULL), take its pre-op
 * attributes and refuse read-only exports. */
nfsstat3 nfs3_dir_change_begin(struct rpc_call *call, const nfs_fh3 *fh, const struct nfs3_obj *first,
                               struct nfs3_dir_change *d);
/* The directory's wcc data now (nothing when it was never resolved). */
void nfs3_dir_change_wcc(const struct nfs3_dir_change *d, wcc_data *w);

/* What a handler is about to do with a name, which decides how "." and ".." are
 * treated: looked up, refused as existing, or refused as invalid. */
enum nfs3_name_use { NFS3_NAME_LOOKUP, NFS3_NAME_CREATE, NFS3_NAME_REMOVE };
nfsstat3 nfs3_check_name(const filename3 *name, enum nfs3_name_use use);

/*
 * NFSv4 delegations: an NFSv3 access to a file that another client holds delegated
 * (a write delegation: any access; a read delegation: a change) starts the recall and
 * gets NFS3ERR_JUKEBOX until the holder returned it. RFC 1813 defines JUKEBOX as "the
 * request could not be completed in a timely fashion: retry later" (the Linux client
 * waits 5 s), and knfsd answers a conflicting delegation with it too.
 */
static inline nfsstat3 nfs3_deleg_break(const struct nfs3_obj *obj, const struct fs_fh *fh, bool write)
{
    return nfs_deleg_break(obj->svc, obj->ex, fh, write) ? NFS3ERR_JUKEBOX : NFS3_OK;
}
/* Same before the object `name` in `dir` is removed or renamed over (REMOVE, RENAME):
 * the state layer knows files by their handle, so the name is looked up, but only
 * when some delegation exists at all. */
nfsstat3 nfs3_deleg_break_name(const struct nfs3_obj *dir, const filename3 *name);

/* Encoding results: true -> RPC_SUCCESS, false (did not fit) -> RPC_SYSTEM_ERR. */
enum rpc_accept_status nfs3_reply(bool encoded);

/* ---- nfs3_attr.c ---- */

int nfs3_getattr(const struct nfs3_obj *obj, struct stat *st);
void nfs3_fattr(const struct nfs3_obj *obj, const struct stat *st, fattr3 *fa);
/* Attributes from st, or (st NULL) fetched now; absent when that fails. */
void nfs3_post_op_attr(const struct nfs3_obj *obj, const struct stat *st, post_op_attr *pa);
/* Same, for another object of the same export. */
void nfs3_post_op_attr_fh(const struct nfs3_obj *obj, const struct fs_fh *fh, const struct stat *st,
                          post_op_attr *pa);
/* Weak cache consistency data: pre-op attributes from pre (NULL: none), post-op from
 * post (NULL: fetched now). */
void nfs3_wcc(const struct nfs3_obj *obj, const struct stat *pre, const struct stat *post, wcc_data *w);
/* A wire handle for fh in obj's export; `buf` backs the result's opaque data. */
void nfs3_wrap_fh(const struct nfs3_obj *obj, const struct fs_fh *fh, uint8_t buf[FH_WIRE_MAX],
                  nfs_fh3 *out);
void nfs3_post_op_fh(const struct nfs3_obj *obj, const struct fs_fh *fh, uint8_t buf[FH_WIRE_MAX],
                     post_op_fh3 *out);
/* sattr3 -> fs_setattr (mask 0 when nothing is to be set). */
void nfs3_sattr_to_fs(const sattr3 *sa, struct fs_setattr *out);
nfstime3 nfs3_time(struct timespec ts);

/* ---- mount.c ---- */

int mount_list_init(struct mount_list *ml);
void mount_list_fini(struct mount_list *ml);

/* ---- handlers ---- */

enum rpc_accept_status nfs3_proc_null(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_getattr(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_setattr(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_lookup(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_access(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_readlink(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_read(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_write(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_create(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_mkdir(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_symlink(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_mknod(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_remove(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_rmdir(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_rename(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_link(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_readdir(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_readdirplus(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_fsstat(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_fsinfo(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_pathconf(struct rpc_call *call);
enum rpc_accept_status nfs3_proc_commit(struct rpc_call *call);

#endif
