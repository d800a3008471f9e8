#!/usr/bin/env python3
"""Delegation recovery after a CLIENT restart on the wire (RFC 7530 10.2.1, 16.16, 16.8;
RFC 8881 10.2.1, 18.16, 18.5): OPEN with CLAIM_DELEGATE_PREV / CLAIM_DELEG_PREV_FH and
DELEGPURGE against a real peernfsd.

A raw client gets a delegation, "reboots" (same owner id, new verifier: 4.0
SETCLIENTID + SETCLIENTID_CONFIRM, 4.1 EXCHANGE_ID + CREATE_SESSION) and reclaims it: the
reply carries a delegation of the same type with a new stateid, which another client's
conflicting OPEN then recalls like any other. When another client opens the file for
write before the reclaim, that open is not delayed (no recall: the delegation awaiting
recovery is simply discarded) and the reclaim gets NFS4ERR_RECLAIM_BAD; so does a
reclaim after DELEGPURGE. The 4.0 client runs its own callback service (CB_NULL probe,
CB_RECALL) on a loopback port.

    test_nfs4_delegprev.py --peernfsd build/bin/peernfsd
"""
import os
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcwire as w  # noqa: E402
from peernfsd_proc import Peernfsd, run_unittests  # noqa: E402
from test_deleg_v3 import (  # noqa: E402
    CB_PROG, FANOTIFY, NFS4_OK, NFS4ERR_DELAY, OP_GETFH, OP_OPEN, OP_PUTFH, OP_PUTROOTFH, OP_LOOKUP,
    OPEN_DELEGATE_NONE_EXT, OPEN_DELEGATE_READ, OPEN_DELEGATE_WRITE, SHARE_ACCESS_READ, SHARE_ACCESS_WRITE,
    WANT_NO_DELEG, WANT_READ_DELEG, WANT_WRITE_DELEG, WND4_CONTENTION, WND4_RESOURCE, Nfs41Client, Xdr, u32, u64)

BINARY = None
NFS_PROG = 100003
OP_DELEGPURGE, OP_OPEN_CONFIRM = 7, 20
OP_SETCLIENTID, OP_SETCLIENTID_CONFIRM, OP_EXCHANGE_ID = 35, 36, 42
CB_OP_RECALL = 4
CLAIM_NULL, CLAIM_DELEGATE_PREV, CLAIM_DELEG_PREV_FH = 0, 3, 6
NFS4ERR_INVAL, NFS4ERR_STALE_CLIENTID, NFS4ERR_RECLAIM_BAD = 22, 10022, 10034
OPEN4_RESULT_CONFIRM = 0x2
SHARE_ACCESS_BOTH = 3

# write delegations need the open watcher (fanotify, root); read ones do not
DELEG = OPEN_DELEGATE_WRITE if FANOTIFY else OPEN_DELEGATE_READ
DELEG_ACCESS = SHARE_ACCESS_BOTH if FANOTIFY else SHARE_ACCESS_READ
DELEG_WANT = WANT_WRITE_DELEG if FANOTIFY else WANT_READ_DELEG


def parse_open_ok(x):
    """OPEN4resok -> (open stateid, rflags, delegation type, delegation stateid or None)."""
    open_sid = x.fixed(16)
    x.u32(), x.u64(), x.u64()  # change_info4
    rflags = x.u32()
    x.bitmap()  # attrset
    dtype = x.u32()
    deleg_sid = None
    if dtype in (OPEN_DELEGATE_READ, OPEN_DELEGATE_WRITE):
        deleg_sid = x.fixed(16)
        x.u32()  # recall
        if dtype == OPEN_DELEGATE_WRITE:
            if x.u32() == 1:  # NFS_LIMIT_SIZE
                x.u64()
            else:
                x.u32(), x.u32()
        x.u32(), x.u32(), x.u32(), x.opaque()  # nfsace4
    elif dtype == OPEN_DELEGATE_NONE_EXT:
        if x.u32() in (WND4_CONTENTION, WND4_RESOURCE):
            x.u32()
    return open_sid, rflags, dtype, deleg_sid


def claim_args(claim, name=None):
    if claim in (CLAIM_NULL, CLAIM_DELEGATE_PREV):
        return u32(claim) + w.opaque(name.encode())
    return u32(claim)


def open_args(seqid, access, clientid, owner, claim, name=None):
    return (u32(OP_OPEN) + u32(seqid) + u32(access) + u32(0) + u64(clientid) + w.opaque(owner) + u32(0) +
            claim_args(claim, name))


# ---- 4.1 ----

class Client41(Nfs41Client):
    """Nfs41Client with a chosen EXCHANGE_ID verifier (a new one is a client restart)."""

    def __init__(self, port, owner, verifier):
        self.verifier = verifier
        super().__init__(port, owner)

    def _exchange_id(self):
        args = u32(OP_EXCHANGE_ID) + self.verifier + w.opaque(self.owner) + u32(0) + u32(0) + u32(0)
        status, x = self._raw_compound([args])
        if status != NFS4_OK:
            raise AssertionError(f"EXCHANGE_ID: {status}")
        x.u32(), x.u32()
        return x.u64(), x.u32()

    def open_claim(self, fh, access, claim, name=None, owner=b"reclaimer"):
        """PUTFH fh + OPEN(claim) + GETFH -> (status, open sid, dtype, deleg sid, file fh)."""
        status, x = self.compound([u32(OP_PUTFH) + w.opaque(fh), open_args(0, access, 0, owner, claim, name),
                                   u32(OP_GETFH)])
        if status != NFS4_OK:
            return status, None, None, None, None
        x.u32(), x.u32()  # PUTFH
        x.u32(), x.u32()  # OPEN
        open_sid, _, dtype, deleg_sid = parse_open_ok(x)
        x.u32(), x.u32()
        return status, open_sid, dtype, deleg_sid, x.opaque()

    def delegpurge(self):
        status, _ = self.compound([u32(OP_DELEGPURGE) + u64(0xdeadbeef)])  # 4.1 ignores the clientid
        return status



# ---- 4.0 with its own callback service ----

class CallbackService:
    """Answers the server's 4.0 callbacks on a loopback port: CB_NULL, and CB_COMPOUND
    with CB_RECALL (recorded)."""

    def __init__(self):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.nulls = 0
        self.recalls = []
        self.cond = threading.Condition()
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def uaddr(self):
        return f"127.0.0.1.{self.port >> 8}.{self.port & 0xff}"

    def close(self):
        self.stop = True
        self.ls.close()

    def _accept(self):
        while not self.stop:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    @staticmethod
    def _recv_record(s):
        def exact(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise EOFError
                buf += chunk
            return buf
        data = b""
        while True:
            (mark,) = struct.unpack(">I", exact(4))
            data += exact(mark & 0x7FFFFFFF)
            if mark & w.LAST_FRAG:
                return data

    def _serve(self, s):
        try:
            while True:
                msg = self._recv_record(s)
                x = Xdr(msg)
                xid, _mtype, _rpcvers, _prog, _vers, proc = (x.u32() for _ in range(6))
                x.u32(), x.opaque()  # credential
                x.u32(), x.opaque()  # verifier
                res = self._compound(x) if proc == 1 else b""
                with self.cond:
                    if proc == 0:
                        self.nulls += 1
                    self.cond.notify_all()
                reply = u32(xid) + u32(w.REPLY) + u32(w.MSG_ACCEPTED) + w.auth_none() + u32(w.SUCCESS) + res
                s.sendall(w.record(reply))
        except (EOFError, OSError):
            s.close()

    def _compound(self, x):
        tag = x.opaque()
        x.u32(), x.u32()  # minorversion, callback_ident
        results = []
        for _ in range(x.u32()):
            op = x.u32()
            if op != CB_OP_RECALL:
                raise AssertionError(f"unexpected 4.0 callback op {op}")
            stateid, _truncate, fh = x.fixed(16), x.u32(), x.opaque()
            with self.cond:
                self.recalls.append((stateid, fh))
            results.append(u32(op) + u32(NFS4_OK))
        return u32(NFS4_OK) + w.opaque(tag) + u32(len(results)) + b"".join(results)

    def wait(self, pred, timeout=10.0):
        with self.cond:
            return self.cond.wait_for(pred, timeout)


class Client40:
    """A raw NFSv4.0 client: SETCLIENTID (callback to a CallbackService) + CONFIRM, one
    open owner whose seqid it tracks."""

    def __init__(self, port, cbs, id_string, verifier):
        self.c = w.Conn("127.0.0.1", port, timeout=10.0)
        self.cbs = cbs
        self.xid = 0x4000
        self.seqid = 0
        self.owner = b"owner40-" + verifier.hex().encode()
        cb = u32(CB_PROG) + w.opaque(b"tcp") + w.opaque(cbs.uaddr().encode())
        status, x = self.compound([u32(OP_SETCLIENTID) + verifier + w.opaque(id_string) + cb + u32(1)])
        if status != NFS4_OK:
            raise AssertionError(f"SETCLIENTID: {status}")
        x.u32(), x.u32()
        self.clientid, confirm = x.u64(), x.fixed(8)
        status, _ = self.compound([u32(OP_SETCLIENTID_CONFIRM) + u64(self.clientid) + confirm])
        if status != NFS4_OK:
            raise AssertionError(f"SETCLIENTID_CONFIRM: {status}")

    def close(self):
        self.c.close()

    def compound(self, ops):
        self.xid += 1
        args = w.opaque(b"prev40") + u32(0) + u32(len(ops)) + b"".join(ops)
        self.c.send(w.record(w.call(self.xid, NFS_PROG, 4, 1, args)))
        r = w.parse_reply(self.c.recv_record())
        if (r["kind"], r["stat"]) != ("accepted", w.SUCCESS):
            raise AssertionError(f"COMPOUND rejected: {r}")
        x = Xdr(r["body"])
        status = x.u32()
        x.opaque(), x.u32()
        return status, x

    def root_fh(self, export):
        ops = [u32(OP_PUTROOTFH)] + [u32(OP_LOOKUP) + w.opaque(p.encode()) for p in export.split("/") if p]
        status, x = self.compound(ops + [u32(OP_GETFH)])
        if status != NFS4_OK:
            raise AssertionError(f"LOOKUP of the export: {status}")
        for _ in ops:
            x.u32(), x.u32()
        x.u32(), x.u32()
        return x.opaque()

    def open(self, fh, access, claim, name=None, want_deleg=True):
        """PUTFH + OPEN + GETFH (+ OPEN_CONFIRM when asked) -> (status, dtype, deleg sid, file fh).
        want_deleg: the 4.0 client cannot ask; the callback probe must have succeeded."""
        self.seqid += 1
        status, x = self.compound([u32(OP_PUTFH) + w.opaque(fh),
                                   open_args(self.seqid, access, self.clientid, self.owner, claim, name),
                                   u32(OP_GETFH)])
        if status != NFS4_OK:
            return status, None, None, None
        x.u32(), x.u32()
        x.u32(), x.u32()
        open_sid, rflags, dtype, deleg_sid = parse_open_ok(x)
        x.u32(), x.u32()
        file_fh = x.opaque()
        if rflags & OPEN4_RESULT_CONFIRM:
            self.seqid += 1
            st, _ = self.compound([u32(OP_PUTFH) + w.opaque(file_fh), u32(OP_OPEN_CONFIRM) + open_sid +
                                   u32(self.seqid)])
            if st != NFS4_OK:
                raise AssertionError(f"OPEN_CONFIRM: {st}")
        return status, dtype, deleg_sid, file_fh

    def delegpurge(self, clientid=None):
        status, _ = self.compound([u32(OP_DELEGPURGE) + u64(self.clientid if clientid is None else clientid)])
        return status


class DelegPrev(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # no grace period: the claims answer GRACE during one (unit-tested in state/)
        cls.srv = Peernfsd(BINARY, exports_opts="rw,no_root_squash,insecure",
                           extra_args=("--grace", "0", "--no-statd")).start()
        cls.export = cls.srv.export.lstrip("/")
        cls.clients = []

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_and_cleanup()

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.clients = []

    def track(self, c):
        self.clients.append(c)
        return c

    def make_file(self, name):
        with open(os.path.join(self.srv.export, name), "wb") as f:
            f.write(b"delegated data\n")

    def c41(self, owner, verifier):
        return self.track(Client41(self.srv.port, owner, verifier))

    def c40(self, id_string, verifier):
        cbs = CallbackService()
        self.clients.append(cbs)
        c = self.track(Client40(self.srv.port, cbs, id_string, verifier))
        if not cbs.wait(lambda: cbs.nulls > 0):
            raise AssertionError("no CB_NULL probe of the 4.0 callback path")
        time.sleep(0.2)  # the probe's answer reaches the server's state
        return c

    def other_writer(self, name):
        """Another (4.1) client opens `name` for write: (status, seconds it took)."""
        b = self.c41(f"writer-{name}".encode(), b"\x0b" * 8)
        t0 = time.time()
        root = b.root_fh(self.export)
        try:
            b.open(root, name, SHARE_ACCESS_WRITE, WANT_NO_DELEG, refusal_ok=True)
            status = NFS4_OK
        except AssertionError as e:  # CompoundError: "OPEN name: status"
            status = int(str(e).rsplit(" ", 1)[1])
        return b, status, time.time() - t0

    def check_recallable(self, name, deleg_sid, wait_recall):
        """Another client's write OPEN gets DELAY and the reclaimed delegation is recalled
        by its NEW stateid."""
        b, status, _ = self.other_writer(name)
        self.assertEqual(status, NFS4ERR_DELAY)
        stateid, _fh = wait_recall()
        self.assertEqual(stateid, deleg_sid)
        return b

    # ---- 4.1 ----

    def test_41_reclaim_by_fh_and_by_name(self):
        for name, claim in (("p41-fh", CLAIM_DELEG_PREV_FH), ("p41-name", CLAIM_DELEGATE_PREV)):
            self.make_file(name)
            a = self.c41(f"client-{name}".encode(), b"\x01" * 8)
            root = a.root_fh(self.export)
            _, dtype, old_sid, fh = a.open(root, name, DELEG_ACCESS, DELEG_WANT)
            self.assertEqual(dtype, DELEG)
            a2 = self.c41(f"client-{name}".encode(), b"\x02" * 8)  # the restart
            target = fh if claim == CLAIM_DELEG_PREV_FH else root
            status, _, dtype2, sid2, fh2 = a2.open_claim(target, DELEG_ACCESS, claim, name)
            self.assertEqual(status, NFS4_OK, name)
            self.assertEqual(dtype2, DELEG)
            self.assertEqual(fh2, fh)
            self.assertNotEqual(sid2[4:], old_sid[4:])
            # consumed: a second reclaim has nothing left
            status, *_ = a2.open_claim(target, DELEG_ACCESS, claim, name, owner=b"again")
            self.assertEqual(status, NFS4ERR_RECLAIM_BAD)
            b = self.check_recallable(name, sid2, a2.wait_recall)
            self.assertEqual(a2.delegreturn(fh, sid2), NFS4_OK)
            b.close()

    def test_41_other_writer_first(self):
        name = "p41-conflict"
        self.make_file(name)
        a = self.c41(b"client-p41-conflict", b"\x01" * 8)
        _, dtype, _, fh = a.open(a.root_fh(self.export), name, DELEG_ACCESS, DELEG_WANT)
        self.assertEqual(dtype, DELEG)
        a2 = self.c41(b"client-p41-conflict", b"\x02" * 8)
        _, status, took = self.other_writer(name)
        self.assertEqual(status, NFS4_OK)  # not delayed: nothing is recalled
        self.assertLess(took, 5.0)
        self.assertEqual(a2.cb_calls, 0)
        status, *_ = a2.open_claim(fh, DELEG_ACCESS, CLAIM_DELEG_PREV_FH)
        self.assertEqual(status, NFS4ERR_RECLAIM_BAD)

    def test_41_delegpurge(self):
        name = "p41-purge"
        self.make_file(name)
        a = self.c41(b"client-p41-purge", b"\x01" * 8)
        _, dtype, _, fh = a.open(a.root_fh(self.export), name, DELEG_ACCESS, DELEG_WANT)
        self.assertEqual(dtype, DELEG)
        a2 = self.c41(b"client-p41-purge", b"\x02" * 8)
        self.assertEqual(a2.delegpurge(), NFS4_OK)
        status, *_ = a2.open_claim(fh, DELEG_ACCESS, CLAIM_DELEG_PREV_FH)
        self.assertEqual(status, NFS4ERR_RECLAIM_BAD)
        self.assertEqual(a2.delegpurge(), NFS4_OK)

    # ---- 4.0 ----

    def test_40_reclaim(self):
        name = "p40"
        self.make_file(name)
        a = self.c40(b"client-p40", b"\x01" * 8)
        root = a.root_fh(self.export)
        # 4.0 cannot ask for a type: a read open gets a read delegation
        status, dtype, old_sid, fh = a.open(root, SHARE_ACCESS_READ, CLAIM_NULL, name)
        self.assertEqual((status, dtype), (NFS4_OK, OPEN_DELEGATE_READ))
        a2 = self.c40(b"client-p40", b"\x02" * 8)  # the restart
        self.assertEqual(a2.open(fh, SHARE_ACCESS_READ, CLAIM_DELEG_PREV_FH)[0], NFS4ERR_INVAL)  # no 4.0 claim
        status, dtype2, sid2, fh2 = a2.open(root, SHARE_ACCESS_READ, CLAIM_DELEGATE_PREV, name)
        self.assertEqual((status, dtype2), (NFS4_OK, OPEN_DELEGATE_READ))
        self.assertEqual(fh2, fh)
        self.assertNotEqual(sid2[4:], old_sid[4:])
        self.assertEqual(a2.open(root, SHARE_ACCESS_READ, CLAIM_DELEGATE_PREV, name)[0], NFS4ERR_RECLAIM_BAD)
        cbs = a2.cbs
        b = self.check_recallable(name, sid2, lambda: (cbs.wait(lambda: cbs.recalls), cbs.recalls.pop(0))[1])
        b.close()

    def test_40_other_writer_first_and_delegpurge(self):
        for name in ("p40-conflict", "p40-purge"):
            self.make_file(name)
            a = self.c40(f"client-{name}".encode(), b"\x01" * 8)
            root = a.root_fh(self.export)
            status, dtype, _, _ = a.open(root, SHARE_ACCESS_READ, CLAIM_NULL, name)
            self.assertEqual((status, dtype), (NFS4_OK, OPEN_DELEGATE_READ))
            a2 = self.c40(f"client-{name}".encode(), b"\x02" * 8)
            if name == "p40-conflict":
                _, status, took = self.other_writer(name)
                self.assertEqual(status, NFS4_OK)
                self.assertLess(took, 5.0)
                self.assertEqual(a2.cbs.recalls + a.cbs.recalls, [])
            else:
                self.assertEqual(a2.delegpurge(clientid=0x1234), NFS4ERR_STALE_CLIENTID)
                self.assertEqual(a2.delegpurge(), NFS4_OK)
            self.assertEqual(a2.open(root, SHARE_ACCESS_READ, CLAIM_DELEGATE_PREV, name)[0], NFS4ERR_RECLAIM_BAD)


if __name__ == "__main__":
    run_unittests(globals())
