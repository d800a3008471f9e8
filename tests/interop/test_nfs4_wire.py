#!/usr/bin/env python3
"""NFSv4 COMPOUND rules on the wire against a running peernfsd (RFC 7530 15.2, RFC 8881
2.10.6 and 15.2): minor version mismatch, OP_ILLEGAL, BADXDR, op-count limits, the 4.1
session rules and the slot reply cache (a retransmission gets the same bytes)."""
import argparse
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcwire as w  # noqa: E402
from peernfsd_proc import Peernfsd  # noqa: E402

NFS_PROG = 100003
BINARY = None

OP_ACCESS, OP_GETATTR, OP_GETFH, OP_LOOKUP, OP_PUTFH, OP_PUTROOTFH = 3, 9, 10, 15, 22, 24
OP_READDIR, OP_SAVEFH, OP_RESTOREFH, OP_SETCLIENTID, OP_SETCLIENTID_CONFIRM = 26, 32, 31, 35, 36
OP_EXCHANGE_ID, OP_CREATE_SESSION, OP_DESTROY_SESSION, OP_SEQUENCE = 42, 43, 44, 53
OP_DESTROY_CLIENTID, OP_RECLAIM_COMPLETE, OP_ILLEGAL = 57, 58, 10044

NFS4_OK, NFS4ERR_NOFILEHANDLE, NFS4ERR_RESTOREFH, NFS4ERR_BADXDR = 0, 10020, 10030, 10036
NFS4ERR_MINOR_VERS_MISMATCH, NFS4ERR_RESOURCE, NFS4ERR_OP_ILLEGAL = 10021, 10018, 10044
NFS4ERR_BADHANDLE, NFS4ERR_NOTSUPP, NFS4ERR_SEQ_MISORDERED, NFS4ERR_SEQUENCE_POS = 10001, 10004, 10063, 10064
NFS4ERR_OP_NOT_IN_SESSION, NFS4ERR_NOT_ONLY_OP, NFS4ERR_TOO_MANY_OPS = 10071, 10081, 10070
NFS4ERR_BADSESSION, NFS4ERR_STALE_CLIENTID, NFS4ERR_INVAL = 10052, 10022, 22


def u32(v):
    return w.u32(v)


def u64(v):
    return struct.pack(">Q", v)


def bitmap(*attrs):
    words = [0] * (max(attrs) // 32 + 1 if attrs else 0)
    for a in attrs:
        words[a // 32] |= 1 << (a % 32)
    return u32(len(words)) + b"".join(u32(x) for x in words)


def compound(ops, minor=0, tag=b"t"):
    return w.opaque(tag) + u32(minor) + u32(len(ops)) + b"".join(ops)


def parse_compound(body):
    """-> (status, tag, [(opnum, status, rest-of-body-after-this-op-start)])"""
    status, tlen = struct.unpack(">II", body[:8])
    off = 8 + ((tlen + 3) & ~3)
    tag = body[8:8 + tlen]
    (n,) = struct.unpack(">I", body[off:off + 4])
    off += 4
    results = []
    # Results are variable length: report the first op fully and the statuses we can
    # find for fixed-size results; tests only look at what they need.
    for _ in range(n):
        opnum, st = struct.unpack(">II", body[off:off + 8])
        results.append((opnum, st, body[off + 8:]))
        off = None  # callers that need further results parse them themselves
        break
    return status, tag, n, results


def op_putrootfh():
    return u32(OP_PUTROOTFH)


def op_getfh():
    return u32(OP_GETFH)


def op_getattr(*attrs):
    return u32(OP_GETATTR) + bitmap(*attrs)


def op_sequence(sessionid, seq, slot=0, highest=0, cachethis=True):
    return u32(OP_SEQUENCE) + sessionid + u32(seq) + u32(slot) + u32(highest) + u32(1 if cachethis else 0)


def chan_attrs(maxreq=1049620, maxresp=1049480, cached=7584, maxops=16, reqs=8):
    return u32(0) + u32(maxreq) + u32(maxresp) + u32(cached) + u32(maxops) + u32(reqs) + u32(0)


class Nfs4Wire(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # insecure: the test's sockets are on unreserved ports
        cls.srv = Peernfsd(BINARY, exports_opts="rw,no_root_squash,insecure").start()
        cls.xid = 0x4000

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.srv.stop()
            if rc != 0:
                raise AssertionError(f"peernfsd exit status {rc} after SIGTERM:\n{cls.srv.read_log()}")
        finally:
            cls.srv.cleanup()

    def setUp(self):
        self.c = w.Conn("127.0.0.1", self.srv.port)
        self.addCleanup(self.c.close)

    def call(self, args, proc=1, xid=None):
        Nfs4Wire.xid += 1
        xid = Nfs4Wire.xid if xid is None else xid
        self.c.send(w.record(w.call(xid, NFS_PROG, 4, proc, args)))
        r = w.parse_reply(self.c.recv_record())
        self.assertEqual(r["xid"], xid)
        return r

    def compound(self, ops, minor=0, tag=b"t"):
        r = self.call(compound(ops, minor, tag))
        self.assertEqual((r["kind"], r["stat"]), ("accepted", w.SUCCESS), self.srv.read_log())
        return r["body"]

    def test_null(self):
        r = self.call(b"", proc=0)
        self.assertEqual((r["stat"], r["body"]), (w.SUCCESS, b""))

    def test_minor_version_mismatch(self):
        body = self.compound([op_putrootfh()], minor=99, tag=b"hello")
        st, tag, n, _ = parse_compound(body)
        self.assertEqual((st, tag, n), (NFS4ERR_MINOR_VERS_MISMATCH, b"hello", 0))

    def test_illegal_op(self):
        body = self.compound([op_putrootfh(), u32(2)])
        st, _, n, res = parse_compound(body)
        self.assertEqual((st, n), (NFS4ERR_OP_ILLEGAL, 2))
        # the second result is OP_ILLEGAL / NFS4ERR_OP_ILLEGAL
        self.assertTrue(body.endswith(u32(OP_ILLEGAL) + u32(NFS4ERR_OP_ILLEGAL)))

    def test_41_op_in_40_is_illegal(self):
        body = self.compound([u32(OP_SEQUENCE) + b"\0" * 32])
        st, _, n, res = parse_compound(body)
        self.assertEqual((st, n, res[0][0]), (NFS4ERR_OP_ILLEGAL, 1, OP_ILLEGAL))

    def test_truncated_op_is_badxdr(self):
        body = self.compound([op_putrootfh(), u32(OP_GETATTR) + u32(5)])
        st, _, n, _ = parse_compound(body)
        self.assertEqual((st, n), (NFS4ERR_BADXDR, 2))
        self.assertTrue(body.endswith(u32(OP_GETATTR) + u32(NFS4ERR_BADXDR)))

    def test_garbage_header(self):
        r = self.call(u32(0xFFFFFFF0))
        self.assertEqual(r["stat"], w.GARBAGE_ARGS)

    def test_nofilehandle(self):
        body = self.compound([op_getfh()])
        st, _, n, res = parse_compound(body)
        self.assertEqual((st, n, res[0][:2]), (NFS4ERR_NOFILEHANDLE, 1, (OP_GETFH, NFS4ERR_NOFILEHANDLE)))

    def test_restorefh_without_save(self):
        body = self.compound([op_putrootfh(), u32(OP_RESTOREFH)])
        st, _, n, _ = parse_compound(body)
        self.assertEqual((st, n), (NFS4ERR_RESTOREFH, 2))

    def test_bad_handle(self):
        body = self.compound([u32(OP_PUTFH) + w.opaque(b"\x01" * 20)])
        st, _, _, _ = parse_compound(body)
        self.assertEqual(st, NFS4ERR_BADHANDLE)

    def test_too_many_ops(self):
        body = self.compound([op_putrootfh()] * 1000)
        st, _, n, _ = parse_compound(body)
        self.assertEqual((st, n), (NFS4ERR_RESOURCE, 1))

    def test_root_getfh_getattr(self):
        # type (1) and fileid (20): the pseudo root is a directory
        body = self.compound([op_putrootfh(), op_getfh(), op_getattr(1, 20)])
        st, _, n, res = parse_compound(body)
        self.assertEqual((st, n), (NFS4_OK, 3))

    def test_lookup_export_and_back(self):
        path = [p for p in self.srv.export.split("/") if p]
        ops = [op_putrootfh()] + [u32(OP_LOOKUP) + w.opaque(p.encode()) for p in path] + [op_getattr(1)]
        body = self.compound(ops)
        st, _, n, _ = parse_compound(body)
        self.assertEqual((st, n), (NFS4_OK, len(ops)), "LOOKUP of the export path from the pseudo root")

    def results_tail(self, body, nfixed):
        """The bytes after the first nfixed status-only results (opnum + status each)."""
        (tlen,) = struct.unpack(">I", body[4:8])
        off = 8 + ((tlen + 3) & ~3) + 4 + 8 * nfixed
        return body[off:]

    def test_access_supported_by_type(self):
        # ACCESS4resok.supported holds only the bits meaningful for a directory (pynfs ACC2d):
        # READ 1, LOOKUP 2, MODIFY 4, EXTEND 8, DELETE 0x10 — never EXECUTE 0x20
        path = [p for p in self.srv.export.split("/") if p]
        lookups = [u32(OP_LOOKUP) + w.opaque(p.encode()) for p in path]
        for ops in ([op_putrootfh()], [op_putrootfh()] + lookups):
            for asked in (0x3F, 0x20, 0x02):
                body = self.compound(ops + [u32(OP_ACCESS) + u32(asked)])
                st, _, n, _ = parse_compound(body)
                self.assertEqual((st, n), (NFS4_OK, len(ops) + 1))
                opnum, ost, supported, access = struct.unpack(">IIII", self.results_tail(body, len(ops))[:16])
                self.assertEqual((opnum, ost), (OP_ACCESS, NFS4_OK))
                self.assertEqual(supported, asked & 0x1F, f"asked {asked:#x}")
                self.assertEqual(access & ~supported, 0)

    def test_bad_utf8_tag_is_inval(self):
        # pynfs COMP3: a tag that is not UTF-8 (or is U+FFFE) is INVAL, echoed, no results
        for minor in (0, 1):
            for tag in (b"\xc0\xc1", b"\xef\xbf\xbe", b"ok\xff"):
                body = self.compound([op_putrootfh()], minor=minor, tag=tag)
                st, rtag, n, _ = parse_compound(body)
                self.assertEqual((st, rtag, n), (NFS4ERR_INVAL, tag, 0), f"minor {minor} tag {tag!r}")
        body = self.compound([op_putrootfh()], tag="caf\u00e9".encode())
        self.assertEqual(parse_compound(body)[0], NFS4_OK)

    def test_lookup_noncharacter_is_inval(self):
        # pynfs LOOK7: U+FFFE / U+FFFF in a name are INVAL (not NOENT)
        for name in (b"\xef\xbf\xbe", b"a\xef\xbf\xbf"):
            body = self.compound([op_putrootfh(), u32(OP_LOOKUP) + w.opaque(name)])
            st, _, n, _ = parse_compound(body)
            self.assertEqual((st, n), (NFS4ERR_INVAL, 2), repr(name))

    # ---- 4.1 ----

    def exchange_id(self, owner):
        args = (u32(OP_EXCHANGE_ID) + b"\x01" * 8 + w.opaque(owner) + u32(0) + u32(0) + u32(0))
        body = self.compound([args], minor=1)
        st, _, n, res = parse_compound(body)
        self.assertEqual((st, n), (NFS4_OK, 1), self.srv.read_log())
        rest = res[0][2]
        clientid, seq = struct.unpack(">QI", rest[:12])
        return clientid, seq

    def create_session(self, clientid, seq):
        args = (u32(OP_CREATE_SESSION) + u64(clientid) + u32(seq) + u32(0) + chan_attrs() + chan_attrs() +
                u32(0x40000000) + u32(1) + u32(0))
        body = self.compound([args], minor=1)
        st, _, n, res = parse_compound(body)
        self.assertEqual((st, n), (NFS4_OK, 1), self.srv.read_log())
        return res[0][2][:16]

    def test_41_needs_sequence(self):
        body = self.compound([op_putrootfh()], minor=1)
        st, _, _, _ = parse_compound(body)
        self.assertEqual(st, NFS4ERR_OP_NOT_IN_SESSION)

    def test_41_exchange_id_not_only_op(self):
        args = (u32(OP_EXCHANGE_ID) + b"\x01" * 8 + w.opaque(b"owner-x") + u32(0) + u32(0) + u32(0))
        body = self.compound([args, op_putrootfh()], minor=1)
        st, _, _, _ = parse_compound(body)
        self.assertEqual(st, NFS4ERR_NOT_ONLY_OP)

    def test_41_40_only_op_notsupp(self):
        clientid, seq = self.exchange_id(b"owner-notsupp")
        sid = self.create_session(clientid, seq)
        body = self.compound([op_sequence(sid, 1), u32(OP_SETCLIENTID_CONFIRM) + u64(1) + b"\0" * 8], minor=1)
        st, _, n, _ = parse_compound(body)
        self.assertEqual((st, n), (NFS4ERR_NOTSUPP, 2))

    def test_41_session_replay_and_misordered(self):
        clientid, seq = self.exchange_id(b"owner-replay")
        sid = self.create_session(clientid, seq)
        ops = [op_sequence(sid, 1), op_putrootfh(), op_getfh()]
        first = self.compound(ops, minor=1)
        self.assertEqual(parse_compound(first)[0], NFS4_OK)
        again = self.compound(ops, minor=1)
        self.assertEqual(first, again, "a retransmission gets the cached reply")
        body = self.compound([op_sequence(sid, 5), op_putrootfh()], minor=1)
        self.assertEqual(parse_compound(body)[0], NFS4ERR_SEQ_MISORDERED)
        body = self.compound([op_sequence(sid, 2), op_putrootfh(), op_sequence(sid, 3)], minor=1)
        self.assertEqual(parse_compound(body)[0], NFS4ERR_SEQUENCE_POS)
        body = self.compound([op_sequence(b"\x07" * 16, 1)], minor=1)
        self.assertEqual(parse_compound(body)[0], NFS4ERR_BADSESSION)
        body = self.compound([u32(OP_DESTROY_SESSION) + sid], minor=1)
        self.assertEqual(parse_compound(body)[0], NFS4_OK)
        body = self.compound([u32(OP_DESTROY_CLIENTID) + u64(clientid)], minor=1)
        self.assertEqual(parse_compound(body)[0], NFS4_OK)
        body = self.compound([u32(OP_DESTROY_CLIENTID) + u64(clientid)], minor=1)
        self.assertEqual(parse_compound(body)[0], NFS4ERR_STALE_CLIENTID)

    def test_41_too_many_ops(self):
        body = self.compound([op_putrootfh()] * 200, minor=1)
        st, _, n, _ = parse_compound(body)
        self.assertEqual((st, n), (NFS4ERR_TOO_MANY_OPS, 1))


def main():
    global BINARY
    ap = argparse.ArgumentParser()
    ap.add_argument("--peernfsd", required=True)
    args, rest = ap.parse_known_args()
    BINARY = args.peernfsd
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
