#!/usr/bin/env python3
"""NFSv4 delegations against NFSv3 and NLM access on the wire (RFC 8881 10.4: a
delegation is recalled when another client touches the file, NFSv3 and NLM clients
included).

A raw NFSv4.1 client (EXCHANGE_ID, CREATE_SESSION with a back channel on its own
connection) opens a file and gets a delegation; it answers the server's CB_COMPOUND
(CB_SEQUENCE + CB_RECALL) itself and then sends DELEGRETURN. Meanwhile NFSv3 and NLM
calls from another connection to the same file get NFS3ERR_JUKEBOX /
NLM4_DENIED_GRACE_PERIOD while the delegation is out, and succeed once it is back.
NFSv3 handles are the NFSv4 ones (both are the same wrapped backend handle).

    test_deleg_v3.py --peernfsd build/bin/peernfsd
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

NFS_PROG, NLM_PROG, CB_PROG = 100003, 100021, 0x40000000
BINARY = None

# NFSv4 ops and constants (RFC 8881)
OP_CLOSE, OP_DELEGRETURN, OP_GETFH, OP_LOOKUP, OP_OPEN = 4, 8, 10, 15, 18
OP_PUTFH, OP_PUTROOTFH = 22, 24
OP_EXCHANGE_ID, OP_CREATE_SESSION, OP_SEQUENCE, OP_RECLAIM_COMPLETE = 42, 43, 53, 58
CB_OP_GETATTR, CB_OP_RECALL, CB_OP_SEQUENCE, CB_OP_NOTIFY_LOCK = 3, 4, 11, 13
OP_GETATTR, FATTR4_CHANGE, FATTR4_SIZE = 9, 3, 4
NFS4ERR_DELAY = 10008
NFS4_OK = 0
SHARE_ACCESS_READ, SHARE_ACCESS_WRITE = 1, 2
WANT_READ_DELEG, WANT_WRITE_DELEG, WANT_NO_DELEG = 0x0100, 0x0200, 0x0400
OPEN_DELEGATE_NONE, OPEN_DELEGATE_READ, OPEN_DELEGATE_WRITE, OPEN_DELEGATE_NONE_EXT = 0, 1, 2, 3
WND4_CONTENTION, WND4_RESOURCE = 1, 2
CREATE_SESSION4_FLAG_CONN_BACK_CHAN = 0x2
SEQ4_STATUS_CB_PATH_DOWN = 0x1

# NFSv3 (RFC 1813)
NFS3_SETATTR, NFS3_READ, NFS3_WRITE, NFS3_CREATE, NFS3_REMOVE, NFS3_RENAME, NFS3_LINK = 2, 6, 7, 8, 12, 14, 15
NFS3_OK, NFS3ERR_JUKEBOX = 0, 10008
FILE_SYNC = 2

# NLM v4 (XNFS)
NLM4_TEST, NLM4_LOCK, NLM4_UNLOCK = 1, 2, 4
NLM4_GRANTED, NLM4_DENIED_GRACE_PERIOD = 0, 4


def fanotify_usable():
    """Can this machine give peernfsd fanotify permission events (root, a kernel with
    fanotify)? Write delegations and the local-open checks need them."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    FAN_CLASS_CONTENT, FAN_CLOEXEC = 0x4, 0x1
    try:
        fd = libc.fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, os.O_RDONLY)
    except AttributeError:
        return False
    if fd < 0:
        return False
    os.close(fd)
    return True


FANOTIFY = fanotify_usable()


def u32(v):
    return w.u32(v)


u64, Xdr = w.u64, w.Xdr  # also imported from here by test_nfs4_backchannel


def chan_attrs(maxreq=1049620, maxresp=1049480, cached=7584, maxops=16, reqs=8):
    return u32(0) + u32(maxreq) + u32(maxresp) + u32(cached) + u32(maxops) + u32(reqs) + u32(0)


class CompoundError(AssertionError):
    pass


class Nfs41Client:
    """A raw NFSv4.1 client on one connection, fore and back channel, one slot."""

    def __init__(self, port, owner, cb_sec=None):
        """cb_sec: the encoded csa_sec_parms list (default: one AUTH_NONE entry)."""
        self.c = w.Conn("127.0.0.1", port, timeout=10.0)
        self.owner = owner
        self.cb_sec = cb_sec if cb_sec is not None else u32(1) + u32(0)
        self.xid = 0x7100
        self.recalls = []  # (stateid, fh) of CB_RECALLs answered
        self.cb_calls = 0
        self.cb_creds = []  # (flavor, body) of every CB_COMPOUND's credential
        self.lock_notifies = []  # (fh, clientid, owner) of CB_NOTIFY_LOCKs answered
        self.getattr_calls = []  # (fh, attribute mask) of CB_GETATTRs answered
        self.getattr_answer = None  # (change, size) CB_GETATTR answers with
        self.clientid, seq = self._exchange_id()
        self.sid, flags = self._create_session(seq)
        if not flags & CREATE_SESSION4_FLAG_CONN_BACK_CHAN:
            raise AssertionError("CREATE_SESSION did not give the back channel")
        self.seq = 0
        self.compound([u32(OP_RECLAIM_COMPLETE) + u32(0)])

    def close(self):
        self.c.close()

    # ---- the wire: our calls, and the server's callbacks on the same connection ----

    def _call(self, args):
        self.xid += 1
        self.c.send(w.record(w.call(self.xid, NFS_PROG, 4, 1, args)))
        while True:
            msg = self.c.recv_record()
            xid, mtype = struct.unpack(">II", msg[:8])
            if mtype == w.CALL:
                self._answer_callback(msg)
                continue
            r = w.parse_reply(msg)
            if r["xid"] != self.xid:
                raise AssertionError(f"reply xid {r['xid']:#x}, want {self.xid:#x}")
            if (r["kind"], r["stat"]) != ("accepted", w.SUCCESS):
                raise AssertionError(f"COMPOUND rejected: {r}")
            return r["body"]

    def _raw_compound(self, ops):
        body = self._call(w.opaque(b"deleg") + u32(1) + u32(len(ops)) + b"".join(ops))
        x = Xdr(body)
        status = x.u32()
        x.opaque()  # tag
        x.u32()  # results
        return status, x

    def compound(self, ops):
        """SEQUENCE + ops; returns (status, cursor after the SEQUENCE result)."""
        self.seq += 1
        seq = u32(OP_SEQUENCE) + self.sid + u32(self.seq) + u32(0) + u32(0) + u32(0)
        status, x = self._raw_compound([seq] + ops)
        op, st = x.u32(), x.u32()
        if (op, st) != (OP_SEQUENCE, NFS4_OK):
            raise CompoundError(f"SEQUENCE: op {op} status {st}")
        x.fixed(16)
        x.u32(), x.u32(), x.u32(), x.u32()
        self.seq_flags = x.u32()
        return status, x

    def _answer_callback(self, msg):
        """CB_COMPOUND (CB_SEQUENCE + CB_RECALL): record the recall, answer NFS4_OK."""
        self.cb_calls += 1
        x = Xdr(msg)
        xid, _, rpcvers, prog, vers, proc = (x.u32() for _ in range(6))
        self.cb_creds.append((x.u32(), x.opaque()))  # credential
        x.u32(), x.opaque()  # verifier
        if (prog, vers, proc) != (CB_PROG, 1, 1):
            raise AssertionError(f"callback call {prog:#x}/{vers}/{proc}")
        tag = x.opaque()
        x.u32(), x.u32()  # minorversion, callback_ident
        results = []
        for _ in range(x.u32()):
            op = x.u32()
            if op == CB_OP_SEQUENCE:
                sessionid, seqid, slot, highest = x.fixed(16), x.u32(), x.u32(), x.u32()
                x.u32()  # cachethis
                for _ in range(x.u32()):  # referring call lists
                    x.fixed(16)
                    for _ in range(x.u32()):
                        x.u32(), x.u32()
                results.append(u32(op) + u32(NFS4_OK) + sessionid + u32(seqid) + u32(slot) + u32(highest) +
                               u32(highest))
            elif op == CB_OP_RECALL:
                stateid, _truncate, fh = x.fixed(16), x.u32(), x.opaque()
                self.recalls.append((stateid, fh))
                results.append(u32(op) + u32(NFS4_OK))
            elif op == CB_OP_GETATTR:
                fh, mask = x.opaque(), [x.u32() for _ in range(x.u32())]
                self.getattr_calls.append((fh, mask))
                change, size = self.getattr_answer
                attrs = u32(1) + u32(1 << FATTR4_CHANGE | 1 << FATTR4_SIZE) + w.opaque(u64(change) + u64(size))
                results.append(u32(op) + u32(NFS4_OK) + attrs)
            elif op == CB_OP_NOTIFY_LOCK:
                fh, clientid, owner = x.opaque(), x.u64(), x.opaque()
                self.lock_notifies.append((fh, clientid, owner))
                results.append(u32(op) + u32(NFS4_OK))
            else:
                raise AssertionError(f"unexpected callback op {op}")
        res = u32(NFS4_OK) + w.opaque(tag) + u32(len(results)) + b"".join(results)
        reply = u32(xid) + u32(w.REPLY) + u32(w.MSG_ACCEPTED) + w.auth_none() + u32(w.SUCCESS) + res
        self.c.send(w.record(reply))

    def read_callbacks(self, got, timeout):
        """Answer the server's callbacks on this connection until got() or timeout s."""
        deadline = time.time() + timeout
        while not got():
            left = deadline - time.time()
            if left <= 0:
                return False
            self.c.s.settimeout(max(0.05, left))
            try:
                msg = self.c.recv_record()
            except socket.timeout:
                continue
            finally:
                self.c.s.settimeout(10.0)
            if struct.unpack(">I", msg[4:8])[0] != w.CALL:
                raise AssertionError("a reply nobody waited for")
            self._answer_callback(msg)
        return True

    def wait_recall(self, timeout=10.0):
        """Read the connection until a CB_RECALL came (and was answered)."""
        if not self.read_callbacks(lambda: self.recalls, timeout):
            raise AssertionError("no CB_RECALL arrived")
        return self.recalls.pop(0)

    # ---- setup ----

    def _exchange_id(self):
        args = u32(OP_EXCHANGE_ID) + b"\x05" * 8 + w.opaque(self.owner) + u32(0) + u32(0) + u32(0)
        status, x = self._raw_compound([args])
        if status != NFS4_OK:
            raise AssertionError(f"EXCHANGE_ID: {status}")
        x.u32(), x.u32()
        return x.u64(), x.u32()

    def _create_session(self, seq):
        # back channel on this connection; callbacks may come as AUTH_NONE
        args = (u32(OP_CREATE_SESSION) + u64(self.clientid) + u32(seq) + u32(CREATE_SESSION4_FLAG_CONN_BACK_CHAN) +
                chan_attrs() + chan_attrs(maxreq=65536, maxresp=65536, cached=0, maxops=8, reqs=1) +
                u32(CB_PROG) + self.cb_sec)
        status, x = self._raw_compound([args])
        if status != NFS4_OK:
            raise AssertionError(f"CREATE_SESSION: {status}")
        x.u32(), x.u32()
        sid = x.fixed(16)
        x.u32()  # sequenceid
        return sid, x.u32()

    # ---- file operations ----

    def lookup_ops(self, path):
        return [u32(OP_PUTROOTFH)] + [u32(OP_LOOKUP) + w.opaque(p.encode()) for p in path.split("/") if p]

    def root_fh(self, export):
        ops = self.lookup_ops(export)
        status, x = self.compound(ops + [u32(OP_GETFH)])
        if status != NFS4_OK:
            raise AssertionError(f"LOOKUP of the export: {status}")
        for _ in ops:
            x.u32(), x.u32()
        x.u32(), x.u32()
        return x.opaque()

    def open(self, dir_fh, name, access, want, refusal_ok=False):
        """OPEN (no create, deny none) + GETFH -> (open stateid, deleg type, deleg stateid, fh).
        A refused delegation (OPEN_DELEGATE_NONE_EXT) raises unless refusal_ok."""
        owner = u64(self.clientid) + w.opaque(b"open-owner")
        args = (u32(OP_OPEN) + u32(0) + u32(access | want) + u32(0) + owner + u32(0) + u32(0) +
                w.opaque(name.encode()))
        status, x = self.compound([u32(OP_PUTFH) + w.opaque(dir_fh), args, u32(OP_GETFH)])
        if status != NFS4_OK:
            raise CompoundError(f"OPEN {name}: {status}")
        x.u32(), x.u32()  # PUTFH
        x.u32(), x.u32()  # OPEN
        open_sid = x.fixed(16)
        x.u32(), x.u64(), x.u64()  # change_info4
        x.u32()  # rflags
        x.bitmap()
        dtype = x.u32()
        deleg_sid = None
        if dtype in (OPEN_DELEGATE_READ, OPEN_DELEGATE_WRITE):
            deleg_sid = x.fixed(16)
            x.u32()  # recall
            if dtype == OPEN_DELEGATE_WRITE:
                if x.u32() == 1:
                    x.u64()
                else:
                    x.u32(), x.u32()
            x.u32(), x.u32(), x.u32(), x.opaque()  # nfsace4
        elif dtype == OPEN_DELEGATE_NONE_EXT:
            why = x.u32()
            if why in (WND4_CONTENTION, WND4_RESOURCE):
                x.u32()  # ond_server_will_push_deleg
            if not refusal_ok:
                raise AssertionError(f"no delegation: why {why}, sequence flags {self.seq_flags:#x}")
        x.u32(), x.u32()  # GETFH
        return open_sid, dtype, deleg_sid, x.opaque()

    def getattr_change_size(self, fh):
        """PUTFH + GETATTR(change, size) -> (change, size)."""
        mask = u32(1) + u32(1 << FATTR4_CHANGE | 1 << FATTR4_SIZE)
        status, x = self.compound([u32(OP_PUTFH) + w.opaque(fh), u32(OP_GETATTR) + mask])
        if status != NFS4_OK:
            raise CompoundError(f"GETATTR: {status}")
        x.u32(), x.u32()  # PUTFH
        x.u32(), x.u32()  # GETATTR
        x.bitmap()
        vals = Xdr(x.opaque())
        return vals.u64(), vals.u64()

    def delegreturn(self, fh, deleg_sid):
        status, _ = self.compound([u32(OP_PUTFH) + w.opaque(fh), u32(OP_DELEGRETURN) + deleg_sid])
        return status

    def close_file(self, fh, open_sid):
        status, _ = self.compound([u32(OP_PUTFH) + w.opaque(fh), u32(OP_CLOSE) + u32(0) + open_sid])
        return status


class DelegVsV3(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # insecure: the test's sockets are on unreserved ports; no grace period (NLM
        # would answer GRACE_PERIOD for its own reason); no statd
        cls.srv = Peernfsd(BINARY, exports_opts="rw,no_root_squash,insecure",
                           extra_args=("--grace", "0", "--no-statd")).start()
        cls.xid = 0x9100

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_and_cleanup()

    def setUp(self):
        self.v4 = Nfs41Client(self.srv.port, f"deleg-{self.id()}".encode())
        self.addCleanup(self.v4.close)
        self.v3 = w.Conn("127.0.0.1", self.srv.port, timeout=10.0)
        self.addCleanup(self.v3.close)
        self.root = self.v4.root_fh(self.srv.export)

    def make_file(self, name, data=b"delegated data\n"):
        with open(os.path.join(self.srv.export, name), "wb") as f:
            f.write(data)

    def open_delegated(self, name, write=False):
        access, want = (SHARE_ACCESS_READ | SHARE_ACCESS_WRITE, WANT_WRITE_DELEG) if write else \
            (SHARE_ACCESS_READ, WANT_READ_DELEG)
        open_sid, dtype, deleg_sid, fh = self.v4.open(self.root, name, access, want)
        self.assertEqual(dtype, OPEN_DELEGATE_WRITE if write else OPEN_DELEGATE_READ, self.srv.read_log())
        return open_sid, deleg_sid, fh

    def expect_recall(self, deleg_sid, fh):
        stateid, rfh = self.v4.wait_recall()
        self.assertEqual(stateid[4:], deleg_sid[4:], "CB_RECALL names the delegation")
        self.assertEqual(rfh, fh, "CB_RECALL names the file")

    # ---- NFSv3 and NLM calls on the second connection ----

    def rpc(self, prog, vers, proc, args):
        DelegVsV3.xid += 1
        self.v3.send(w.record(w.call(DelegVsV3.xid, prog, vers, proc, args)))
        r = w.parse_reply(self.v3.recv_record())
        self.assertEqual((r["xid"], r["kind"], r["stat"]), (DelegVsV3.xid, "accepted", w.SUCCESS))
        return Xdr(r["body"])

    def v3_write(self, fh, data=b"v3 was here"):
        return self.rpc(NFS_PROG, 3, NFS3_WRITE, w.opaque(fh) + u64(0) + u32(len(data)) + u32(FILE_SYNC) +
                        w.opaque(data)).u32()

    def v3_read(self, fh):
        return self.rpc(NFS_PROG, 3, NFS3_READ, w.opaque(fh) + u64(0) + u32(4096)).u32()

    def v3_truncate(self, fh, size=0):
        sattr = u32(0) + u32(0) + u32(0) + u32(1) + u64(size) + u32(0) + u32(0)
        return self.rpc(NFS_PROG, 3, NFS3_SETATTR, w.opaque(fh) + sattr + u32(0)).u32()

    def v3_create_truncating(self, name):
        sattr = u32(0) + u32(0) + u32(0) + u32(1) + u64(0) + u32(0) + u32(0)  # size 0
        unchecked = u32(0)
        return self.rpc(NFS_PROG, 3, NFS3_CREATE, w.opaque(self.root) + w.opaque(name.encode()) + unchecked +
                        sattr).u32()

    def v3_link(self, fh, name):
        return self.rpc(NFS_PROG, 3, NFS3_LINK, w.opaque(fh) + w.opaque(self.root) + w.opaque(name.encode())).u32()

    def v3_remove(self, name):
        return self.rpc(NFS_PROG, 3, NFS3_REMOVE, w.opaque(self.root) + w.opaque(name.encode())).u32()

    def v3_rename(self, old, new):
        return self.rpc(NFS_PROG, 3, NFS3_RENAME, w.opaque(self.root) + w.opaque(old.encode()) +
                        w.opaque(self.root) + w.opaque(new.encode())).u32()

    def nlm_alock(self, fh):
        return w.opaque(b"v3host") + w.opaque(fh) + w.opaque(b"v3-owner") + u32(77) + u64(0) + u64(100)

    def nlm_test(self, fh, exclusive):
        x = self.rpc(NLM_PROG, 4, NLM4_TEST, w.opaque(b"c1") + u32(exclusive) + self.nlm_alock(fh))
        x.opaque()
        return x.u32()

    def nlm_lock(self, fh, exclusive):
        args = w.opaque(b"c2") + u32(0) + u32(exclusive) + self.nlm_alock(fh) + u32(0) + u32(1)
        x = self.rpc(NLM_PROG, 4, NLM4_LOCK, args)
        x.opaque()
        return x.u32()

    def nlm_unlock(self, fh):
        x = self.rpc(NLM_PROG, 4, NLM4_UNLOCK, w.opaque(b"c3") + self.nlm_alock(fh))
        x.opaque()
        return x.u32()

    # ---- the cases ----

    def test_v3_write_recalls_read_delegation(self):
        self.make_file("w1")
        open_sid, deleg_sid, fh = self.open_delegated("w1")
        self.assertEqual(self.v3_read(fh), NFS3_OK, "reading does not conflict with a read delegation")
        self.assertEqual(self.v3_write(fh), NFS3ERR_JUKEBOX, self.srv.read_log())
        self.expect_recall(deleg_sid, fh)
        self.assertEqual(self.v3_write(fh), NFS3ERR_JUKEBOX, "still out until DELEGRETURN")
        self.assertEqual(self.v4.cb_calls, 1, "one recall per delegation")
        self.assertEqual(self.v4.delegreturn(fh, deleg_sid), NFS4_OK)
        self.assertEqual(self.v3_write(fh), NFS3_OK)
        with open(os.path.join(self.srv.export, "w1"), "rb") as f:
            self.assertTrue(f.read().startswith(b"v3 was here"))
        self.assertEqual(self.v4.close_file(fh, open_sid), NFS4_OK)

    def test_v3_setattr_recalls(self):
        self.make_file("s1")
        open_sid, deleg_sid, fh = self.open_delegated("s1")
        self.assertEqual(self.v3_truncate(fh), NFS3ERR_JUKEBOX)
        self.expect_recall(deleg_sid, fh)
        self.assertEqual(self.v4.delegreturn(fh, deleg_sid), NFS4_OK)
        self.assertEqual(self.v3_truncate(fh), NFS3_OK)
        self.assertEqual(os.path.getsize(os.path.join(self.srv.export, "s1")), 0)
        self.assertEqual(self.v4.close_file(fh, open_sid), NFS4_OK)

    @unittest.skipUnless(FANOTIFY, "write delegations need the open watcher (fanotify, root)")
    def test_write_delegation_recalled_by_v3_read_and_nlm(self):
        self.make_file("r1")
        open_sid, deleg_sid, fh = self.open_delegated("r1", write=True)
        # the holder may have cached writes: reading and shared locks conflict too
        self.assertEqual(self.v3_read(fh), NFS3ERR_JUKEBOX, self.srv.read_log())
        self.expect_recall(deleg_sid, fh)
        self.assertEqual(self.nlm_lock(fh, exclusive=False), NLM4_DENIED_GRACE_PERIOD)
        self.assertEqual(self.v4.delegreturn(fh, deleg_sid), NFS4_OK)
        self.assertEqual(self.v3_read(fh), NFS3_OK)
        self.assertEqual(self.nlm_lock(fh, exclusive=False), NLM4_GRANTED)
        self.assertEqual(self.nlm_unlock(fh), NLM4_GRANTED)
        self.assertEqual(self.v4.close_file(fh, open_sid), NFS4_OK)

    @unittest.skipUnless(FANOTIFY, "write delegations need the open watcher (fanotify, root)")
    def test_cb_getattr_for_another_clients_getattr(self):
        """Another client's GETATTR of size or change asks the write delegation's holder
        with CB_GETATTR (RFC 8881 10.4.3) and shows what the holder reported: at once when
        the holder answers promptly, else after a DELAY and the asker's retry."""
        self.make_file("ga1")
        open_sid, deleg_sid, fh = self.open_delegated("ga1", write=True)
        change0, size0 = self.v4.getattr_change_size(fh)
        self.assertEqual(self.v4.getattr_calls, [], "the holder's own GETATTR asks nobody")
        other = Nfs41Client(self.srv.port, f"deleg-other-{self.id()}".encode())
        self.addCleanup(other.close)

        def other_getattr(calls_before):
            with self.assertRaises(CompoundError, msg="DELAY while the holder is asked") as e:
                other.getattr_change_size(fh)
            self.assertEqual(str(e.exception), f"GETATTR: {NFS4ERR_DELAY}")
            self.assertTrue(self.v4.read_callbacks(lambda: len(self.v4.getattr_calls) > calls_before, 5.0),
                            f"no CB_GETATTR\n{self.srv.read_log()}")
            deadline = time.monotonic() + 5
            while True:  # as a client retries after DELAY
                try:
                    return other.getattr_change_size(fh)
                except CompoundError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

        self.v4.getattr_answer = (change0, size0)  # nothing written under the delegation
        self.assertEqual(other_getattr(0), (change0, size0))
        self.assertEqual(self.v4.getattr_calls, [(fh, [1 << FATTR4_CHANGE | 1 << FATTR4_SIZE])])
        time.sleep(1.2)  # past the answer's freshness
        self.v4.getattr_answer = (change0 + 1, 4096)  # the holder has cached writes
        change, size = other_getattr(1)
        self.assertEqual(size, 4096, "the holder's size")
        self.assertGreater(change, change0, "a new change value")
        self.assertEqual(len(self.v4.getattr_calls), 2)
        # a holder that answers while the server waits: no DELAY at all
        time.sleep(1.2)
        self.v4.getattr_answer = (change0 + 2, 8192)
        holder = threading.Thread(target=self.v4.read_callbacks,
                                  args=(lambda: len(self.v4.getattr_calls) > 2, 5.0))
        holder.start()
        try:
            change, size = other.getattr_change_size(fh)
        finally:
            holder.join()
        self.assertEqual(size, 8192, "the prompt holder's size, without a DELAY first")
        self.assertEqual(len(self.v4.getattr_calls), 3)
        self.assertEqual(self.v4.recalls, [], "answered CB_GETATTRs recall nothing")
        self.assertEqual(self.v4.delegreturn(fh, deleg_sid), NFS4_OK)
        self.assertEqual(other.getattr_change_size(fh)[1], size0, "the file's own size once returned")
        self.assertEqual(len(self.v4.getattr_calls), 3)
        self.assertEqual(self.v4.close_file(fh, open_sid), NFS4_OK)

    # ---- local processes on the server (the open watcher needs CAP_SYS_ADMIN) ----

    def local_open_in_thread(self, name, mode):
        """Open the backing file as a local process would, in a thread; returns the thread
        and the list its result lands in (the time the open returned)."""
        done = []

        def run():
            with open(os.path.join(self.srv.export, name), mode):
                done.append(time.monotonic())

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, done

    @unittest.skipUnless(FANOTIFY, "fanotify permission events need root and fanotify")
    def test_local_open_waits_for_delegation_return(self):
        for write, name in ((False, "lr1"), (True, "lw1")):
            with self.subTest(write=write):
                self.make_file(name)
                open_sid, deleg_sid, fh = self.open_delegated(name, write=write)
                t, done = self.local_open_in_thread(name, "rb")
                self.expect_recall(deleg_sid, fh)
                time.sleep(0.3)
                self.assertEqual(done, [], "the local open waits while the delegation is out")
                returned = time.monotonic()
                self.assertEqual(self.v4.delegreturn(fh, deleg_sid), NFS4_OK)
                t.join(10)
                self.assertEqual(len(done), 1, "the local open goes ahead after DELEGRETURN")
                self.assertGreaterEqual(done[0], returned)
                self.assertEqual(self.v4.close_file(fh, open_sid), NFS4_OK)

    @unittest.skipUnless(FANOTIFY, "fanotify needs root")
    def test_local_changes_without_open_recall(self):
        """chmod, link, rename and unlink by a local process open nothing; the change
        watch sees them (after the fact) and recalls the delegation."""
        export = self.srv.export
        changes = (
            ("ch1", lambda p: os.chmod(p, 0o600)),
            ("ln1", lambda p: os.link(p, p + ".link")),
            ("mv2", lambda p: os.rename(p, p + ".moved")),
            ("rm2", os.unlink),
        )
        for name, change in changes:
            with self.subTest(change=name):
                self.make_file(name)
                open_sid, deleg_sid, fh = self.open_delegated(name)
                change(os.path.join(export, name))
                self.expect_recall(deleg_sid, fh)
                self.assertEqual(self.v4.delegreturn(fh, deleg_sid), NFS4_OK)
                self.v4.close_file(fh, open_sid)  # STALE after the unlink: either answer
        # renaming another file over a delegated one replaces it
        self.make_file("over1")
        self.make_file("over1.new")
        open_sid, deleg_sid, fh = self.open_delegated("over1")
        os.rename(os.path.join(export, "over1.new"), os.path.join(export, "over1"))
        self.expect_recall(deleg_sid, fh)
        self.assertEqual(self.v4.delegreturn(fh, deleg_sid), NFS4_OK)
        self.v4.close_file(fh, open_sid)

    @unittest.skipUnless(FANOTIFY, "write delegations need the open watcher (fanotify, root)")
    def test_no_write_delegation_while_open_locally(self):
        self.make_file("busy1")
        with open(os.path.join(self.srv.export, "busy1"), "rb"):
            open_sid, dtype, _, fh = self.v4.open(self.root, "busy1", SHARE_ACCESS_READ | SHARE_ACCESS_WRITE,
                                                  WANT_WRITE_DELEG, refusal_ok=True)
            self.assertNotIn(dtype, (OPEN_DELEGATE_READ, OPEN_DELEGATE_WRITE),
                             "a local process has the file open: no write delegation")
            self.assertEqual(self.v4.close_file(fh, open_sid), NFS4_OK)
        # once it is closed, the same open is delegated, and the server's own opens of the
        # file (NFSv4 READ and WRITE through its fd cache) do not recall it
        open_sid, deleg_sid, fh = self.open_delegated("busy1", write=True)
        self.assertEqual(self.v4.cb_calls, 0)
        self.assertEqual(self.v4.delegreturn(fh, deleg_sid), NFS4_OK)
        self.assertEqual(self.v4.close_file(fh, open_sid), NFS4_OK)

    def test_v3_remove_and_rename_recall(self):
        self.make_file("rm1")
        self.make_file("mv1")
        _, rm_sid, rm_fh = self.open_delegated("rm1")
        _, mv_sid, mv_fh = self.open_delegated("mv1")
        self.assertEqual(self.v3_remove("rm1"), NFS3ERR_JUKEBOX)
        self.expect_recall(rm_sid, rm_fh)
        # the rename target is the delegated file: it would be replaced
        self.make_file("other")
        self.assertEqual(self.v3_rename("other", "mv1"), NFS3ERR_JUKEBOX)
        self.expect_recall(mv_sid, mv_fh)
        self.assertEqual(self.v4.delegreturn(rm_fh, rm_sid), NFS4_OK)
        self.assertEqual(self.v4.delegreturn(mv_fh, mv_sid), NFS4_OK)
        self.assertEqual(self.v3_remove("rm1"), NFS3_OK)
        self.assertEqual(self.v3_rename("other", "mv1"), NFS3_OK)

    def test_v3_create_truncate_and_link_recall(self):
        self.make_file("c1")
        self.make_file("k1")
        _, c_sid, c_fh = self.open_delegated("c1")
        _, k_sid, k_fh = self.open_delegated("k1")
        self.assertEqual(self.v3_create_truncating("c1"), NFS3ERR_JUKEBOX)
        self.expect_recall(c_sid, c_fh)
        self.assertEqual(self.v3_link(k_fh, "k1-link"), NFS3ERR_JUKEBOX)
        self.expect_recall(k_sid, k_fh)
        self.assertEqual(self.v4.delegreturn(c_fh, c_sid), NFS4_OK)
        self.assertEqual(self.v4.delegreturn(k_fh, k_sid), NFS4_OK)
        self.assertEqual(self.v3_create_truncating("c1"), NFS3_OK)
        self.assertEqual(os.path.getsize(os.path.join(self.srv.export, "c1")), 0)
        self.assertEqual(self.v3_link(k_fh, "k1-link"), NFS3_OK)

    def test_nlm_lock_recalls(self):
        self.make_file("l1")
        open_sid, deleg_sid, fh = self.open_delegated("l1")
        # a shared lock does not conflict with a read delegation
        self.assertEqual(self.nlm_test(fh, exclusive=False), NLM4_GRANTED)
        self.assertEqual(self.v4.cb_calls, 0)
        self.assertEqual(self.nlm_test(fh, exclusive=True), NLM4_DENIED_GRACE_PERIOD, self.srv.read_log())
        self.expect_recall(deleg_sid, fh)
        self.assertEqual(self.nlm_lock(fh, exclusive=True), NLM4_DENIED_GRACE_PERIOD)
        self.assertEqual(self.v3_write(fh), NFS3ERR_JUKEBOX)
        self.assertEqual(self.v4.delegreturn(fh, deleg_sid), NFS4_OK)
        self.assertEqual(self.nlm_lock(fh, exclusive=True), NLM4_GRANTED)
        self.assertEqual(self.nlm_unlock(fh), NLM4_GRANTED)
        self.assertEqual(self.v4.close_file(fh, open_sid), NFS4_OK)


if __name__ == "__main__":
    run_unittests(globals())
