/*
 * Per-thread filesystem identity (see posix_cred.h).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fs/posix_cred.h"

struct thread_cred {
    bool known; /* false: the thread still has the process's identity */
    uint32_t uid, gid;
    uint32_t ngroups;
    gid_t groups[FS_MAX_GROUPS];
};

static __thread struct thread_cred cur;

/* The process's own identity, which fs_posix_thread_reset puts back. */
static pthread_once_t proc_once = PTHREAD_ONCE_INIT;
static uid_t proc_uid;
static gid_t proc_gid;
static int proc_ngroups;
static gid_t proc_groups[64];

static void proc_identity(void)
{
    proc_uid = geteuid();
    proc_gid = getegid();
    proc_ngroups = getgroups(64, proc_groups);
    if (proc_ngroups < 0)
        proc_ngroups = 0;
}

/* setfsuid/setfsgid report failure only by not changing; read the value back. */
static int set_fsuid(uint32_t uid)
{
    syscall(SYS_setfsuid, (uid_t)uid);
    return (uint32_t)syscall(SYS_setfsuid, (uid_t)-1) == uid ? 0 : -EPERM;
}

static int set_fsgid(uint32_t gid)
{
    syscall(SYS_setfsgid, (gid_t)gid);
    return (uint32_t)syscall(SYS_setfsgid, (gid_t)-1) == gid ? 0 : -EPERM;
}

static void load_process_identity(void)
{
    if (cur.known)
        return;
    pthread_once(&proc_once, proc_identity);
    cur.uid = (uint32_t)syscall(SYS_setfsuid, (uid_t)-1);
    cur.gid = (uint32_t)syscall(SYS_setfsgid, (gid_t)-1);
    /* the process's group list may be longer than ours: mark it unknown */
    cur.ngroups = UINT32_MAX;
    cur.known = true;
}

int px_cred_enter(const struct fs_cred *c)
{
    if (c->uid == UINT32_MAX || c->gid == UINT32_MAX)
        return -EINVAL;
    load_process_identity();
    uint32_t ng = c->ngroups < FS_MAX_GROUPS ? c->ngroups : FS_MAX_GROUPS;
    int err;
    /* CAP_SETUID/CAP_SETGID are not filesystem capabilities: a thread keeps them
     * whatever its fsuid, so the order of the three changes does not matter. */
    if (ng != cur.ngroups || memcmp(cur.groups, c->groups, ng * sizeof(gid_t)) != 0) {
        gid_t groups[FS_MAX_GROUPS];
        for (uint32_t i = 0; i < ng; i++)
            groups[i] = c->groups[i];
        if (syscall(SYS_setgroups, (size_t)ng, groups) < 0) {
            cur.ngroups = UINT32_MAX;
            return -errno;
        }
        memcpy(cur.groups, groups, ng * sizeof(gid_t));
        cur.ngroups = ng;
    }
    if (c->gid != cur.gid) {
        err = set_fsgid(c->gid);
        cur.gid = (uint32_t)syscall(SYS_setfsgid, (gid_t)-1);
        if (err)
            return err;
    }
    if (c->uid != cur.uid) {
        err = set_fsuid(c->uid);
        cur.uid = (uint32_t)syscall(SYS_setfsuid, (uid_t)-1);
        if (err)
            return err;
    }
    return 0;
}

int px_cred_root(void)
{
    load_process_identity();
    if (cur.uid == 0)
        return 0;
    int err = set_fsuid(0);
    cur.uid = (uint32_t)syscall(SYS_setfsuid, (uid_t)-1);
    return err;
}

/* umask: 0 untouched, 1 private and 0, 2 unshare refused, 3 private, restored */
static __thread int umask_state;
static __thread mode_t saved_umask;

void px_umask_zero(void)
{
    if (umask_state == 1 || umask_state == 2)
        return;
    if (umask_state == 0 && unshare(CLONE_FS) < 0) {
        umask_state = 2;
        return;
    }
    saved_umask = umask(0);
    umask_state = 1;
}

bool px_umask_is_zero(void)
{
    return umask_state == 1;
}

void fs_posix_thread_reset(void)
{
    if (umask_state == 1) {
        umask(saved_umask);
        umask_state = 3;
    }
    if (!cur.known)
        return;
    pthread_once(&proc_once, proc_identity);
    syscall(SYS_setfsuid, proc_uid);
    syscall(SYS_setfsgid, proc_gid);
    syscall(SYS_setgroups, (size_t)proc_ngroups, proc_groups);
    cur.known = false;
}
