"""A small RPCSEC_GSS client (RFC 2203) on rpcwire: context creation through the NULL
procedure, DATA calls with the header MIC as verifier and the arguments protected per
service (none, integrity, privacy), checked replies, DESTROY; and ways to send wrong ones
(bad verifier, bad checksum, any seq_num, any handle) for negative tests.

GSS-API is python3-gssapi (MIT Kerberos underneath)."""
import socket
import struct

import rpcwire as w

RPCSEC_GSS = 6
RPCSEC_GSS_VERS_1 = 1
PROC_DATA, PROC_INIT, PROC_CONTINUE_INIT, PROC_DESTROY = 0, 1, 2, 3
SVC_NONE, SVC_INTEGRITY, SVC_PRIVACY = 1, 2, 3
MAXSEQ = 0x80000000
AUTH_GSS_CREDPROBLEM, AUTH_GSS_CTXPROBLEM = 13, 14
GSS_S_COMPLETE, GSS_S_CONTINUE_NEEDED = 0, 1
# the pseudo-flavors (RFC 2623) a MOUNT reply lists for sec=krb5, krb5i, krb5p
PSEUDO_KRB5, PSEUDO_KRB5I, PSEUDO_KRB5P = 390003, 390004, 390005
SERVICE_NAMES = {SVC_NONE: "krb5", SVC_INTEGRITY: "krb5i", SVC_PRIVACY: "krb5p"}


class GssProtocolError(AssertionError):
    """The server answered something RFC 2203 does not allow (a bad verifier, a wrong
    sequence number in a reply body, a malformed init result)."""


def gss_cred(gss_proc, seq, service, handle):
    body = (w.u32(RPCSEC_GSS_VERS_1) + w.u32(gss_proc) + w.u32(seq) + w.u32(service)
            + w.opaque(handle))
    return w.u32(RPCSEC_GSS) + w.opaque(body)


def call_header(xid, prog, vers, proc, cred):
    """xid through the credential: the bytes the call verifier checksums."""
    return w.u32(xid) + w.u32(w.CALL) + w.u32(2) + w.u32(prog) + w.u32(vers) + w.u32(proc) + cred


def flip(b, at=-1):
    """b with one bit of the byte at `at` changed."""
    b = bytearray(b)
    b[at] ^= 0x01
    return bytes(b)


def parse_reply_gss(msg):
    """Like rpcwire.parse_reply, also returning the verifier (flavor, body) of an
    accepted reply; body = the bytes after accept_stat."""
    xid, mtype, rstat = struct.unpack(">III", msg[:12])
    if mtype != w.REPLY:
        raise GssProtocolError(f"xid {xid:#x}: not a reply")
    if rstat == w.MSG_DENIED:
        x = w.Xdr(msg[12:])
        why = x.u32()
        detail = (x.u32(), x.u32()) if why == w.RPC_MISMATCH else (x.u32(),)
        return {"xid": xid, "kind": "denied", "reject": why, "detail": detail}
    x = w.Xdr(msg[12:])
    vflavor = x.u32()
    verf = x.opaque()
    stat = x.u32()
    return {"xid": xid, "kind": "accepted", "stat": stat, "verf_flavor": vflavor,
            "verf": verf, "body": msg[12 + x.p:]}


class GssContext:
    """One RPCSEC_GSS context with a server program over rpcwire.Conn connections.

    creds: gssapi.Credentials of the initiating user; target: host-based service name.
    """

    def __init__(self, conn, prog, vers, creds, service=SVC_INTEGRITY, target="nfs@localhost",
                 xid=0x6a000000):
        import gssapi
        self.gssapi = gssapi
        self.conn, self.prog, self.vers = conn, prog, vers
        self.service = service
        self.xid = xid
        self.handle = None
        self.window = None
        self.seq = 0  # the last seq_num used
        # no replay/sequence flags: RPCSEC_GSS numbers calls itself (RFC 2203 5.3.3.1),
        # and a GSS-level replay check would hide the server's own window from the tests
        flags = (gssapi.RequirementFlag.mutual_authentication
                 | gssapi.RequirementFlag.integrity | gssapi.RequirementFlag.confidentiality)
        self.ctx = gssapi.SecurityContext(
            name=gssapi.Name(target, gssapi.NameType.hostbased_service), creds=creds,
            usage="initiate", mech=gssapi.MechType.kerberos, flags=flags)
        self.init_results = []

    def next_xid(self):
        self.xid = (self.xid + 1) & 0xFFFFFFFF
        return self.xid

    # -- context creation --------------------------------------------------------------

    def establish(self, timeout=10.0):
        """INIT (and CONTINUE_INIT while the server asks): returns the last
        rpc_gss_init_res as a dict (handle, major, minor, window, token)."""
        token = self.ctx.step()
        gss_proc, handle = PROC_INIT, b""
        for _ in range(8):
            xid = self.next_xid()
            cred = gss_cred(gss_proc, 0, self.service, handle)
            msg = call_header(xid, self.prog, self.vers, 0, cred) + w.auth_none() + w.opaque(token)
            r = self.roundtrip(msg, xid, timeout)
            if r["kind"] != "accepted" or r["stat"] != w.SUCCESS:
                raise GssProtocolError(f"context creation answered {r}")
            x = w.Xdr(r["body"])
            res = {"handle": x.opaque(), "major": x.u32(), "minor": x.u32(),
                   "window": x.u32(), "token": x.opaque()}
            if not x.done():
                raise GssProtocolError("trailing bytes after rpc_gss_init_res")
            self.init_results.append(res)
            if res["major"] not in (GSS_S_COMPLETE, GSS_S_CONTINUE_NEEDED):
                raise GssProtocolError(f"server's GSS_Accept_sec_context failed: major "
                                       f"{res['major']:#x} minor {res['minor']:#x}")
            if res["token"]:
                token = self.ctx.step(res["token"])
            if res["major"] == GSS_S_COMPLETE:
                if not self.ctx.complete:
                    raise GssProtocolError("server says complete, client context is not")
                self.handle, self.window = res["handle"], res["window"]
                # RFC 2203 5.2.3.1: the verifier is the MIC of the XDR seq_window
                self.check_verifier(r, w.u32(res["window"]), "INIT reply")
                return res
            gss_proc, handle = PROC_CONTINUE_INIT, res["handle"]
        raise GssProtocolError("context not established after 8 round trips")

    # -- sending and receiving ---------------------------------------------------------

    def roundtrip(self, msg, xid, timeout=10.0, conn=None):
        conn = conn or self.conn
        conn.send(w.record(msg))
        reply = self.recv(timeout, conn)
        if reply is None:
            raise GssProtocolError(f"no reply to xid {xid:#x} within {timeout} s")
        r = parse_reply_gss(reply)
        r["raw"] = reply
        if r["xid"] != xid:
            raise GssProtocolError(f"reply xid {r['xid']:#x}, expected {xid:#x}")
        return r

    @staticmethod
    def recv(timeout, conn):
        """One reply record, or None when none comes within timeout seconds."""
        conn.s.settimeout(timeout)
        try:
            return conn.recv_record()
        except socket.timeout:
            return None

    def check_verifier(self, r, data, what):
        if r["verf_flavor"] != RPCSEC_GSS:
            raise GssProtocolError(f"{what}: verifier flavor {r['verf_flavor']}, not RPCSEC_GSS")
        try:
            self.ctx.verify_signature(data, r["verf"])
        except self.gssapi.exceptions.GSSError as e:
            raise GssProtocolError(f"{what}: reply verifier is not the MIC of {data.hex()}: {e}")

    def data_msg(self, proc, args, seq=None, service=None, handle=None, gss_proc=PROC_DATA,
                 bad_verifier=False, bad_checksum=False, body_seq=None, xid=None):
        """A whole call message (no record mark); returns (msg, xid, seq).

        seq: the credential's seq_num (default: the next one); body_seq: the seq_num inside
        an integrity/privacy body (default: seq); bad_verifier: the header MIC with a bit
        changed; bad_checksum: the integrity checksum, or the privacy token, with a bit
        changed; handle: another context handle than ours."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        else:
            self.seq = max(self.seq, seq) if seq < MAXSEQ else self.seq
        service = self.service if service is None else service
        handle = self.handle if handle is None else handle
        xid = self.next_xid() if xid is None else xid
        cred = gss_cred(gss_proc, seq, service, handle)
        header = call_header(xid, self.prog, self.vers, proc, cred)
        mic = self.ctx.get_signature(header)
        if bad_verifier:
            mic = flip(mic)
        verf = w.u32(RPCSEC_GSS) + w.opaque(mic)
        body = self.protect(args, seq if body_seq is None else body_seq, service, bad_checksum)
        if gss_proc != PROC_DATA:
            body = args  # control procedures carry their (void) arguments unprotected
        return header + verf + body, xid, seq

    def protect(self, args, seq, service, bad_checksum=False):
        if service == SVC_NONE:
            return args
        databody = w.u32(seq) + args
        if service == SVC_INTEGRITY:
            checksum = self.ctx.get_signature(databody)
            if bad_checksum:
                checksum = flip(checksum)
            return w.opaque(databody) + w.opaque(checksum)
        if service == SVC_PRIVACY:
            wrapped = self.ctx.wrap(databody, True)
            if not wrapped.encrypted:
                raise GssProtocolError("gss_wrap did not encrypt")
            token = flip(wrapped.message) if bad_checksum else wrapped.message
            return w.opaque(token)
        raise ValueError(f"service {service}")

    def unprotect(self, body, seq, service):
        """The plain results of a SUCCESS reply body, checking its seq_num."""
        if service == SVC_NONE:
            return body
        x = w.Xdr(body)
        if service == SVC_INTEGRITY:
            databody, checksum = x.opaque(), x.opaque()
            try:
                self.ctx.verify_signature(databody, checksum)
            except self.gssapi.exceptions.GSSError as e:
                raise GssProtocolError(f"reply integrity checksum does not verify: {e}")
        else:
            token = x.opaque()
            try:
                res = self.ctx.unwrap(token)
            except self.gssapi.exceptions.GSSError as e:
                raise GssProtocolError(f"reply privacy token does not unwrap: {e}")
            if not res.encrypted:
                raise GssProtocolError("reply under privacy was not encrypted")
            databody = res.message
        if not x.done():
            raise GssProtocolError("trailing bytes after the protected reply body")
        (body_seq,) = struct.unpack(">I", databody[:4])
        if body_seq != seq:
            raise GssProtocolError(f"reply body seq_num {body_seq}, call's {seq}")
        return databody[4:]

    def call(self, proc, args=b"", timeout=10.0, conn=None, **tamper):
        """A DATA call; returns the reply dict (parse_reply_gss) with for an accepted
        reply its verifier checked and, for SUCCESS, "results" (unprotected, seq_num
        checked). Denied replies come back as they are."""
        msg, xid, seq = self.data_msg(proc, args, **tamper)
        r = self.roundtrip(msg, xid, timeout, conn)
        return self.check_reply(r, seq, tamper.get("service"), tamper.get("gss_proc", PROC_DATA))

    def check_reply(self, r, seq, service=None, gss_proc=PROC_DATA):
        r["seq"] = seq
        if r["kind"] != "accepted":
            return r
        # RFC 2203 5.3.3.2: every accepted reply's verifier is the MIC of the seq_num
        self.check_verifier(r, w.u32(seq), f"reply to seq {seq}")
        if r["stat"] == w.SUCCESS:
            svc = self.service if service is None else service
            r["results"] = r["body"] if gss_proc != PROC_DATA else self.unprotect(r["body"], seq, svc)
        return r

    def send_only(self, proc, args=b"", conn=None, **tamper):
        """Send a DATA call without waiting; returns (xid, seq)."""
        msg, xid, seq = self.data_msg(proc, args, **tamper)
        (conn or self.conn).send(w.record(msg))
        return xid, seq

    def destroy(self, timeout=10.0):
        """RPCSEC_GSS_DESTROY (NULL procedure, next seq_num, the context's service; void
        arguments, unprotected as control messages are); returns the checked reply."""
        return self.call(0, b"", timeout=timeout, gss_proc=PROC_DESTROY)
