#!/usr/bin/env python3
"""RPCSEC_GSS with Kerberos 5 (RFC 2203, RFC 2623) against a running peernfsd, in a
throwaway realm PEERNFS.TEST (krb5_realm.py: its own KDC on 127.0.0.1, a keytab for
nfs/localhost): NFSv3 CREATE / WRITE / READ / GETATTR under krb5, krb5i and krb5p with the
principal mapped to its local user (daemon@PEERNFS.TEST -> daemon) or, unmapped, to the
export's anonymous user; the RFC 2203 5.3.3 answers to bad calls (unknown handle, bad
header MIC, seq_num beyond MAXSEQ, a replayed or too old seq_num, bad checksum or token);
DESTROY; an NFSv4.1 session under krb5i.

Skips only when the Kerberos programs (Debian: krb5-kdc, krb5-admin-server) are missing;
scripts/install-deps.sh installs them and python3-gssapi."""
import os
import pwd
import struct
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import gssapi  # noqa: F401
except ImportError:
    # python3-gssapi is a Debian package: when CMake found another python3 (pyenv,
    # venv), run under the system one, which has it
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
            and os.access("/usr/bin/python3", os.X_OK):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise SystemExit("python3-gssapi is missing (scripts/install-deps.sh installs it)")

import rpcwire as w  # noqa: E402
import rpcsec_gss as g  # noqa: E402
from krb5_realm import Krb5Realm, check_realm, missing_binaries  # noqa: E402
from peernfsd_proc import Peernfsd, run_unittests  # noqa: E402

BINARY = None
NFS_PROG, MOUNT_PROG = 100003, 100005
MOUNTPROC3_MNT = 1
NFS3_GETATTR, NFS3_READ, NFS3_WRITE, NFS3_CREATE = 1, 6, 7, 8
NFS3_OK, FILE_SYNC, UNCHECKED = 0, 2, 0
ANON_UID = 65534
DATA_LEN = 64 * 1024

OP_GETATTR, OP_PUTROOTFH = 9, 24
OP_EXCHANGE_ID, OP_CREATE_SESSION, OP_SEQUENCE = 42, 43, 53
FATTR4_TYPE, NF4DIR = 1, 2
EXCHGID4_FLAG_USE_NON_PNFS = 0x00010000

u32, u64, opaque = w.u32, w.u64, w.opaque


def sattr3_mode(mode):
    return u32(1) + u32(mode) + u32(0) * 5  # mode; uid, gid, size unset; times unchanged


def fattr3(x):
    """fattr3 from the cursor -> dict of what the tests look at."""
    ftype, mode, nlink, uid, gid = (x.u32() for _ in range(5))
    size = x.u64()
    x.u64()  # used
    x.fixed(8 + 8 + 8 + 24)  # rdev, fsid, fileid, atime/mtime/ctime
    return {"type": ftype, "mode": mode, "uid": uid, "gid": gid, "size": size}


def post_op_attr(x):
    return fattr3(x) if x.u32() else None


def wcc_data(x):
    if x.u32():
        x.fixed(24)
    post_op_attr(x)


class Krb5Nfs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = missing_binaries()
        if missing:
            raise unittest.SkipTest("Kerberos binaries missing (" + " ".join(missing) +
                                    "): apt-get install krb5-kdc krb5-admin-server")
        cls.saved_env = {k: os.environ.get(k) for k in ("KRB5_CONFIG", "KRB5_KTNAME", "KRB5RCACHEDIR")}
        cls.realm = Krb5Realm().start()
        cls.srv = None
        try:
            for user in ("daemon", "nobodyhere"):
                cls.realm.add_user(user)
                cls.realm.kinit(user)
            # peernfsd inherits this process's environment: the realm's config and keytab
            os.environ.update(cls.realm.env())
            cls.srv = Peernfsd(BINARY, extra_args=("--grace", "0", "--no-statd"),
                               exports_opts="rw,insecure,no_root_squash,sec=krb5:krb5i:krb5p:sys")
            os.chmod(cls.srv.export, 0o777)  # daemon and the anonymous user create files
            cls.srv.start()
            cls.xid = 0x5a000000
            cls.root, cls.mnt_flavors = cls.mount()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.srv is not None:
                cls.srv.stop_and_cleanup()
        finally:
            cls.realm.stop()
            for k, v in cls.saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    @classmethod
    def mount(cls):
        """MOUNT v3 MNT with AUTH_SYS (MOUNT is not GSS-protected): root fh and flavors."""
        c = w.Conn("127.0.0.1", cls.srv.port)
        try:
            cls.xid += 1
            c.send(w.record(w.call(cls.xid, MOUNT_PROG, 3, MOUNTPROC3_MNT, opaque(cls.srv.export.encode()))))
            r = w.parse_reply(c.recv_record())
            assert (r["kind"], r["stat"]) == ("accepted", w.SUCCESS), r
            x = w.Xdr(r["body"])
            st = x.u32()
            assert st == 0, f"MNT status {st}"
            fh = x.opaque()
            return fh, [x.u32() for _ in range(x.u32())]
        finally:
            c.close()

    # -- helpers -------------------------------------------------------------------------

    def conn(self):
        c = w.Conn("127.0.0.1", self.srv.port)
        self.addCleanup(c.close)
        return c

    def context(self, user="daemon", service=g.SVC_INTEGRITY, prog=NFS_PROG, vers=3, conn=None):
        Krb5Nfs.xid += 0x10000
        ctx = g.GssContext(conn or self.conn(), prog, vers, self.realm.user_creds(user),
                           service=service, xid=Krb5Nfs.xid)
        ctx.establish()
        return ctx

    def ok(self, r, what):
        """The results of a SUCCESS reply (verifier and protection already checked)."""
        self.assertEqual((r["kind"], r.get("stat")), ("accepted", w.SUCCESS),
                         f"{what}: {r}\n{self.srv.read_log()}")
        return r["results"]

    def assert_denied(self, r, auth_stat, what):
        self.assertEqual(r["kind"], "denied", f"{what}: expected MSG_DENIED, got {r}")
        self.assertEqual((r["reject"], r["detail"]), (w.AUTH_ERROR, (auth_stat,)),
                         f"{what}: expected AUTH_ERROR/{auth_stat}, got {r}")

    def assert_dropped(self, ctx, what, **tamper):
        xid, seq = ctx.send_only(NFS3_GETATTR, opaque(self.root), **tamper)
        reply = ctx.recv(1.0, ctx.conn)
        if reply is not None:
            r = g.parse_reply_gss(reply)
            r.pop("body", None)
            self.fail(f"{what}: seq {seq} must get no reply (RFC 2203 5.3.3.1), got {r}")

    def getattr3(self, ctx, fh, **tamper):
        r = ctx.call(NFS3_GETATTR, opaque(fh), **tamper)
        if r["kind"] != "accepted" or r["stat"] != w.SUCCESS:
            return r, None
        x = w.Xdr(r["results"])
        st = x.u32()
        self.assertEqual(st, NFS3_OK, "GETATTR status")
        return r, fattr3(x)

    def create3(self, ctx, name):
        args = opaque(self.root) + opaque(name.encode()) + u32(UNCHECKED) + sattr3_mode(0o644)
        x = w.Xdr(self.ok(ctx.call(NFS3_CREATE, args), "CREATE"))
        st = x.u32()
        self.assertEqual(st, NFS3_OK, f"CREATE {name} status\n{self.srv.read_log()}")
        self.assertEqual(x.u32(), 1, "CREATE returns the handle")
        fh = x.opaque()
        return fh, post_op_attr(x)

    def write_read3(self, ctx, fh, data):
        args = opaque(fh) + u64(0) + u32(len(data)) + u32(FILE_SYNC) + opaque(data)
        x = w.Xdr(self.ok(ctx.call(NFS3_WRITE, args), "WRITE"))
        self.assertEqual(x.u32(), NFS3_OK, "WRITE status")
        wcc_data(x)
        count, committed = x.u32(), x.u32()
        self.assertEqual((count, committed), (len(data), FILE_SYNC))
        r = ctx.call(NFS3_READ, opaque(fh) + u64(0) + u32(len(data)))
        x = w.Xdr(self.ok(r, "READ"))
        self.assertEqual(x.u32(), NFS3_OK, "READ status")
        post_op_attr(x)
        count, eof = x.u32(), x.u32()
        got = x.opaque()
        self.assertEqual((count, len(got), eof), (len(data), len(data), 1))
        self.assertTrue(got == data, "READ returns what WRITE wrote")
        return r

    def test_realm_in_python(self):
        # the realm alone (python initiator and acceptor): tells a broken realm from a
        # broken server
        check_realm(self.realm, "daemon")

    # -- mount ---------------------------------------------------------------------------

    def test_mount_lists_sec_flavors(self):
        # RFC 2623 2.2: the pseudo-flavors, in the export's sec= order
        self.assertEqual(self.mnt_flavors, [g.PSEUDO_KRB5, g.PSEUDO_KRB5I, g.PSEUDO_KRB5P, 1])

    def test_auth_sys_still_allowed(self):
        c = self.conn()
        Krb5Nfs.xid += 1
        c.send(w.record(w.call(Krb5Nfs.xid, NFS_PROG, 3, NFS3_GETATTR, opaque(self.root))))
        r = w.parse_reply(c.recv_record())
        self.assertEqual((r["kind"], r["stat"]), ("accepted", w.SUCCESS))
        self.assertEqual(struct.unpack(">I", r["body"][:4])[0], NFS3_OK)

    # -- context creation and NFSv3 under each service ------------------------------------

    def test_init_reply(self):
        ctx = self.context()
        res = ctx.init_results[-1]
        # establish() checked the verifier: the MIC of the XDR seq_window
        self.assertEqual(res["major"], g.GSS_S_COMPLETE)
        self.assertTrue(res["handle"], "a context handle")
        self.assertGreaterEqual(res["window"], 1)
        self.assertLess(res["window"], g.MAXSEQ)

    def nfs3_as_daemon(self, service):
        daemon = pwd.getpwnam("daemon")
        ctx = self.context("daemon", service)
        name = "f-" + g.SERVICE_NAMES[service]
        fh, attr = self.create3(ctx, name)
        self.assertEqual((attr["uid"], attr["gid"]), (daemon.pw_uid, daemon.pw_gid),
                         "daemon@PEERNFS.TEST creates as the local daemon user")
        data = os.urandom(DATA_LEN)
        r = self.write_read3(ctx, fh, data)
        if service == g.SVC_PRIVACY:
            self.assertNotIn(data[1000:1064], r["raw"], "krb5p: READ data is encrypted on the wire")
        elif service in (g.SVC_NONE, g.SVC_INTEGRITY):
            self.assertIn(data[1000:1064], r["raw"])
        _, attr = self.getattr3(ctx, fh)
        self.assertEqual((attr["uid"], attr["size"]), (daemon.pw_uid, DATA_LEN))
        st = os.stat(os.path.join(self.srv.export, name))
        self.assertEqual((st.st_uid, st.st_gid, st.st_size), (daemon.pw_uid, daemon.pw_gid, DATA_LEN))
        with open(os.path.join(self.srv.export, name), "rb") as f:
            self.assertTrue(f.read() == data, "the backing file holds the data")

    def test_nfs3_krb5(self):
        self.nfs3_as_daemon(g.SVC_NONE)

    def test_nfs3_krb5i(self):
        self.nfs3_as_daemon(g.SVC_INTEGRITY)

    def test_nfs3_krb5p(self):
        self.nfs3_as_daemon(g.SVC_PRIVACY)

    def test_unmapped_principal_is_anonymous(self):
        # nobodyhere has no local user: the export's anonymous user, even with no_root_squash
        self.assertRaises(KeyError, pwd.getpwnam, "nobodyhere")
        ctx = self.context("nobodyhere", g.SVC_PRIVACY)
        fh, attr = self.create3(ctx, "f-anon")
        self.assertEqual(attr["uid"], ANON_UID)
        self.assertEqual(os.stat(os.path.join(self.srv.export, "f-anon")).st_uid, ANON_UID)
        self.write_read3(ctx, fh, os.urandom(4096))

    def test_init_after_calls_as_a_user(self):
        # The keytab and replay cache are root's (0600, in a 0700 dir, like /etc/krb5.keytab):
        # accepting a context must not run with the filesystem identity a worker thread
        # kept from a user's NFS call
        ctx = self.context("daemon", g.SVC_NONE)
        for _ in range(24):
            self.assertIsNotNone(self.getattr3(ctx, self.root)[1])
            self.create3(ctx, "f-init-after")
        failed = []
        for i in range(12):
            try:
                self.context("daemon", g.SVC_INTEGRITY)
            except g.GssProtocolError as e:
                failed.append(f"#{i}: {e}")
        self.assertEqual(failed, [], "context creation after calls as daemon")

    def test_context_not_bound_to_connection(self):
        # RFC 2203: a context is named by its handle, whatever the transport connection
        ctx = self.context()
        other = self.conn()
        r, attr = self.getattr3(ctx, self.root, conn=other)
        self.assertIsNotNone(attr, f"{r}")
        r, attr = self.getattr3(ctx, self.root)
        self.assertIsNotNone(attr, f"{r}")

    # -- RFC 2203 5.3.3: bad calls --------------------------------------------------------

    def test_unknown_handle_credproblem(self):
        ctx = self.context()
        r, _ = self.getattr3(ctx, self.root, handle=b"\xde\xad\xbe\xef" * 4)
        self.assert_denied(r, g.AUTH_GSS_CREDPROBLEM, "unknown handle")
        r, attr = self.getattr3(ctx, self.root)
        self.assertIsNotNone(attr, f"the context still works: {r}")

    def test_bad_header_mic_credproblem(self):
        ctx = self.context()
        r, _ = self.getattr3(ctx, self.root, bad_verifier=True)
        self.assert_denied(r, g.AUTH_GSS_CREDPROBLEM, "bad header MIC")

    def test_seq_beyond_maxseq_ctxproblem(self):
        ctx = self.context()
        r, _ = self.getattr3(ctx, self.root, seq=g.MAXSEQ + 1)
        self.assert_denied(r, g.AUTH_GSS_CTXPROBLEM, "seq_num > MAXSEQ")

    def test_replayed_seq_dropped(self):
        ctx = self.context()
        r, attr = self.getattr3(ctx, self.root)
        self.assertIsNotNone(attr, f"{r}")
        # same seq_num, new xid (so not the duplicate request cache): silently dropped
        self.assert_dropped(ctx, "replayed seq_num", seq=ctx.seq)
        r, attr = self.getattr3(ctx, self.root)
        self.assertIsNotNone(attr, f"the next seq_num works after a drop: {r}")

    def test_seq_window(self):
        ctx = self.context()
        win = ctx.window
        self.assertIsNotNone(self.getattr3(ctx, self.root, seq=1)[1])
        top = win + 50
        self.assertIsNotNone(self.getattr3(ctx, self.root, seq=top)[1], "a jump ahead is accepted")
        # within the window and unused: accepted out of order
        r, attr = self.getattr3(ctx, self.root, seq=top - win + 1)
        self.assertIsNotNone(attr, f"seq {top - win + 1} is inside the window [{top - win + 1}, {top}]: {r}")
        # below the window: dropped
        self.assert_dropped(ctx, "seq_num below the window", seq=top - win)
        self.assert_dropped(ctx, "seq_num below the window", seq=2)
        r, attr = self.getattr3(ctx, self.root, seq=top + 1)
        self.assertIsNotNone(attr, f"the next seq_num works: {r}")

    def test_integrity_bad_checksum_garbage_args(self):
        ctx = self.context(service=g.SVC_INTEGRITY)
        r, _ = self.getattr3(ctx, self.root, bad_checksum=True)
        # check_reply verified the verifier: the MIC of the seq_num
        self.assertEqual((r["kind"], r.get("stat")), ("accepted", w.GARBAGE_ARGS), f"{r}")
        self.assertIsNotNone(self.getattr3(ctx, self.root)[1], "the context still works")

    def test_integrity_body_seq_mismatch_garbage_args(self):
        # the seq_num inside databody_integ must be the credential's (RFC 2203 5.3.2.2)
        ctx = self.context(service=g.SVC_INTEGRITY)
        r, _ = self.getattr3(ctx, self.root, body_seq=ctx.seq + 7)
        self.assertEqual((r["kind"], r.get("stat")), ("accepted", w.GARBAGE_ARGS), f"{r}")

    def test_privacy_bad_token_garbage_args(self):
        ctx = self.context(service=g.SVC_PRIVACY)
        r, _ = self.getattr3(ctx, self.root, bad_checksum=True)
        self.assertEqual((r["kind"], r.get("stat")), ("accepted", w.GARBAGE_ARGS), f"{r}")
        self.assertIsNotNone(self.getattr3(ctx, self.root)[1], "the context still works")

    def test_destroy(self):
        ctx = self.context(service=g.SVC_PRIVACY)
        self.assertIsNotNone(self.getattr3(ctx, self.root)[1])
        r = ctx.destroy()  # checks the verifier (the MIC of the seq_num)
        self.assertEqual((r["kind"], r.get("stat")), ("accepted", w.SUCCESS), f"{r}")
        r, _ = self.getattr3(ctx, self.root)
        self.assert_denied(r, g.AUTH_GSS_CREDPROBLEM, "DATA call on a destroyed context")

    # -- NFSv4.1 ---------------------------------------------------------------------------

    def compound41(self, ctx, ops):
        args = opaque(b"krb5") + u32(1) + u32(len(ops)) + b"".join(ops)
        x = w.Xdr(self.ok(ctx.call(1, args), "COMPOUND"))
        status = x.u32()
        x.opaque()
        return status, x

    def test_nfs41_session_krb5i(self):
        ctx = self.context("daemon", g.SVC_INTEGRITY, vers=4)
        eid = (u32(OP_EXCHANGE_ID) + b"\x05" * 8 + opaque(b"peernfs-krb5-test") +
               u32(EXCHGID4_FLAG_USE_NON_PNFS) + u32(0) + u32(0))  # SP4_NONE, no impl id
        st, x = self.compound41(ctx, [eid])
        self.assertEqual(st, 0, f"EXCHANGE_ID\n{self.srv.read_log()}")
        x.u32(), x.u32(), x.u32()  # resarray length, opnum, status
        clientid, seq = x.u64(), x.u32()
        chan = u32(0) + u32(1 << 20) + u32(1 << 20) + u32(8192) + u32(16) + u32(4) + u32(0)
        cs = (u32(OP_CREATE_SESSION) + u64(clientid) + u32(seq) + u32(0) + chan + chan +
              u32(0x40000000) + u32(1) + u32(0))  # cb program; AUTH_NONE callback sec
        st, x = self.compound41(ctx, [cs])
        self.assertEqual(st, 0, f"CREATE_SESSION\n{self.srv.read_log()}")
        x.u32(), x.u32(), x.u32()
        sessionid = x.fixed(16)
        seqop = u32(OP_SEQUENCE) + sessionid + u32(1) + u32(0) + u32(0) + u32(0)
        getattr_type = u32(OP_GETATTR) + u32(1) + u32(1 << FATTR4_TYPE)
        st, x = self.compound41(ctx, [seqop, u32(OP_PUTROOTFH), getattr_type])
        self.assertEqual(st, 0, "SEQUENCE + PUTROOTFH + GETATTR")
        self.assertEqual(x.u32(), 3)
        self.assertEqual((x.u32(), x.u32()), (OP_SEQUENCE, 0))
        self.assertEqual(x.fixed(16), sessionid)
        x.fixed(5 * 4)  # sequenceid, slotid, highest, target highest, status flags
        self.assertEqual((x.u32(), x.u32()), (OP_PUTROOTFH, 0))
        self.assertEqual((x.u32(), x.u32()), (OP_GETATTR, 0))
        self.assertEqual(x.bitmap(), [1 << FATTR4_TYPE])
        vals = w.Xdr(x.opaque())
        self.assertEqual(vals.u32(), NF4DIR)


if __name__ == "__main__":
    run_unittests(globals())
