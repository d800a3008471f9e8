#!/usr/bin/env python3
"""NLM versions 1 and 3 (XNFS chapter 10: 32-bit offsets, LCK_* statuses) on the wire
against a running peernfsd, over TCP and UDP: TEST/LOCK/UNLOCK/CANCEL round trips, the
one lock space shared with version 4 (a v1 lock conflicts with a v4 one and the reverse;
a v4 holder beyond 32 bits is clamped), ranges near 2^32, v3 SHARE/UNSHARE, NM_LOCK and
FREE_ALL, v4-only errors mapped to LCK_DENIED_NOLOCKS, and GARBAGE_ARGS for truncated
or malformed arguments."""
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcwire as w  # noqa: E402
from peernfsd_proc import Peernfsd, run_unittests  # noqa: E402

NFS_PROG, MOUNT_PROG, NLM_PROG = 100003, 100005, 100021
NFS3_LOOKUP, MOUNTPROC3_MNT = 3, 1

# procedures (the same numbers in versions 1, 3 and 4)
NULL, TEST, LOCK, CANCEL, UNLOCK, GRANTED = 0, 1, 2, 3, 4, 5
TEST_MSG = 6
SHARE, UNSHARE, NM_LOCK, FREE_ALL = 20, 21, 22, 23
# nlm_stats (v1/v3) == the first five nlm4_stats
LCK_GRANTED, LCK_DENIED, LCK_DENIED_NOLOCKS, LCK_BLOCKED = 0, 1, 2, 3
fsm_DN, fsm_DW = 0, 2
fsa_R, fsa_W = 1, 2

U32_MAX = 0xFFFFFFFF
BINARY = None


def u32(v):
    return w.u32(v)


u64, Xdr = w.u64, w.Xdr


def lock1(host, fh, oh, uppid, off, length):
    """nlm_lock (v1/v3): 32-bit offset and length."""
    return w.opaque(host) + w.opaque(fh) + w.opaque(oh) + u32(uppid) + u32(off) + u32(length)


def lock4(host, fh, oh, svid, off, length):
    return w.opaque(host) + w.opaque(fh) + w.opaque(oh) + u32(svid) + u64(off) + u64(length)


class Udp:
    def __init__(self, port):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.settimeout(5.0)
        self.s.connect(("127.0.0.1", port))

    def roundtrip(self, msg):
        self.s.send(msg)
        return self.s.recv(65536)

    def close(self):
        self.s.close()


class Tcp:
    def __init__(self, port):
        self.c = w.Conn("127.0.0.1", port, timeout=10.0)

    def roundtrip(self, msg):
        self.c.send(w.record(msg))
        return self.c.recv_record()

    def close(self):
        self.c.close()


class NlmV1V3Base:
    """The cases; TRANSPORT is Tcp or Udp in the concrete classes."""
    TRANSPORT = None
    srv = None
    root = None
    xid = 0xa100

    @classmethod
    def start_server(cls):
        # insecure: the test's sockets are on unreserved ports; no grace period; no statd
        cls.srv = Peernfsd(BINARY, exports_opts="rw,no_root_squash,insecure",
                           extra_args=("--grace", "0", "--no-statd")).start()
        c = Tcp(cls.srv.port)
        try:
            cls.xid += 1
            body = w.parse_reply(c.roundtrip(w.call(cls.xid, MOUNT_PROG, 3, MOUNTPROC3_MNT,
                                                    w.opaque(cls.srv.export.encode()))))["body"]
            x = Xdr(body)
            assert x.u32() == 0, "MNT"
            cls.root = x.opaque()
        finally:
            c.close()

    @classmethod
    def stop_server(cls):
        cls.srv.stop_and_cleanup()

    def setUp(self):
        self.t = self.TRANSPORT(self.srv.port)
        self.addCleanup(self.t.close)
        self.tag = f"{self.TRANSPORT.__name__}-{self._testMethodName}".encode()

    # ---- RPC ----

    def raw(self, vers, proc, args):
        NlmV1V3Base.xid += 1
        r = w.parse_reply(self.t.roundtrip(w.call(NlmV1V3Base.xid, NLM_PROG, vers, proc, args)))
        self.assertEqual((r["xid"], r["kind"]), (NlmV1V3Base.xid, "accepted"))
        return r

    def rpc(self, vers, proc, args):
        r = self.raw(vers, proc, args)
        self.assertEqual(r["stat"], w.SUCCESS, self.srv.read_log())
        return Xdr(r["body"])

    def fh(self, name):
        """A fresh file's NFSv3 handle (NLM names files by NFS handle)."""
        open(os.path.join(self.srv.export, name), "wb").close()
        x = Xdr(self.rpc_nfs3_lookup(name))
        self.assertEqual(x.u32(), 0, "LOOKUP")
        return x.opaque()

    def rpc_nfs3_lookup(self, name):
        NlmV1V3Base.xid += 1
        r = w.parse_reply(self.t.roundtrip(w.call(NlmV1V3Base.xid, NFS_PROG, 3, NFS3_LOOKUP,
                                                  w.opaque(self.root) + w.opaque(name.encode()))))
        return r["body"]

    # ---- NLM calls; each returns the status (TEST: and the holder) ----

    def res(self, x, cookie):
        self.assertEqual(x.opaque(), cookie, "cookie echoed")
        st = x.u32()
        self.assertTrue(x.done())
        return st

    def lock(self, vers, alock, exclusive=True, block=False, proc=LOCK, reclaim=False):
        cookie = b"L" + self.tag[:20]
        args = w.opaque(cookie) + u32(block) + u32(exclusive) + alock + u32(reclaim) + u32(3)
        return self.res(self.rpc(vers, proc, args), cookie)

    def unlock(self, vers, alock):
        return self.res(self.rpc(vers, UNLOCK, w.opaque(b"u") + alock), b"u")

    def cancel(self, vers, alock, exclusive=True, block=True):
        return self.res(self.rpc(vers, CANCEL, w.opaque(b"cx") + u32(block) + u32(exclusive) + alock), b"cx")

    def nlm_test(self, vers, alock, exclusive=True):
        """-> (status, holder dict or None)."""
        x = self.rpc(vers, TEST, w.opaque(b"tst") + u32(exclusive) + alock)
        self.assertEqual(x.opaque(), b"tst")
        st = x.u32()
        holder = None
        if st == LCK_DENIED:
            holder = {"exclusive": x.u32(), "svid": x.i32(), "oh": x.opaque()}
            if vers == 4:
                holder["off"], holder["len"] = x.u64(), x.u64()
            else:
                holder["off"], holder["len"] = x.u32(), x.u32()
        self.assertTrue(x.done(), "nothing after the test result")
        return st, holder

    def share(self, vers, fh, oh, mode, access, proc=SHARE, host=b"sharehost"):
        args = w.opaque(b"sh") + w.opaque(host) + w.opaque(fh) + w.opaque(oh) + u32(mode) + u32(access) + u32(0)
        x = self.rpc(vers, proc, args)
        self.assertEqual(x.opaque(), b"sh")
        st = x.u32()
        x.i32()  # sequence
        self.assertTrue(x.done())
        return st

    # ---- the cases ----

    def test_null_and_versions(self):
        for vers in (1, 3, 4):
            self.assertEqual(self.rpc(vers, NULL, b"").d, b"")
        r = self.raw(2, NULL, b"")
        self.assertEqual((r["stat"], r["low"], r["high"]), (w.PROG_MISMATCH, 1, 4))
        # version 1 has no procedures 20-23; version 3 does
        self.assertEqual(self.raw(1, FREE_ALL, w.opaque(b"h") + u32(1))["stat"], w.PROC_UNAVAIL)
        self.assertEqual(self.raw(1, 16, b"")["stat"], w.PROC_UNAVAIL)
        self.assertEqual(self.raw(3, 24, b"")["stat"], w.PROC_UNAVAIL)

    def test_lock_test_unlock(self):
        for vers in (1, 3):
            fh = self.fh(f"ltu-{vers}-{self.TRANSPORT.__name__}")
            a = lock1(b"hostA", fh, b"ownerA", 11, 0, 100)
            b = lock1(b"hostB", fh, b"ownerB", 22, 50, 10)
            self.assertEqual(self.lock(vers, a), LCK_GRANTED)
            st, h = self.nlm_test(vers, b)
            self.assertEqual(st, LCK_DENIED)
            self.assertEqual(h, {"exclusive": 1, "svid": 11, "oh": b"ownerA", "off": 0, "len": 100})
            self.assertEqual(self.lock(vers, b), LCK_DENIED)
            # shared vs shared: no conflict with a read lock
            self.assertEqual(self.unlock(vers, a), LCK_GRANTED)
            self.assertEqual(self.lock(vers, a, exclusive=False), LCK_GRANTED)
            self.assertEqual(self.nlm_test(vers, b, exclusive=False), (LCK_GRANTED, None))
            self.assertEqual(self.nlm_test(vers, b, exclusive=True)[0], LCK_DENIED)
            self.assertEqual(self.unlock(vers, a), LCK_GRANTED)
            self.assertEqual(self.nlm_test(vers, b), (LCK_GRANTED, None))
            self.assertEqual(self.lock(vers, b), LCK_GRANTED)
            self.assertEqual(self.unlock(vers, b), LCK_GRANTED)
            self.assertEqual(self.unlock(vers, b), LCK_GRANTED, "unlocking what is not held")

    def test_blocked_lock_cancelled(self):
        fh = self.fh(f"cancel-{self.TRANSPORT.__name__}")
        a = lock1(b"hostA", fh, b"oa", 1, 0, 0)  # the whole file
        b = lock1(b"hostB", fh, b"ob", 2, 10, 10)
        c = lock4(b"hostC", fh, b"oc", 3, 0, 0)
        self.assertEqual(self.lock(1, a), LCK_GRANTED)
        self.assertEqual(self.lock(1, b, block=True), LCK_BLOCKED)
        self.assertEqual(self.lock(1, b, block=True), LCK_BLOCKED, "a retransmission is still blocked")
        self.assertEqual(self.cancel(1, b), LCK_GRANTED)
        self.assertEqual(self.unlock(1, a), LCK_GRANTED)
        # the cancelled waiter never got the lock: a third owner sees the file free
        self.assertEqual(self.nlm_test(4, c), (LCK_GRANTED, None))
        self.assertEqual(self.lock(3, a), LCK_GRANTED)
        # cancelling a lock that is not queued (granted meanwhile) releases it
        self.assertEqual(self.cancel(3, a), LCK_GRANTED)
        self.assertEqual(self.nlm_test(4, c), (LCK_GRANTED, None))

    def test_v1_lock_conflicts_with_v4(self):
        fh = self.fh(f"v1v4-{self.TRANSPORT.__name__}")
        a = lock1(b"oldhost", fh, b"v1owner", 7, 4096, 512)
        self.assertEqual(self.lock(1, a), LCK_GRANTED)
        b4 = lock4(b"newhost", fh, b"v4owner", 9, 4000, 200)
        self.assertEqual(self.lock(4, b4), LCK_DENIED)
        st, h = self.nlm_test(4, b4)
        self.assertEqual((st, h), (LCK_DENIED, {"exclusive": 1, "svid": 7, "oh": b"v1owner", "off": 4096,
                                                "len": 512}))
        self.assertEqual(self.unlock(1, a), LCK_GRANTED)
        self.assertEqual(self.lock(4, b4), LCK_GRANTED)
        self.assertEqual(self.unlock(4, b4), LCK_GRANTED)

    def test_v4_lock_conflicts_with_v1_and_is_clamped(self):
        fh = self.fh(f"v4v1-{self.TRANSPORT.__name__}")
        t1 = lock1(b"oldhost", fh, b"v1owner", 7, 0, 0)  # the whole file
        # a v4 lock that fits in 32 bits comes back as it is
        a4 = lock4(b"newhost", fh, b"v4owner", 9, 100, 50)
        self.assertEqual(self.lock(4, a4), LCK_GRANTED)
        self.assertEqual(self.lock(1, t1), LCK_DENIED)
        self.assertEqual(self.nlm_test(3, t1), (LCK_DENIED, {"exclusive": 1, "svid": 9, "oh": b"v4owner", "off": 100,
                                                         "len": 50}))
        self.assertEqual(self.unlock(4, a4), LCK_GRANTED)
        # a length past 2^32 is clamped to 2^32 - 1
        a4 = lock4(b"newhost", fh, b"v4owner", 9, 16, (1 << 32) + 10)
        self.assertEqual(self.lock(4, a4, exclusive=False), LCK_GRANTED)
        self.assertEqual(self.nlm_test(1, t1), (LCK_DENIED, {"exclusive": 0, "svid": 9, "oh": b"v4owner", "off": 16,
                                                         "len": U32_MAX}))
        self.assertEqual(self.unlock(4, a4), LCK_GRANTED)
        # an offset past 2^32 too; a length 0 (to the end) stays 0
        a4 = lock4(b"newhost", fh, b"v4owner", 9, 1 << 40, 0)
        self.assertEqual(self.lock(4, a4), LCK_GRANTED)
        self.assertEqual(self.nlm_test(1, t1), (LCK_DENIED, {"exclusive": 1, "svid": 9, "oh": b"v4owner",
                                                         "off": U32_MAX, "len": 0}))
        # a v1 range that ends below 2^32 does not reach it
        self.assertEqual(self.nlm_test(1, lock1(b"oldhost", fh, b"v1owner", 7, 0, U32_MAX)), (LCK_GRANTED, None))
        self.assertEqual(self.unlock(4, a4), LCK_GRANTED)
        self.assertEqual(self.nlm_test(1, t1), (LCK_GRANTED, None))

    def test_offsets_near_2_32(self):
        fh = self.fh(f"edge-{self.TRANSPORT.__name__}")
        probe = lock4(b"probe", fh, b"p", 5, 0, 0)
        # the last byte of the 32-bit space
        a = lock1(b"edgehost", fh, b"e", 1, U32_MAX, 1)
        self.assertEqual(self.lock(1, a), LCK_GRANTED)
        self.assertEqual(self.nlm_test(4, probe)[1], {"exclusive": 1, "svid": 1, "oh": b"e", "off": U32_MAX, "len": 1})
        self.assertEqual(self.nlm_test(4, lock4(b"probe", fh, b"p", 5, 1 << 32, 1)), (LCK_GRANTED, None))
        self.assertEqual(self.unlock(1, a), LCK_GRANTED)
        # a range crossing 2^32 is widened exactly (unsigned), not wrapped
        a = lock1(b"edgehost", fh, b"e", 1, 0xFFFFFFF0, 0x20)
        self.assertEqual(self.lock(1, a), LCK_GRANTED)
        st, h = self.nlm_test(4, lock4(b"probe", fh, b"p", 5, (1 << 32) + 0xF, 1))
        self.assertEqual((st, h["off"], h["len"]), (LCK_DENIED, 0xFFFFFFF0, 0x20))
        self.assertEqual(self.nlm_test(4, lock4(b"probe", fh, b"p", 5, (1 << 32) + 0x10, 1)), (LCK_GRANTED, None))
        self.assertEqual(self.nlm_test(4, lock4(b"probe", fh, b"p", 5, 0, 0xFFFFFFF0)), (LCK_GRANTED, None))
        self.assertEqual(self.unlock(1, a), LCK_GRANTED)
        # l_len 0 from the last 32-bit offset: to the end of the file, 64-bit included
        a = lock1(b"edgehost", fh, b"e", 1, U32_MAX, 0)
        self.assertEqual(self.lock(3, a), LCK_GRANTED)
        st, h = self.nlm_test(4, lock4(b"probe", fh, b"p", 5, 1 << 62, 1))
        self.assertEqual((st, h["off"], h["len"]), (LCK_DENIED, U32_MAX, 0))
        self.assertEqual(self.unlock(3, lock1(b"edgehost", fh, b"e", 1, 0, 0)), LCK_GRANTED)
        self.assertEqual(self.nlm_test(4, probe), (LCK_GRANTED, None))

    def test_v3_share_unshare(self):
        fh = self.fh(f"share-{self.TRANSPORT.__name__}")
        # A reads and denies writers; B wants to write
        self.assertEqual(self.share(3, fh, b"A", fsm_DW, fsa_R), LCK_GRANTED)
        self.assertEqual(self.share(3, fh, b"B", fsm_DN, fsa_W), LCK_DENIED)
        self.assertEqual(self.share(4, fh, b"B", fsm_DN, fsa_W), LCK_DENIED, "one table for v3 and v4")
        self.assertEqual(self.share(3, fh, b"B", fsm_DN, fsa_R), LCK_GRANTED, "readers are fine")
        self.assertEqual(self.share(3, fh, b"A", fsm_DW, fsa_R, proc=UNSHARE), LCK_GRANTED)
        self.assertEqual(self.share(3, fh, b"C", fsm_DN, fsa_W), LCK_GRANTED)
        self.assertEqual(self.share(3, fh, b"B", 0, 0, proc=UNSHARE), LCK_GRANTED)
        self.assertEqual(self.share(3, fh, b"C", 0, 0, proc=UNSHARE), LCK_GRANTED)
        # not in version 1
        args = w.opaque(b"sh") + w.opaque(b"h") + w.opaque(fh) + w.opaque(b"A") + u32(0) + u32(1) + u32(0)
        self.assertEqual(self.raw(1, SHARE, args)["stat"], w.PROC_UNAVAIL)

    def test_v3_nm_lock_and_free_all(self):
        fh = self.fh(f"freeall-{self.TRANSPORT.__name__}")
        host = b"rebooted-" + self.TRANSPORT.__name__.encode()
        self.assertEqual(self.lock(3, lock1(host, fh, b"o1", 1, 0, 10), proc=NM_LOCK), LCK_GRANTED)
        self.assertEqual(self.lock(1, lock1(host, fh, b"o2", 2, 20, 10), exclusive=False), LCK_GRANTED)
        self.assertEqual(self.share(3, fh, b"o3", fsm_DW, fsa_R, host=host), LCK_GRANTED)
        other = lock1(b"survivor", fh, b"s", 9, 0, 0)
        self.assertEqual(self.nlm_test(1, other)[0], LCK_DENIED)
        # the host rebooted: FREE_ALL (void result) drops its locks and shares
        x = self.rpc(3, FREE_ALL, w.opaque(host) + u32(5))
        self.assertTrue(x.done())
        self.assertEqual(self.nlm_test(1, other), (LCK_GRANTED, None))
        self.assertEqual(self.share(3, fh, b"s", fsm_DN, fsa_W, host=b"survivor"), LCK_GRANTED)
        self.assertEqual(self.share(3, fh, b"s", 0, 0, proc=UNSHARE, host=b"survivor"), LCK_GRANTED)

    def test_v4_only_errors_are_narrowed(self):
        bad_fh = b"\x01" * 32  # an NFSv2-sized handle this server never issued: v4 STALE_FH
        a = lock1(b"h", bad_fh, b"o", 1, 0, 10)
        self.assertEqual(self.lock(1, a), LCK_DENIED_NOLOCKS)
        self.assertEqual(self.nlm_test(3, a), (LCK_DENIED_NOLOCKS, None))
        self.assertEqual(self.unlock(1, a), LCK_DENIED_NOLOCKS)
        self.assertEqual(self.share(3, bad_fh, b"o", fsm_DN, fsa_R), LCK_DENIED_NOLOCKS)
        self.assertEqual(self.lock(4, lock4(b"h", bad_fh, b"o", 1, 0, 10)), 7, "v4 keeps NLM4_STALE_FH")

    def test_server_side_granted_and_msg(self):
        fh = self.fh(f"msg-{self.TRANSPORT.__name__}")
        a = lock1(b"h", fh, b"o", 1, 0, 10)
        # GRANTED is a callback to clients: a server has nothing waiting
        x = self.rpc(1, GRANTED, w.opaque(b"g") + u32(1) + a)
        self.assertEqual(self.res(x, b"g"), LCK_DENIED)
        # TEST_MSG: a void reply; the answer goes to the client's lockd as TEST_RES
        self.assertTrue(self.rpc(1, TEST_MSG, w.opaque(b"m") + u32(1) + a).done())
        for proc in (12, 13, 14, 15):  # *_RES: accepted and ignored
            self.assertTrue(self.rpc(3, proc, w.opaque(b"r") + u32(LCK_GRANTED)).done())
        self.assertTrue(self.rpc(3, 11, w.opaque(b"r") + u32(LCK_DENIED) + u32(1) + u32(2) + w.opaque(b"o") +
                                 u32(0) + u32(1)).done())

    def test_garbage_args(self):
        fh = self.fh(f"garbage-{self.TRANSPORT.__name__}")
        al = lock1(b"host", fh, b"owner", 1, 0, 10)
        cases = [
            (1, TEST, w.opaque(b"c") + u32(1) + al),
            (1, LOCK, w.opaque(b"c") + u32(0) + u32(1) + al + u32(0) + u32(1)),
            (1, CANCEL, w.opaque(b"c") + u32(0) + u32(1) + al),
            (1, UNLOCK, w.opaque(b"c") + al),
            (1, GRANTED, w.opaque(b"c") + u32(1) + al),
            (3, TEST_MSG, w.opaque(b"c") + u32(1) + al),
            (3, 12, w.opaque(b"c") + u32(0)),
            (3, SHARE, w.opaque(b"c") + w.opaque(b"h") + w.opaque(fh) + w.opaque(b"o") + u32(0) + u32(1) + u32(0)),
            (3, NM_LOCK, w.opaque(b"c") + u32(0) + u32(1) + al + u32(0) + u32(1)),
            (3, FREE_ALL, w.opaque(b"host") + u32(1)),
        ]
        for vers, proc, args in cases:
            # every proper prefix of the arguments is short by at least one XDR unit
            for cut in range(0, len(args), 4):
                r = self.raw(vers, proc, args[:cut])
                self.assertEqual(r["stat"], w.GARBAGE_ARGS, f"v{vers} proc {proc} cut at {cut}")
        # v1 arguments sent as v4 are short (32-bit offset and length)
        self.assertEqual(self.raw(4, UNLOCK, w.opaque(b"c") + al)["stat"], w.GARBAGE_ARGS)
        # bad enum values, bools and oversized lengths
        bad = [
            (3, SHARE, w.opaque(b"c") + w.opaque(b"h") + w.opaque(fh) + w.opaque(b"o") + u32(4) + u32(1) + u32(0)),
            (3, SHARE, w.opaque(b"c") + w.opaque(b"h") + w.opaque(fh) + w.opaque(b"o") + u32(0) + u32(9) + u32(0)),
            (1, TEST, w.opaque(b"c") + u32(2) + al),
            (1, UNLOCK, w.opaque(b"c" * 1025) + al),
            (1, UNLOCK, w.opaque(b"c") + w.opaque(b"h" * 1025) + al[8:]),
            (3, FREE_ALL, w.opaque(b"n" * 1026) + u32(1)),
            (3, 12, w.opaque(b"c") + u32(5)),  # no LCK_* status 5 in v1/v3
            (1, UNLOCK, u32(0xFFFFFFF0)),
        ]
        for vers, proc, args in bad:
            self.assertEqual(self.raw(vers, proc, args)["stat"], w.GARBAGE_ARGS, f"v{vers} proc {proc}")
        self.assertTrue(self.srv.alive())


class NlmV1V3Tcp(NlmV1V3Base, unittest.TestCase):
    TRANSPORT = Tcp

    @classmethod
    def setUpClass(cls):
        cls.start_server()

    @classmethod
    def tearDownClass(cls):
        cls.stop_server()


class NlmV1V3Udp(NlmV1V3Base, unittest.TestCase):
    TRANSPORT = Udp

    @classmethod
    def setUpClass(cls):
        cls.start_server()

    @classmethod
    def tearDownClass(cls):
        cls.stop_server()


if __name__ == "__main__":
    run_unittests(globals())
