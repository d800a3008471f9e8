#!/usr/bin/env python3
"""A local process on the NFS server's host that locks an exported file (fcntl/POSIX
record locks, as any program on the server would), for run-nfs4.sh's guest requests.

    hostlock.py hold FILE RESULT RELEASE DONE [TIMEOUT]
        F_SETLK write lock on the whole FILE (non-blocking), writes "locked" (or
        "error: ...") to RESULT, holds the lock until the file RELEASE exists (at most
        TIMEOUT s, default 300), unlocks, writes "unlocked" to DONE.
    hostlock.py try FILE RESULT
        F_GETLK, then a non-blocking F_SETLK write lock; writes to RESULT "EAGAIN getlk=..."
        (held elsewhere: an NFS client's lock) or "got getlk=..." (then unlocks at once).

RESULT/DONE are written to a temporary name and renamed, so the guest (polling its 9p
share) never reads half an answer. Exit status 0 when the answer was written.
"""
import errno
import fcntl
import os
import struct
import sys
import time

LOCK_TYPES = {fcntl.F_RDLCK: "RDLCK", fcntl.F_WRLCK: "WRLCK", fcntl.F_UNLCK: "UNLCK"}
FLOCK = "@hhqqi4x"  # struct flock on Linux x86_64: type, whence, start, len, pid


def answer(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.rename(tmp, path)
    print(f"hostlock: {os.path.basename(path)}: {text}", flush=True)


def getlk(fd):
    """F_GETLK for a whole-file write lock -> "WRLCK pid=N" or "UNLCK"."""
    res = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    ltype, _, start, length, pid = struct.unpack(FLOCK, res)
    name = LOCK_TYPES.get(ltype, str(ltype))
    return name if ltype == fcntl.F_UNLCK else f"{name} start={start} len={length} pid={pid}"


def try_lock(fd):
    """True: locked; False: held elsewhere."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise


def main(argv):
    if len(argv) >= 5 and argv[1] == "hold":
        path, result, release, done = argv[2:6]
        timeout = float(argv[6]) if len(argv) > 6 else 300
        try:
            fd = os.open(path, os.O_RDWR)
            got = try_lock(fd)
        except OSError as e:
            answer(result, f"error: {path}: {e}")
            return 1
        if not got:
            answer(result, f"error: {path} is locked by someone else ({getlk(fd)})")
            return 1
        answer(result, "locked")
        deadline = time.time() + timeout
        while not os.path.exists(release) and time.time() < deadline:
            time.sleep(0.1)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        os.close(fd)
        answer(done, "unlocked" if os.path.exists(release) else f"unlocked after the {timeout} s timeout")
        return 0
    if len(argv) == 4 and argv[1] == "try":
        path, result = argv[2:4]
        try:
            fd = os.open(path, os.O_RDWR)
            seen = getlk(fd)
            got = try_lock(fd)
            if got:
                fcntl.lockf(fd, fcntl.LOCK_UN)
            os.close(fd)
        except OSError as e:
            answer(result, f"error: {path}: {e}")
            return 1
        answer(result, f"{'got' if got else 'EAGAIN'} getlk={seen}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
