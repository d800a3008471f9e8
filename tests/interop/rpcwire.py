"""Just enough ONC RPC (RFC 5531) on raw sockets to send well-formed and hostile calls."""
import socket
import struct

CALL, REPLY = 0, 1
MSG_ACCEPTED, MSG_DENIED = 0, 1
SUCCESS, PROG_UNAVAIL, PROG_MISMATCH, PROC_UNAVAIL, GARBAGE_ARGS = 0, 1, 2, 3, 4
RPC_MISMATCH, AUTH_ERROR = 0, 1
AUTH_BADCRED, AUTH_TOOWEAK = 1, 5
LAST_FRAG = 0x80000000


def u32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)



def u64(v):
    return struct.pack(">Q", v)


class Xdr:
    """A cursor over XDR bytes (d: the bytes, p: the position)."""

    def __init__(self, data):
        self.d, self.p = data, 0

    def _take(self, fmt, n):
        (v,) = struct.unpack(fmt, self.d[self.p:self.p + n])
        self.p += n
        return v

    def u32(self):
        return self._take(">I", 4)

    def i32(self):
        return self._take(">i", 4)

    def u64(self):
        return self._take(">Q", 8)

    def fixed(self, n):
        v = self.d[self.p:self.p + n]
        self.p += (n + 3) & ~3
        return v

    def opaque(self):
        return self.fixed(self.u32())

    def bitmap(self):
        return [self.u32() for _ in range(self.u32())]

    def done(self):
        return self.p == len(self.d)

def opaque(b):
    return u32(len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)


def auth_none():
    return u32(0) + u32(0)


def auth_sys(uid=0, gid=0, gids=(), machine=b"test"):
    body = u32(0) + opaque(machine) + u32(uid) + u32(gid) + u32(len(gids)) + b"".join(u32(g) for g in gids)
    return u32(1) + opaque(body)


def call(xid, prog, vers, proc, args=b"", cred=None, rpcvers=2):
    cred = auth_sys() if cred is None else cred
    return u32(xid) + u32(CALL) + u32(rpcvers) + u32(prog) + u32(vers) + u32(proc) + cred + auth_none() + args


def record(msg):
    return u32(LAST_FRAG | len(msg)) + msg


class Conn:
    def __init__(self, host, port, timeout=5.0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect((host, port))

    def send(self, data):
        self.s.sendall(data)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        return buf

    def recv_record(self):
        data = b""
        while True:
            (mark,) = struct.unpack(">I", self.recv_exact(4))
            data += self.recv_exact(mark & 0x7FFFFFFF)
            if mark & LAST_FRAG:
                return data

    def is_closed(self, wait=3.0):
        """True when the server closed the connection (EOF or reset) within `wait` s."""
        self.s.settimeout(wait)
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def parse_reply(msg):
    """-> dict(xid, kind, stat, low, high, body) where kind is 'accepted' or 'denied'."""
    xid, mtype, rstat = struct.unpack(">III", msg[:12])
    assert mtype == REPLY, "not a reply"
    if rstat == MSG_DENIED:
        (why,) = struct.unpack(">I", msg[12:16])
        extra = struct.unpack(">II", msg[16:24]) if why == RPC_MISMATCH else struct.unpack(">I", msg[16:20])
        return {"xid": xid, "kind": "denied", "reject": why, "detail": extra}
    vflavor, vlen = struct.unpack(">II", msg[12:20])
    off = 20 + ((vlen + 3) & ~3)
    (stat,) = struct.unpack(">I", msg[off:off + 4])
    r = {"xid": xid, "kind": "accepted", "stat": stat, "body": msg[off + 4:]}
    if stat == PROG_MISMATCH:
        r["low"], r["high"] = struct.unpack(">II", msg[off + 4:off + 12])
    return r
