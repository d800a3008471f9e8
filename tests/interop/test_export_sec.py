#!/usr/bin/env python3
"""Per-export security flavors (exports sec=) on the wire, with AUTH_SYS callers only:
MOUNT lists an export's flavors in order; NFSv3 calls with a flavor the export does not
take are refused with AUTH_TOOWEAK (FSINFO excepted, RFC 2623 2.3.2); NFSv4 answers
WRONGSEC after the rules of RFC 8881 2.6.3.1.1 and SECINFO / SECINFO_NO_NAME list the
flavors (Kerberos as RPCSEC_GSS triples). A sec=sys:krb5 export works as before."""
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcwire as w  # noqa: E402
from peernfsd_proc import Peernfsd, run_unittests  # noqa: E402

BINARY = None
NFS_PROG, MOUNT_PROG = 100003, 100005
MOUNTPROC3_MNT = 1
NFSPROC3_GETATTR, NFSPROC3_LOOKUP, NFSPROC3_CREATE, NFSPROC3_FSINFO = 1, 3, 8, 19
OP_GETATTR, OP_GETFH, OP_LOOKUP, OP_LOOKUPP, OP_PUTFH, OP_PUTROOTFH = 9, 10, 15, 16, 22, 24
OP_SAVEFH, OP_SECINFO, OP_EXCHANGE_ID, OP_CREATE_SESSION, OP_SEQUENCE = 32, 33, 42, 43, 53
OP_SECINFO_NO_NAME = 52
NFS4_OK, NFS4ERR_WRONGSEC = 0, 10016
SYS, KRB5, KRB5I, KRB5P = 1, 390003, 390004, 390005
RPCSEC_GSS = 6
KRB5_OID = bytes.fromhex("2a864886f712010202")  # 1.2.840.113554.1.2.2, contents octets
GSS_SERVICE = {KRB5: 1, KRB5I: 2, KRB5P: 3}
u32 = w.u32


def compound(ops, minor):
    return w.opaque(b"sec") + u32(minor) + u32(len(ops)) + b"".join(ops)


def op_lookup(name):
    return u32(OP_LOOKUP) + w.opaque(name.encode())


def op_putfh(fh):
    return u32(OP_PUTFH) + w.opaque(fh)


def op_sequence(sid, seq):
    return u32(OP_SEQUENCE) + sid + u32(seq) + u32(0) + u32(0) + u32(1)


def chan_attrs():
    return u32(0) + u32(1049620) + u32(1049480) + u32(7584) + u32(16) + u32(8) + u32(0)


def secinfo_list(x):
    """SECINFO4resok from the cursor -> [pseudo-flavor, ...], checking each GSS triple."""
    out = []
    for _ in range(x.u32()):
        flavor = x.u32()
        if flavor != RPCSEC_GSS:
            out.append(flavor)
            continue
        oid, qop, service = x.opaque(), x.u32(), x.u32()
        assert oid == KRB5_OID and qop == 0, (oid, qop)
        out.append({1: KRB5, 2: KRB5I, 3: KRB5P}[service])
    return out


class ExportSec(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # insecure: the test's sockets are on unreserved ports
        cls.srv = Peernfsd(BINARY, exports_opts="rw,no_root_squash,insecure,fsid=1,sec=krb5p:krb5")
        cls.krb = cls.srv.export
        cls.mixed = os.path.join(cls.srv.tmp, "export2")
        os.mkdir(cls.mixed)
        with open(cls.srv.exports_file, "a") as f:
            f.write(f"{cls.mixed} *(rw,no_root_squash,insecure,fsid=2,sec=sys:krb5)\n")
        cls.srv.start()
        cls.xid = 0x5EC0000
        cls.c = w.Conn("127.0.0.1", cls.srv.port)
        cls.krb_fh, cls.krb_flavors = cls.mnt(cls.krb)
        cls.mixed_fh, cls.mixed_flavors = cls.mnt(cls.mixed)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.srv.stop_and_cleanup()

    @classmethod
    def rpc(cls, prog, vers, proc, args, cred=None):
        cls.xid += 1
        cls.c.send(w.record(w.call(cls.xid, prog, vers, proc, args, cred=cred)))
        r = w.parse_reply(cls.c.recv_record())
        assert r["xid"] == cls.xid
        return r

    @classmethod
    def mnt(cls, path):
        r = cls.rpc(MOUNT_PROG, 3, MOUNTPROC3_MNT, w.opaque(path.encode()))
        assert (r["kind"], r["stat"]) == ("accepted", w.SUCCESS), r
        x = w.Xdr(r["body"])
        assert x.u32() == 0, "MNT status"
        fh = x.opaque()
        return fh, [x.i32() for _ in range(x.u32())]

    def nfs4(self, ops, minor):
        r = self.rpc(NFS_PROG, 4, 1, compound(ops, minor))
        self.assertEqual((r["kind"], r["stat"]), ("accepted", w.SUCCESS), self.srv.read_log())
        x = w.Xdr(r["body"])
        status = x.u32()
        x.opaque()  # tag
        return status, x.u32(), x

    def path_lookups(self, path):
        return [op_lookup(p) for p in path.split("/") if p]

    def assert_too_weak(self, r, what):
        self.assertEqual((r["kind"], r.get("reject"), r.get("detail")), ("denied", w.AUTH_ERROR, (w.AUTH_TOOWEAK,)),
                         what)

    # ---- MOUNT ----

    def test_mnt_lists_flavors_in_order(self):
        self.assertEqual(self.krb_flavors, [KRB5P, KRB5])
        self.assertEqual(self.mixed_flavors, [SYS, KRB5])

    # ---- NFSv3 ----

    def test_v3_krb5_export_refuses_auth_sys(self):
        fh = w.opaque(self.krb_fh)
        self.assert_too_weak(self.rpc(NFS_PROG, 3, NFSPROC3_GETATTR, fh), "GETATTR")
        self.assert_too_weak(self.rpc(NFS_PROG, 3, NFSPROC3_LOOKUP, fh + w.opaque(b"x")), "LOOKUP")
        create = fh + w.opaque(b"new") + u32(0) + u32(0) * 6  # UNCHECKED, no attributes
        self.assert_too_weak(self.rpc(NFS_PROG, 3, NFSPROC3_CREATE, create), "CREATE")
        self.assertFalse(os.path.exists(os.path.join(self.krb, "new")))
        self.assert_too_weak(self.rpc(NFS_PROG, 3, NFSPROC3_GETATTR, fh, cred=w.auth_none()), "AUTH_NONE")
        # NULL needs no flavor
        r = self.rpc(NFS_PROG, 3, 0, b"")
        self.assertEqual((r["kind"], r["stat"]), ("accepted", w.SUCCESS))

    def test_v3_fsinfo_with_auth_sys_has_no_attributes(self):
        # RFC 2623 2.3.2: FSINFO is served to AUTH_SYS, without the object's attributes
        r = self.rpc(NFS_PROG, 3, NFSPROC3_FSINFO, w.opaque(self.krb_fh))
        self.assertEqual((r["kind"], r["stat"]), ("accepted", w.SUCCESS), r)
        x = w.Xdr(r["body"])
        self.assertEqual((x.u32(), x.u32()), (0, 0), "NFS3_OK, attributes_follow FALSE")
        self.assertEqual(x.u32(), 1024 * 1024, "rtmax")

    def test_v3_sys_krb5_export_serves_auth_sys(self):
        r = self.rpc(NFS_PROG, 3, NFSPROC3_GETATTR, w.opaque(self.mixed_fh))
        self.assertEqual((r["kind"], r["stat"]), ("accepted", w.SUCCESS), r)
        self.assertEqual(w.Xdr(r["body"]).u32(), 0)
        r = self.rpc(NFS_PROG, 3, NFSPROC3_FSINFO, w.opaque(self.mixed_fh))
        x = w.Xdr(r["body"])
        self.assertEqual((x.u32(), x.u32()), (0, 1), "NFS3_OK with attributes")

    # ---- NFSv4.1 ----

    def session(self, owner):
        ex = u32(OP_EXCHANGE_ID) + b"\x05" * 8 + w.opaque(owner) + u32(0) + u32(0) + u32(0)
        st, n, x = self.nfs4([ex], 1)
        self.assertEqual((st, n), (NFS4_OK, 1))
        self.assertEqual((x.u32(), x.u32()), (OP_EXCHANGE_ID, NFS4_OK))
        clientid, seq = x.u64(), x.u32()
        cs = (u32(OP_CREATE_SESSION) + w.u64(clientid) + u32(seq) + u32(0) + chan_attrs() + chan_attrs() +
              u32(0x40000000) + u32(1) + u32(0))
        st, n, x = self.nfs4([cs], 1)
        self.assertEqual((st, n), (NFS4_OK, 1))
        self.assertEqual((x.u32(), x.u32()), (OP_CREATE_SESSION, NFS4_OK))
        return x.fixed(16)

    def seq_compound(self, sid, seq, ops):
        """SEQUENCE + ops -> (status, results, cursor after SEQUENCE's result)."""
        st, n, x = self.nfs4([op_sequence(sid, seq)] + ops, 1)
        self.assertEqual((x.u32(), x.u32()), (OP_SEQUENCE, NFS4_OK))
        x.fixed(36)
        return st, n - 1, x

    def test_41_wrongsec_and_secinfo(self):
        sid = self.session(b"sec-owner-41")
        seq = iter(range(1, 100))
        to_krb = self.path_lookups(self.krb)
        to_mixed = self.path_lookups(self.mixed)

        # LOOKUP from the pseudo-filesystem into the krb5 export: WRONGSEC at that LOOKUP
        st, n, _ = self.seq_compound(sid, next(seq), [u32(OP_PUTROOTFH)] + to_krb + [u32(OP_GETFH)])
        self.assertEqual((st, n), (NFS4ERR_WRONGSEC, 1 + len(to_krb)))
        # the pseudo directories on the way are open to any flavor
        st, n, _ = self.seq_compound(sid, next(seq), [u32(OP_PUTROOTFH)] + to_krb[:-1] + [u32(OP_GETFH)])
        self.assertEqual((st, n), (NFS4_OK, len(to_krb) + 1))

        # SECINFO(name) from the parent lists the export's flavors in order
        st, n, x = self.seq_compound(sid, next(seq), [u32(OP_PUTROOTFH)] + to_krb[:-1] +
                                     [u32(OP_SECINFO) + w.opaque(os.path.basename(self.krb).encode())])
        self.assertEqual((st, n), (NFS4_OK, len(to_krb) + 1))
        for _ in range(len(to_krb)):
            self.assertEqual(x.u32() in (OP_PUTROOTFH, OP_LOOKUP), True)
            self.assertEqual(x.u32(), NFS4_OK)
        self.assertEqual((x.u32(), x.u32()), (OP_SECINFO, NFS4_OK))
        self.assertEqual(secinfo_list(x), [KRB5P, KRB5])
        # ... and of the pseudo directory above both exports: the union, first met first
        parent = os.path.basename(os.path.dirname(self.krb)).encode()
        st, n, x = self.seq_compound(sid, next(seq), [u32(OP_PUTROOTFH)] + to_krb[:-2] +
                                     [u32(OP_SECINFO) + w.opaque(parent)])
        self.assertEqual(st, NFS4_OK)
        for _ in range(len(to_krb) - 1):
            x.u32(), x.u32()
        self.assertEqual((x.u32(), x.u32()), (OP_SECINFO, NFS4_OK))
        self.assertEqual(secinfo_list(x), [KRB5P, KRB5, SYS])

        # PUTFH of a krb5 handle: judged by the next op
        fh = op_putfh(self.krb_fh)
        st, n, _ = self.seq_compound(sid, next(seq), [fh, u32(OP_GETATTR) + u32(1) + u32(1)])
        self.assertEqual((st, n), (NFS4ERR_WRONGSEC, 1), "PUTFH + anything else")
        st, n, _ = self.seq_compound(sid, next(seq), [fh, u32(OP_GETFH)])
        self.assertEqual((st, n), (NFS4ERR_WRONGSEC, 1), "PUTFH + GETFH")
        st, n, _ = self.seq_compound(sid, next(seq), [fh])
        self.assertEqual((st, n), (NFS4_OK, 1), "PUTFH last")
        st, n, _ = self.seq_compound(sid, next(seq), [fh, op_putfh(self.mixed_fh), u32(OP_GETFH)])
        self.assertEqual((st, n), (NFS4_OK, 3), "PUTFH + PUTFH")
        st, n, _ = self.seq_compound(sid, next(seq), [fh, op_lookup("nonexistent")])
        self.assertEqual((st, n), (NFS4ERR_WRONGSEC, 2), "PUTFH + LOOKUP: LOOKUP answers, names stay hidden")
        st, n, _ = self.seq_compound(sid, next(seq), [fh, u32(OP_LOOKUPP), u32(OP_GETFH)])
        self.assertEqual((st, n), (NFS4_OK, 3), "LOOKUPP out of the export leads to a pseudo directory")
        st, n, x = self.seq_compound(sid, next(seq), [fh, u32(OP_SECINFO_NO_NAME) + u32(0), u32(OP_GETFH)])
        self.assertEqual((x.u32(), x.u32(), x.u32(), x.u32()), (OP_PUTFH, NFS4_OK, OP_SECINFO_NO_NAME, NFS4_OK))
        self.assertEqual(secinfo_list(x), [KRB5P, KRB5])
        self.assertEqual((st, n), (10020, 3), "SECINFO_NO_NAME consumes the filehandle: NOFILEHANDLE")
        st, n, _ = self.seq_compound(sid, next(seq), [fh, u32(OP_SAVEFH), u32(OP_GETFH)])
        self.assertEqual((st, n), (NFS4ERR_WRONGSEC, 3), "SAVEFH defers to the op after it")

        # the sys:krb5 export works with AUTH_SYS
        st, n, _ = self.seq_compound(sid, next(seq), [u32(OP_PUTROOTFH)] + to_mixed + [u32(OP_GETFH)])
        self.assertEqual((st, n), (NFS4_OK, len(to_mixed) + 2))
        st, n, _ = self.seq_compound(sid, next(seq), [op_putfh(self.mixed_fh), u32(OP_GETATTR) + u32(1) + u32(1)])
        self.assertEqual((st, n), (NFS4_OK, 2))
        st, n, x = self.seq_compound(sid, next(seq), [op_putfh(self.mixed_fh), u32(OP_SECINFO_NO_NAME) + u32(0)])
        x.u32(), x.u32()
        self.assertEqual((x.u32(), x.u32()), (OP_SECINFO_NO_NAME, NFS4_OK))
        self.assertEqual(secinfo_list(x), [SYS, KRB5])

    def test_40_wrongsec(self):
        to_krb = self.path_lookups(self.krb)
        st, n, _ = self.nfs4([u32(OP_PUTROOTFH)] + to_krb + [u32(OP_GETFH)], 0)
        self.assertEqual((st, n), (NFS4ERR_WRONGSEC, 1 + len(to_krb)))
        st, n, _ = self.nfs4([u32(OP_PUTROOTFH)] + self.path_lookups(self.mixed) + [u32(OP_GETFH)], 0)
        self.assertEqual(st, NFS4_OK)


if __name__ == "__main__":
    run_unittests(globals())
