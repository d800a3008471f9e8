#!/usr/bin/env python3
"""Hostile and malformed input against a running peernfsd: every case gets the right
RPC reject/error (or a closed connection), and the server keeps serving the next
well-formed client. Also: pipelining, out-of-order-safe xid matching, IPv6, clean
SIGTERM shutdown.

    test_badinput.py --peernfsd build/bin/peernfsd
"""
import struct
import sys
import unittest

import rpcwire as w
from peernfsd_proc import Peernfsd, run_unittests

NFS_PROG, MOUNT_PROG, NFSACL_PROG = 100003, 100005, 100227
NFS3_GETATTR, NFS3_FSINFO = 1, 19
NFS3ERR_BADHANDLE = 10001

BINARY = None


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Peernfsd(BINARY).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_and_cleanup()

    def conn(self, host="127.0.0.1"):
        c = w.Conn(host, self.srv.port)
        self.addCleanup(c.close)
        return c

    def rpc(self, msg, host="127.0.0.1"):
        c = self.conn(host)
        c.send(w.record(msg))
        return w.parse_reply(c.recv_record())

    def assert_still_serving(self):
        """A new, well-formed client gets a NULL reply."""
        self.assertTrue(self.srv.alive(), self.srv.read_log())
        r = self.rpc(w.call(0x5151, NFS_PROG, 3, 0))
        self.assertEqual((r["xid"], r["kind"], r["stat"]), (0x5151, "accepted", w.SUCCESS))

    def tearDown(self):
        self.assert_still_serving()

    def test_null_v4_and_v6(self):
        for host in ("127.0.0.1", "::1"):
            r = self.rpc(w.call(1, NFS_PROG, 3, 0), host)
            self.assertEqual((r["kind"], r["stat"], r["body"]), ("accepted", w.SUCCESS, b""))

    def test_unknown_program(self):
        r = self.rpc(w.call(2, NFSACL_PROG, 3, 0))
        self.assertEqual((r["kind"], r["stat"]), ("accepted", w.PROG_UNAVAIL))

    def test_unknown_version(self):
        r = self.rpc(w.call(3, NFS_PROG, 2, 0))
        self.assertEqual(r["stat"], w.PROG_MISMATCH)
        self.assertEqual((r["low"], r["high"]), (3, 4))
        r = self.rpc(w.call(3, MOUNT_PROG, 2, 0))
        self.assertEqual(r["stat"], w.PROG_MISMATCH)
        self.assertEqual((r["low"], r["high"]), (1, 3))

    def test_unknown_procedure(self):
        r = self.rpc(w.call(4, NFS_PROG, 3, 22))
        self.assertEqual(r["stat"], w.PROC_UNAVAIL)
        r = self.rpc(w.call(4, NFS_PROG, 3, 0xFFFFFFFF))
        self.assertEqual(r["stat"], w.PROC_UNAVAIL)

    def test_rpc_version_mismatch(self):
        r = self.rpc(w.call(5, NFS_PROG, 3, 0, rpcvers=3))
        self.assertEqual((r["kind"], r["reject"], r["detail"]), ("denied", w.RPC_MISMATCH, (2, 2)))

    def test_authsys_10k_groups(self):
        cred = w.auth_sys(uid=1, gid=1, gids=range(10000))
        r = self.rpc(w.call(6, NFS_PROG, 3, 0, cred=cred))
        self.assertEqual((r["kind"], r["reject"], r["detail"]), ("denied", w.AUTH_ERROR, (w.AUTH_BADCRED,)))

    def test_authsys_17_groups_in_small_body(self):
        cred = w.auth_sys(uid=1, gid=1, gids=range(17))
        r = self.rpc(w.call(7, NFS_PROG, 3, 0, cred=cred))
        self.assertEqual((r["kind"], r["reject"], r["detail"]), ("denied", w.AUTH_ERROR, (w.AUTH_BADCRED,)))

    def test_auth_none_too_weak_for_nfs(self):
        r = self.rpc(w.call(8, NFS_PROG, 3, NFS3_GETATTR, w.opaque(b"x" * 8), cred=w.auth_none()))
        self.assertEqual((r["kind"], r["reject"], r["detail"]), ("denied", w.AUTH_ERROR, (w.AUTH_TOOWEAK,)))
        # MOUNT's EXPORT (showmount -e) works without credentials
        r = self.rpc(w.call(8, MOUNT_PROG, 3, 5, cred=w.auth_none()))
        self.assertEqual((r["kind"], r["stat"]), ("accepted", w.SUCCESS))

    def test_garbage_args(self):
        # fh length larger than NFS3_FHSIZE (64), and a truncated argument body
        for args in (w.u32(1000) + b"\0" * 1000, w.u32(8) + b"abc", b"\x01"):
            r = self.rpc(w.call(9, NFS_PROG, 3, NFS3_GETATTR, args))
            self.assertEqual((r["kind"], r["stat"]), ("accepted", w.GARBAGE_ARGS), args)

    def test_forged_handle(self):
        r = self.rpc(w.call(10, NFS_PROG, 3, NFS3_GETATTR, w.opaque(bytes(range(40)))))
        self.assertEqual((r["kind"], r["stat"]), ("accepted", w.SUCCESS))
        (status,) = struct.unpack(">I", r["body"][:4])
        self.assertIn(status, (NFS3ERR_BADHANDLE, 70))  # BADHANDLE or STALE

    def test_truncated_record_then_close(self):
        c = self.conn()
        c.send(w.u32(w.LAST_FRAG | 100) + b"\0" * 50)
        c.close()

    def test_truncated_header(self):
        # a complete record too short to hold an RPC header: dropped, connection usable
        c = self.conn()
        c.send(w.record(b"\0\0\0\x01"))
        c.send(w.record(w.call(11, NFS_PROG, 3, 0)))
        r = w.parse_reply(c.recv_record())
        self.assertEqual((r["xid"], r["stat"]), (11, w.SUCCESS))

    def test_4gib_fragment_closes_connection(self):
        c = self.conn()
        c.send(w.u32(0xFFFFFFFF) + b"\0" * 64)
        self.assertTrue(c.is_closed(), "server must close a connection announcing a 2^31-1 byte fragment")

    def test_oversize_multi_fragment_record(self):
        c = self.conn()
        chunk = b"\0" * (1 << 20)
        try:
            for _ in range(8):  # 8 MiB in non-last fragments: over the 4 MiB + 64 KiB limit
                c.send(w.u32(len(chunk)) + chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assertTrue(c.is_closed())

    def test_pipelined_calls_matched_by_xid(self):
        c = self.conn()
        c.send(b"".join(w.record(w.call(1000 + i, NFS_PROG, 3, 0)) for i in range(200)))
        xids = sorted(w.parse_reply(c.recv_record())["xid"] for _ in range(200))
        self.assertEqual(xids, list(range(1000, 1200)))

    def test_multi_fragment_call(self):
        msg = w.call(12, NFS_PROG, 3, 0)
        c = self.conn()
        c.send(w.u32(10) + msg[:10] + w.u32(w.LAST_FRAG | (len(msg) - 10)) + msg[10:])
        r = w.parse_reply(c.recv_record())
        self.assertEqual((r["xid"], r["stat"]), (12, w.SUCCESS))

    def test_reply_message_ignored(self):
        c = self.conn()
        c.send(w.record(w.u32(13) + w.u32(w.REPLY) + w.u32(0) * 4))
        c.send(w.record(w.call(14, NFS_PROG, 3, 0)))
        self.assertEqual(w.parse_reply(c.recv_record())["xid"], 14)


if __name__ == "__main__":
    run_unittests(globals())
