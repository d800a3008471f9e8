#!/usr/bin/env python3
"""The duplicate request cache against a running peernfsd: a retransmission (same client
address and port, same xid and arguments) of a non-idempotent call gets the reply of the
first run, byte for byte, instead of running again (a second MKDIR would answer EXIST, a
second REMOVE NOENT). NFSv3 over TCP (same connection, and a reconnect from the same
port), over UDP, NFSv4.0 COMPOUNDs (pynfs RPLY14); idempotent calls and 4.0 COMPOUNDs
without a change are never cached."""
import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcwire as w  # noqa: E402
from peernfsd_proc import Peernfsd, run_unittests  # noqa: E402

NFS_PROG, MOUNT_PROG = 100003, 100005
NFS3_GETATTR, NFS3_LOOKUP, NFS3_WRITE, NFS3_MKDIR, NFS3_REMOVE, NFS3_RMDIR = 1, 3, 7, 9, 12, 13
FILE_SYNC = 2
NFS3_OK, NFS3ERR_NOENT, NFS3ERR_EXIST = 0, 2, 17
MOUNTPROC3_MNT = 1

OP_CREATE, OP_GETATTR, OP_LOOKUP, OP_PUTROOTFH, OP_GETFH, OP_WRITE = 6, 9, 15, 24, 10, 38
FATTR4_CHANGE = 3
NF4DIR = 2
NFS4_OK, NFS4ERR_NOENT, NFS4ERR_EXIST = 0, 2, 17

BINARY = None


def u32(v):
    return w.u32(v)


def sattr3_mode(mode):
    # set mode; uid, gid, size unset; atime, mtime DONT_CHANGE
    return u32(1) + u32(mode) + u32(0) + u32(0) + u32(0) + u32(0) + u32(0)


def compound40(ops, tag=b"drc"):
    return w.opaque(tag) + u32(0) + u32(len(ops)) + b"".join(ops)


def nfs3_status(reply):
    r = w.parse_reply(reply)
    assert (r["kind"], r["stat"]) == ("accepted", w.SUCCESS), r
    return struct.unpack(">I", r["body"][:4])[0]


def nfs4_status(reply):
    r = w.parse_reply(reply)
    assert (r["kind"], r["stat"]) == ("accepted", w.SUCCESS), r
    return struct.unpack(">I", r["body"][:4])[0]


class Drc(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # insecure: the test's sockets are on unreserved ports
        cls.srv = Peernfsd(BINARY, exports_opts="rw,no_root_squash,insecure",
                           extra_args=("--grace", "0", "--no-statd")).start()
        cls.xid = 0x6000
        c = w.Conn("127.0.0.1", cls.srv.port)
        try:
            cls.xid += 1
            c.send(w.record(w.call(cls.xid, MOUNT_PROG, 3, MOUNTPROC3_MNT, w.opaque(cls.srv.export.encode()))))
            body = w.parse_reply(c.recv_record())["body"]
            st, fhlen = struct.unpack(">II", body[:8])
            assert st == 0, f"MNT status {st}"
            cls.root = body[8:8 + fhlen]
        finally:
            c.close()

    @classmethod
    def tearDownClass(cls):
        log = cls.srv.stop_and_cleanup()
        # the counters are logged at shutdown for operators
        if "duplicate request cache: hits" not in log:
            raise AssertionError("no duplicate request cache counters in the log:\n" + log)

    def setUp(self):
        self.c = w.Conn("127.0.0.1", self.srv.port)
        self.addCleanup(self.c.close)

    def next_xid(self):
        Drc.xid += 1
        return Drc.xid

    def roundtrip(self, rec, conn=None):
        conn = conn or self.c
        conn.send(rec)
        return conn.recv_record()

    def mkdir_rec(self, xid, name):
        args = w.opaque(self.root) + w.opaque(name.encode()) + sattr3_mode(0o755)
        return w.record(w.call(xid, NFS_PROG, 3, NFS3_MKDIR, args))

    def remove_rec(self, xid, name, proc=NFS3_REMOVE):
        return w.record(w.call(xid, NFS_PROG, 3, proc, w.opaque(self.root) + w.opaque(name.encode())))

    def lookup_fh(self, name):
        rec = w.record(w.call(self.next_xid(), NFS_PROG, 3, NFS3_LOOKUP, w.opaque(self.root) + w.opaque(name.encode())))
        body = w.parse_reply(self.roundtrip(rec))["body"]
        st, fhlen = struct.unpack(">II", body[:8])
        self.assertEqual(st, NFS3_OK)
        return body[8:8 + fhlen]

    # ---- NFSv3 over TCP ----

    def test_v3_mkdir_replayed_same_connection(self):
        xid = self.next_xid()
        rec = self.mkdir_rec(xid, "d-tcp")
        first = self.roundtrip(rec)
        self.assertEqual(nfs3_status(first), NFS3_OK, self.srv.read_log())
        second = self.roundtrip(rec)
        self.assertEqual(second, first, "a retransmission gets the first reply, byte for byte")
        third = self.roundtrip(self.mkdir_rec(self.next_xid(), "d-tcp"))
        self.assertEqual(nfs3_status(third), NFS3ERR_EXIST, "a new xid runs again")
        self.assertTrue(os.path.isdir(os.path.join(self.srv.export, "d-tcp")))

    def test_v3_remove_replayed(self):
        path = os.path.join(self.srv.export, "f-remove")
        open(path, "wb").close()
        rec = self.remove_rec(self.next_xid(), "f-remove")
        first = self.roundtrip(rec)
        self.assertEqual(nfs3_status(first), NFS3_OK)
        self.assertFalse(os.path.exists(path))
        self.assertEqual(self.roundtrip(rec), first)
        self.assertEqual(nfs3_status(self.roundtrip(self.remove_rec(self.next_xid(), "f-remove"))), NFS3ERR_NOENT)

    def test_v3_same_xid_other_arguments_runs(self):
        # a client that reuses an xid for a different call (e.g. after its restart) is not
        # answered from the cache: the key covers the arguments
        xid = self.next_xid()
        self.assertEqual(nfs3_status(self.roundtrip(self.mkdir_rec(xid, "d-args-1"))), NFS3_OK)
        self.assertEqual(nfs3_status(self.roundtrip(self.mkdir_rec(xid, "d-args-2"))), NFS3_OK)
        self.assertTrue(os.path.isdir(os.path.join(self.srv.export, "d-args-2")))

    def test_v3_replay_after_reconnect_from_same_port(self):
        # what the Linux client does after a lost connection: same source port, same xid
        def connect(port):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.settimeout(5.0)
            s.bind(("127.0.0.1", port))
            s.connect(("127.0.0.1", self.srv.port))
            c = w.Conn.__new__(w.Conn)
            c.s = s
            return c

        c1 = connect(0)
        port = c1.s.getsockname()[1]
        rec = self.mkdir_rec(self.next_xid(), "d-reconnect")
        first = self.roundtrip(rec, c1)
        self.assertEqual(nfs3_status(first), NFS3_OK)
        # reset (no TIME_WAIT), so the same port can connect again at once
        c1.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c1.close()
        c2 = None
        for _ in range(50):
            try:
                c2 = connect(port)
                break
            except OSError:
                time.sleep(0.1)
        self.assertIsNotNone(c2, "could not reconnect from the same port")
        self.addCleanup(c2.close)
        self.assertEqual(self.roundtrip(rec, c2), first)
        # from another port the same xid is another client's call
        self.assertEqual(nfs3_status(self.roundtrip(rec)), NFS3ERR_EXIST)

    def test_v3_pipelined_duplicate(self):
        # the retransmission arrives while the original may still run (two records in one
        # segment; the server may hand one to another thread): it is answered from the
        # cache or dropped, never run a second time
        rec = self.mkdir_rec(self.next_xid(), "d-pipelined")
        self.c.send(rec + rec)
        first = self.c.recv_record()
        self.assertEqual(nfs3_status(first), NFS3_OK)
        self.c.s.settimeout(1.0)
        try:
            second = self.c.recv_record()
            self.assertEqual(second, first)
        except socket.timeout:
            pass  # dropped as in progress
        self.c.s.settimeout(5.0)
        self.assertEqual(nfs3_status(self.roundtrip(self.remove_rec(self.next_xid(), "d-pipelined",
                                                                    NFS3_RMDIR))), NFS3_OK)

    def test_v3_getattr_is_not_cached(self):
        path = os.path.join(self.srv.export, "f-getattr")
        with open(path, "wb") as f:
            f.write(b"x" * 10)
        fh = self.lookup_fh("f-getattr")
        rec = w.record(w.call(self.next_xid(), NFS_PROG, 3, NFS3_GETATTR, w.opaque(fh)))

        def size(reply):
            body = w.parse_reply(reply)["body"]
            self.assertEqual(struct.unpack(">I", body[:4])[0], NFS3_OK)
            return struct.unpack(">Q", body[4 + 20:4 + 28])[0]

        self.assertEqual(size(self.roundtrip(rec)), 10)
        with open(path, "ab") as f:
            f.write(b"y" * 5)
        self.assertEqual(size(self.roundtrip(rec)), 15, "an idempotent call runs again")

    def test_v3_stable_write_replayed(self):
        # WRITE runs on the blocking pool; its reply's attributes (mtime, ctime) would
        # differ if it ran again
        path = os.path.join(self.srv.export, "f-write3")
        open(path, "wb").close()
        fh = self.lookup_fh("f-write3")
        data = b"stable data"
        args = w.opaque(fh) + struct.pack(">Q", 0) + u32(len(data)) + u32(FILE_SYNC) + w.opaque(data)
        rec = w.record(w.call(self.next_xid(), NFS_PROG, 3, NFS3_WRITE, args))
        first = self.roundtrip(rec)
        self.assertEqual(nfs3_status(first), NFS3_OK)
        time.sleep(0.05)
        self.assertEqual(self.roundtrip(rec), first)
        time.sleep(0.05)
        other = self.roundtrip(w.record(w.call(self.next_xid(), NFS_PROG, 3, NFS3_WRITE, args)))
        self.assertEqual(nfs3_status(other), NFS3_OK)
        self.assertNotEqual(other[4:], first[4:], "a new xid runs again (new ctime)")

    # ---- NFSv3 over UDP ----

    def test_v3_udp_mkdir_replayed(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.settimeout(5.0)
        s.connect(("127.0.0.1", self.srv.port))
        xid = self.next_xid()
        args = w.opaque(self.root) + w.opaque(b"d-udp") + sattr3_mode(0o700)
        msg = w.call(xid, NFS_PROG, 3, NFS3_MKDIR, args)
        s.send(msg)
        first = s.recv(65536)
        self.assertEqual(nfs3_status(first), NFS3_OK)
        s.send(msg)
        self.assertEqual(s.recv(65536), first)
        s.send(w.call(self.next_xid(), NFS_PROG, 3, NFS3_MKDIR, args))
        self.assertEqual(nfs3_status(s.recv(65536)), NFS3ERR_EXIST)

    # ---- NFSv4.0 ----

    def lookups(self):
        return [u32(OP_LOOKUP) + w.opaque(p.encode()) for p in self.srv.export.split("/") if p]

    def test_v40_create_replayed(self):
        # pynfs RPLY14: the same CREATE COMPOUND three times with one xid, 0.3 s apart
        ops = [u32(OP_PUTROOTFH)] + self.lookups() + [
            u32(OP_CREATE) + u32(NF4DIR) + w.opaque(b"d-v40") + u32(0) + w.opaque(b""), u32(OP_GETFH)]
        rec = w.record(w.call(self.next_xid(), NFS_PROG, 4, 1, compound40(ops)))
        first = self.roundtrip(rec)
        self.assertEqual(nfs4_status(first), NFS4_OK, self.srv.read_log())
        for _ in range(2):
            time.sleep(0.3)
            again = self.roundtrip(rec)
            self.assertEqual(nfs4_status(again), NFS4_OK)
            self.assertEqual(again, first)
        rec = w.record(w.call(self.next_xid(), NFS_PROG, 4, 1, compound40(ops)))
        self.assertEqual(nfs4_status(self.roundtrip(rec)), NFS4ERR_EXIST, "a new xid runs again")

    def test_v40_stable_write_replayed(self):
        # a FILE_SYNC WRITE moves the COMPOUND to the blocking pool (decoded twice, cached
        # once); the change attribute after it would differ if it ran again
        open(os.path.join(self.srv.export, "f-write4"), "wb").close()
        data = b"v4.0 stable data"
        anonymous = b"\0" * 16
        ops = [u32(OP_PUTROOTFH)] + self.lookups() + [
            u32(OP_LOOKUP) + w.opaque(b"f-write4"),
            u32(OP_WRITE) + anonymous + struct.pack(">Q", 0) + u32(FILE_SYNC) + w.opaque(data),
            u32(OP_GETATTR) + u32(1) + u32(1 << FATTR4_CHANGE)]
        rec = w.record(w.call(self.next_xid(), NFS_PROG, 4, 1, compound40(ops)))
        first = self.roundtrip(rec)
        self.assertEqual(nfs4_status(first), NFS4_OK, self.srv.read_log())
        time.sleep(0.05)
        self.assertEqual(self.roundtrip(rec), first)
        time.sleep(0.05)
        other = self.roundtrip(w.record(w.call(self.next_xid(), NFS_PROG, 4, 1, compound40(ops))))
        self.assertEqual(nfs4_status(other), NFS4_OK)
        self.assertNotEqual(other[4:], first[4:], "a new xid runs again (new change attribute)")

    def test_v40_read_only_compound_is_not_cached(self):
        ops = [u32(OP_PUTROOTFH)] + self.lookups() + [u32(OP_LOOKUP) + w.opaque(b"f-v40-later")]
        rec = w.record(w.call(self.next_xid(), NFS_PROG, 4, 1, compound40(ops)))
        self.assertEqual(nfs4_status(self.roundtrip(rec)), NFS4ERR_NOENT)
        open(os.path.join(self.srv.export, "f-v40-later"), "wb").close()
        self.assertEqual(nfs4_status(self.roundtrip(rec)), NFS4_OK, "a COMPOUND changing nothing runs again")


if __name__ == "__main__":
    run_unittests(globals())
