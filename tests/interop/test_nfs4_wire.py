#!/usr/bin/env python3
"""NFSv4 COMPOUND rules on the wire against a running peernfsd (RFC 7530 15.2, RFC 8881
2.10.6 and 15.2): minor version mismatch, OP_ILLEGAL, BADXDR, op-count limits, the 4.1
session rules and the slot reply cache (a retransmission gets the same bytes); and the
NFSv4.2 extended attribute ops (RFC 8276) in raw 4.2 COMPOUNDs."""
import errno
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcwire as w  # noqa: E402
from peernfsd_proc import Peernfsd, run_unittests  # noqa: E402

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
OP_GETXATTR, OP_SETXATTR, OP_LISTXATTRS, OP_REMOVEXATTR = 72, 73, 74, 75
NFS4ERR_EXIST, NFS4ERR_NAMETOOLONG, NFS4ERR_ROFS, NFS4ERR_BAD_COOKIE, NFS4ERR_TOOSMALL = 17, 63, 30, 10003, 10005
NFS4ERR_NOXATTR, NFS4ERR_XATTR2BIG = 10095, 10096
SETXATTR4_EITHER, SETXATTR4_CREATE, SETXATTR4_REPLACE = 0, 1, 2
FATTR4_XATTR_SUPPORT = 82
ACCESS4_READ, ACCESS4_XAREAD, ACCESS4_XAWRITE, ACCESS4_XALIST = 0x1, 0x40, 0x80, 0x100


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
        cls.srv.stop_and_cleanup()

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

    def exchange_id(self, owner, minor=1):
        args = (u32(OP_EXCHANGE_ID) + b"\x01" * 8 + w.opaque(owner) + u32(0) + u32(0) + u32(0))
        body = self.compound([args], minor=minor)
        st, _, n, res = parse_compound(body)
        self.assertEqual((st, n), (NFS4_OK, 1), self.srv.read_log())
        rest = res[0][2]
        clientid, seq = struct.unpack(">QI", rest[:12])
        return clientid, seq

    def create_session(self, clientid, seq, minor=1, fore=None):
        args = (u32(OP_CREATE_SESSION) + u64(clientid) + u32(seq) + u32(0) + (fore or chan_attrs()) +
                chan_attrs() + u32(0x40000000) + u32(1) + u32(0))
        body = self.compound([args], minor=minor)
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


def op_lookup(name):
    return u32(OP_LOOKUP) + w.opaque(name.encode() if isinstance(name, str) else name)


def op_setxattr(name, value, how=SETXATTR4_EITHER):
    return u32(OP_SETXATTR) + u32(how) + w.opaque(name) + w.opaque(value)


def op_getxattr(name):
    return u32(OP_GETXATTR) + w.opaque(name)


def op_listxattrs(cookie, maxcount):
    return u32(OP_LISTXATTRS) + u64(cookie) + u32(maxcount)


def op_removexattr(name):
    return u32(OP_REMOVEXATTR) + w.opaque(name)


class Results:
    """Walks a COMPOUND4res, decoding the results of the ops the xattr tests send."""

    def __init__(self, body):
        self.status, tlen = struct.unpack(">II", body[:8])
        self.b = body
        self.off = 8 + ((tlen + 3) & ~3)
        (self.n,) = struct.unpack(">I", self.take(4))

    def take(self, n):
        v = self.b[self.off:self.off + n]
        self.off += n
        return v

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def opaque(self):
        n = self.u32()
        v = self.take(n)
        self.take((4 - n % 4) % 4)
        return v

    def next(self):
        """-> (opnum, status, decoded resok or None)"""
        opnum, st = self.u32(), self.u32()
        if st != NFS4_OK:
            return opnum, st, None
        if opnum == OP_SEQUENCE:
            return opnum, st, self.take(36)
        if opnum == OP_GETFH:
            return opnum, st, self.opaque()
        if opnum == OP_ACCESS:
            return opnum, st, (self.u32(), self.u32())
        if opnum == OP_GETATTR:
            words = [self.u32() for _ in range(self.u32())]
            return opnum, st, (words, self.opaque())
        if opnum == OP_GETXATTR:
            return opnum, st, self.opaque()
        if opnum in (OP_SETXATTR, OP_REMOVEXATTR):
            return opnum, st, (self.u32(), self.u64(), self.u64())  # atomic, before, after
        if opnum == OP_LISTXATTRS:
            cookie = self.u64()
            names = [self.opaque() for _ in range(self.u32())]
            return opnum, st, (cookie, names, self.u32())
        return opnum, st, None  # status-only results (PUTFH, LOOKUP, PUTROOTFH, ...)

    def all(self):
        return [self.next() for _ in range(self.n)]


class Nfs4Xattr(unittest.TestCase):
    """RFC 8276 over raw 4.2 COMPOUNDs against an rw export and a ro one (a server of its
    own: the second export changes the pseudo-fs Nfs4Wire's tests walk)."""

    call = Nfs4Wire.call
    compound = Nfs4Wire.compound
    exchange_id = Nfs4Wire.exchange_id
    create_session = Nfs4Wire.create_session
    setUp = Nfs4Wire.setUp
    tearDownClass = classmethod(Nfs4Wire.tearDownClass.__func__)

    @classmethod
    def setUpClass(cls):
        cls.srv = Peernfsd(BINARY, exports_opts="rw,no_root_squash,insecure")
        cls.ro = os.path.join(cls.srv.tmp, "ro")
        os.mkdir(cls.ro)
        with open(cls.srv.exports_file, "a") as f:
            f.write(f"{cls.ro} *(ro,no_root_squash,insecure)\n")
        cls.srv.start()
        cls.sid = None
        cls.seq = 0
        # tmpfs before Linux 6.6 has no user xattrs: then everything is NOTSUPP
        probe = os.path.join(cls.srv.export, "probe")
        open(probe, "w").close()
        try:
            os.setxattr(probe, "user.probe", b"1")
            cls.supported = True
        except OSError as e:
            if e.errno != errno.ENOTSUP:
                raise
            cls.supported = False
        os.unlink(probe)

    def session(self, owner, fore=None):
        clientid, seq = self.exchange_id(owner, minor=2)
        return self.create_session(clientid, seq, minor=2, fore=fore)

    def run42(self, ops):
        """One 4.2 COMPOUND on the class's session: (status, results after SEQUENCE)."""
        cls = type(self)
        if cls.sid is None:
            cls.sid = self.session(b"xattr-owner")
        cls.seq += 1
        res = Results(self.compound([op_sequence(cls.sid, cls.seq)] + ops, minor=2))
        out = res.all()
        self.assertEqual(out[0][:2], (OP_SEQUENCE, NFS4_OK))
        return res.status, out[1:]

    def path_ops(self, export, name=None):
        parts = [p for p in export.split("/") if p] + ([name] if name else [])
        return [op_putrootfh()] + [op_lookup(p) for p in parts]

    def ops(self, export, name, *ops):
        """Status and the results of `ops` on export/name (the lookups are checked)."""
        pre = self.path_ops(export, name)
        st, out = self.run42(pre + list(ops))
        for opnum, ost, _ in out[:len(pre)]:
            self.assertEqual(ost, NFS4_OK, f"op {opnum} before the xattr ops")
        return st, out[len(pre):]

    def one(self, export, name, op):
        """(status, resok) of a single op on export/name."""
        _, out = self.ops(export, name, op)
        self.assertEqual(len(out), 1)
        return out[0][1], out[0][2]

    def new_file(self, name, export=None):
        p = os.path.join(export or self.srv.export, name)
        open(p, "w").close()
        return p

    def test_xattr_support_attribute(self):
        st, out = self.run42([op_putrootfh(), op_getattr(FATTR4_XATTR_SUPPORT)])
        self.assertEqual(st, NFS4_OK)
        words, vals = out[1][2]
        self.assertEqual((words[2] >> (FATTR4_XATTR_SUPPORT - 64)) & 1, 1, "xattr_support is answered")
        self.assertEqual(vals, u32(0), "the pseudo-fs has no xattrs")
        st, out = self.ops(self.srv.export, None, op_getattr(FATTR4_XATTR_SUPPORT))
        self.assertEqual(st, NFS4_OK)
        self.assertEqual(out[0][2][1], u32(1 if self.supported else 0))

    def test_xattr_not_in_41(self):
        clientid, seq = self.exchange_id(b"xattr-41")
        sid41 = self.create_session(clientid, seq)
        body = self.compound([op_sequence(sid41, 1), op_putrootfh(), op_getxattr(b"a")], minor=1)
        st, _, n, _ = parse_compound(body)
        self.assertEqual((st, n), (NFS4ERR_OP_ILLEGAL, 3))

    def test_xattr_roundtrip(self):
        p = self.new_file("rt")
        if not self.supported:
            self.assertEqual(self.one(self.srv.export, "rt", op_getxattr(b"k"))[0], NFS4ERR_NOTSUPP)
            return
        st, out = self.ops(self.srv.export, "rt", op_setxattr(b"k", b"value-1"), op_getxattr(b"k"),
                           op_listxattrs(0, 4096), op_removexattr(b"k"), op_getxattr(b"k"))
        self.assertEqual(st, NFS4ERR_NOXATTR)
        self.assertEqual([(o, s) for o, s, _ in out],
                         [(OP_SETXATTR, NFS4_OK), (OP_GETXATTR, NFS4_OK), (OP_LISTXATTRS, NFS4_OK),
                          (OP_REMOVEXATTR, NFS4_OK), (OP_GETXATTR, NFS4ERR_NOXATTR)])
        atomic, before, after = out[0][2]
        self.assertEqual(atomic, 0)
        self.assertGreaterEqual(after, before)
        self.assertEqual(out[1][2], b"value-1")
        self.assertEqual(out[2][2], (1, [b"k"], 1))
        self.assertEqual(os.listxattr(p), [])
        # a value set on the server is seen by GETXATTR, and one set here by a local process
        self.assertEqual(self.one(self.srv.export, "rt", op_setxattr(b"k2", b"\0\x01\x02"))[0], NFS4_OK)
        self.assertEqual(os.getxattr(p, "user.k2"), b"\0\x01\x02")
        os.setxattr(p, "user.local", b"here")
        self.assertEqual(self.one(self.srv.export, "rt", op_getxattr(b"local")), (NFS4_OK, b"here"))

    def test_xattr_errors(self):
        p = self.new_file("err")
        if not self.supported:
            return
        os.setxattr(p, "user.there", b"1")
        f = lambda op: self.one(self.srv.export, "err", op)[0]  # noqa: E731
        self.assertEqual(f(op_setxattr(b"there", b"2", SETXATTR4_CREATE)), NFS4ERR_EXIST)
        self.assertEqual(f(op_setxattr(b"absent", b"2", SETXATTR4_REPLACE)), NFS4ERR_NOXATTR)
        self.assertEqual(f(op_setxattr(b"there", b"3", SETXATTR4_REPLACE)), NFS4_OK)
        self.assertEqual(os.getxattr(p, "user.there"), b"3")
        self.assertEqual(f(op_removexattr(b"absent")), NFS4ERR_NOXATTR)
        self.assertEqual(f(op_getxattr(b"absent")), NFS4ERR_NOXATTR)
        self.assertEqual(f(op_getxattr(b"")), NFS4ERR_INVAL)
        self.assertEqual(f(op_getxattr(b"n" * 256)), NFS4ERR_NAMETOOLONG)
        self.assertEqual(f(op_setxattr(b"big", b"v" * 65537)), NFS4ERR_XATTR2BIG)
        self.assertEqual(f(op_setxattr(b"x", b"1", 3)), NFS4ERR_BADXDR)  # no such setxattr_option4
        self.assertEqual(f(op_listxattrs(0, 8)), NFS4ERR_TOOSMALL)
        self.assertEqual(f(op_listxattrs(0, 16 + 4)), NFS4ERR_TOOSMALL)  # "there" needs 12
        self.assertEqual(f(op_listxattrs(2, 4096)), NFS4ERR_BAD_COOKIE)
        # the pseudo-fs: changes are ROFS (read-only), reads NOTSUPP
        st, out = self.run42([op_putrootfh(), op_getxattr(b"a")])
        self.assertEqual(st, NFS4ERR_NOTSUPP)
        st, out = self.run42([op_putrootfh(), op_setxattr(b"a", b"1")])
        self.assertEqual(st, NFS4ERR_ROFS)

    def test_xattr_list_paging(self):
        p = self.new_file("many")
        if not self.supported:
            return
        want = sorted(f"attr-{i:03d}".encode() for i in range(40))
        for name in reversed(want):
            os.setxattr(p, "user." + name.decode(), b"x")
        os.setxattr(p, "trusted.not-listed", b"x")
        got, cookie, calls = [], 0, 0
        while True:
            st, (next_cookie, names, eof) = self.one(self.srv.export, "many", op_listxattrs(cookie, 16 + 5 * 12))
            self.assertEqual(st, NFS4_OK)
            self.assertLessEqual(len(names), 5)
            got += names
            cookie, calls = next_cookie, calls + 1
            if eof or calls > 20:
                break
        self.assertEqual(got, want)
        self.assertEqual(calls, 8)

    def test_xattr_read_only_export(self):
        p = self.new_file("rofile", self.ro)
        if not self.supported:
            return
        os.setxattr(p, "user.k", b"ro-value")
        self.assertEqual(self.one(self.ro, "rofile", op_getxattr(b"k")), (NFS4_OK, b"ro-value"))
        self.assertEqual(self.one(self.ro, "rofile", op_setxattr(b"k", b"x"))[0], NFS4ERR_ROFS)
        self.assertEqual(self.one(self.ro, "rofile", op_removexattr(b"k"))[0], NFS4ERR_ROFS)
        st, (supported, access) = self.one(self.ro, "rofile", u32(OP_ACCESS) + u32(0x1C0))
        self.assertEqual((st, supported, access), (NFS4_OK, 0x1C0, ACCESS4_XAREAD | ACCESS4_XALIST))

    def test_xattr_access_bits(self):
        self.new_file("acc")
        st, (supported, access) = self.one(self.srv.export, "acc", u32(OP_ACCESS) + u32(0x1C1))
        self.assertEqual((st, supported, access), (NFS4_OK, 0x1C1, 0x1C1))

    def test_xattr_value_bounded_by_session_reply(self):
        p = self.new_file("bigval")
        if not self.supported:
            return
        os.setxattr(p, "user.v", b"z" * 3000)
        sid = self.session(b"xattr-small-reply", fore=chan_attrs(maxresp=1024))
        path = self.path_ops(self.srv.export, "bigval")
        body = self.compound([op_sequence(sid, 1)] + path + [op_getxattr(b"v")], minor=2)
        res = Results(body)
        out = res.all()
        self.assertEqual(out[-1][:2], (OP_GETXATTR, NFS4ERR_XATTR2BIG))
        # the default session takes it whole
        self.assertEqual(self.one(self.srv.export, "bigval", op_getxattr(b"v")), (NFS4_OK, b"z" * 3000))


if __name__ == "__main__":
    run_unittests(globals())
