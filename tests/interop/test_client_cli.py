#!/usr/bin/env python3
"""The peernfs CLI (and so client/) against real servers: a peernfsd on loopback (fixed
port, no rpcbind: port=/mountport= URL args) and NFS-Ganesha 4.3 in a private network
namespace with its own rpcbind (ports found via portmap GETPORT).

Per server and protocol version (peernfsd: v3, v4.0, v4.1, v4.2; Ganesha: v3, v4.0,
v4.1): 100 MB file put/get/cat/cp with checksums (on the server's disk too), a directory
of 5000 entries listed completely, mkdir/mv/ln/ln -s/rm/rm -r, exit codes, the
library's asynchronous calls from one thread (client_async_check.c), and (where the
server has locks) `peernfs lock` conflicts between two client instances (v3: NLM; v4:
LOCK/LOCKT; v4.0 with owner seqids, OPEN_CONFIRM, RELEASE_LOCKOWNER). Over NFSv4.1/4.2
against peernfsd: a delegation held by one instance is recalled (CB_RECALL on its back
channel) when another opens the file for writing, and returned; over NFSv4.0 (no
callback service in the library) none is granted and the writer goes ahead at once.

    test_client_cli.py --peernfs build/bin/peernfs --peernfsd build/bin/peernfsd
                       [--ganesha /usr/bin/ganesha.nfsd | --no-ganesha]
"""
import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from peernfsd_proc import Peernfsd

ARGS = None
BIG = 100 * 1000 * 1000
NENTRIES = 5000


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


class Ganesha:
    """ganesha.nfsd + rpcbind in a loopback-only netns with a private /run."""

    LAUNCH = r'''
mount -t tmpfs -o size=16m,mode=755 tmpfs /run || exit 1
mkdir -p /run/rpcbind
rpcbind -f & echo $! > "$D/rpcbind.pid"
i=0; while [ ! -S /run/rpcbind.sock ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
exec "$@"
'''

    def __init__(self, binary):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="peernfs-cli-ganesha-")
        self.export = os.path.join(self.dir, "export")
        os.mkdir(self.export)
        os.mkdir(os.path.join(self.dir, "recov"))
        self.ns = f"pnfscli{os.getpid()}"
        self.proc = None

    def start(self):
        conf = os.path.join(self.dir, "ganesha.conf")
        with open(conf, "w") as f:
            f.write(f"""NFS_CORE_PARAM {{ Protocols = 3, 4; Enable_UDP = false; Enable_RQUOTA = false;
  MNT_Port = 20048; Enable_NLM = false; Mount_Path_Pseudo = true; }}
NFSV4 {{ Graceless = true; RecoveryBackend = fs; RecoveryRoot = "{self.dir}/recov"; }}
NFS_KRB5 {{ Active_krb5 = false; }}
EXPORT {{ Export_Id = 1; Path = "{self.export}"; Pseudo = /export; Protocols = 3, 4;
  Transports = TCP; Access_Type = RW; Squash = No_Root_Squash; SecType = sys;
  FSAL {{ Name = VFS; }} }}
LOG {{ Default_Log_Level = EVENT; }}
""")
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(["ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up"], check=True)
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "unshare", "-m", "--propagation", "private",
             "sh", "-c", self.LAUNCH, "sh", self.binary, "-F", "-f", conf,
             "-L", os.path.join(self.dir, "ganesha.log"), "-p", "/run/ganesha.pid"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True, env=dict(os.environ, D=self.dir))
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ganesha exited: " + self.read_log())
            p = subprocess.run(["ip", "netns", "exec", self.ns, "rpcinfo", "-p", "127.0.0.1"],
                               capture_output=True, text=True)
            if p.returncode == 0 and " 100003 " in p.stdout and " 100005 " in p.stdout:
                return self
            time.sleep(0.3)
        raise RuntimeError("ganesha did not register with rpcbind: " + self.read_log())

    def read_log(self):
        out = ""
        for n in ("server.log", "ganesha.log"):
            try:
                with open(os.path.join(self.dir, n), errors="replace") as f:
                    out += f.read()[-3000:]
            except OSError:
                pass
        return out

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            # the launcher's session: ganesha (exec'd) and its rpcbind
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        try:
            with open(os.path.join(self.dir, "rpcbind.pid")) as f:
                os.kill(int(f.read()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        if self.proc:
            self.log.close()
        subprocess.run(["ip", "netns", "delete", self.ns], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class CliTests:
    """Mixed into one TestCase per server; subclasses set srv, url_base, args, prefix."""

    prefix = []  # command prefix (ip netns exec NS)

    def run_cli(self, *argv, ok=True, code=None, inp=None, timeout=300, user=None):
        cmd = self.prefix + [ARGS.peernfs, "-q"] + list(argv)
        if user is not None:  # run as another (unprivileged) user: no reserved ports
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, input=inp)
        want = 0 if ok and code is None else code
        if want is not None:
            self.assertEqual(p.returncode, want,
                             f"{' '.join(cmd)}\nstdout: {p.stdout[-2000:]!r}\nstderr: {p.stderr!r}")
        return p

    def url(self, path=""):
        return f"{self.url_base}{path}{self.url_args}"

    def test_big_file(self):
        src = os.path.join(self.tmp, "big.src")
        with open(src, "wb") as f:
            for _ in range(BIG // (1 << 20)):
                f.write(os.urandom(1 << 20))
            f.write(os.urandom(BIG % (1 << 20)))
        want = sha256_file(src)
        self.run_cli("put", src, self.url("/big.bin"))
        self.assertEqual(sha256_file(os.path.join(self.export, "big.bin")), want)
        back = os.path.join(self.tmp, "big.back")
        self.run_cli("get", self.url("/big.bin"), back)
        self.assertEqual(sha256_file(back), want)
        p = self.run_cli("cat", self.url("/big.bin"))
        self.assertEqual(hashlib.sha256(p.stdout).hexdigest(), want)
        self.run_cli("cp", self.url("/big.bin"), self.url("/big.copy"))
        self.assertEqual(sha256_file(os.path.join(self.export, "big.copy")), want)
        p = self.run_cli("stat", self.url("/big.copy"))
        self.assertIn(f"Size: {BIG}", p.stdout.decode())
        # put over an existing, longer file truncates it
        small = os.path.join(self.tmp, "small")
        with open(small, "wb") as f:
            f.write(b"hello\n")
        self.run_cli("cp", small, self.url("/big.copy"))
        with open(os.path.join(self.export, "big.copy"), "rb") as f:
            self.assertEqual(f.read(), b"hello\n")
        # into a directory URL: keeps the source's name
        self.run_cli("mkdir", self.url("/into"))
        self.run_cli("put", small, self.url("/into"))
        with open(os.path.join(self.export, "into", "small"), "rb") as f:
            self.assertEqual(f.read(), b"hello\n")
        for n in ("big.bin", "big.copy"):
            self.run_cli("rm", self.url("/" + n))
            self.assertFalse(os.path.exists(os.path.join(self.export, n)))

    def test_big_dir(self):
        d = os.path.join(self.export, "many")
        os.mkdir(d)
        names = {f"entry-{i:05d}-{'x' * (i % 40)}" for i in range(NENTRIES)}
        for n in names:
            os.close(os.open(os.path.join(d, n), os.O_CREAT | os.O_WRONLY, 0o644))
        p = self.run_cli("ls", self.url("/many"))
        got = p.stdout.decode().split("\n")[:-1]
        self.assertEqual(len(got), NENTRIES)
        self.assertEqual(set(got), names)
        self.assertEqual(got, sorted(got))
        p = self.run_cli("ls", "-l", self.url("/many"))
        lines = p.stdout.decode().split("\n")[:-1]
        self.assertEqual(len(lines), NENTRIES)
        self.assertTrue(all(l.startswith("-rw-r--r--") for l in lines), lines[:3])

    def test_namespace_ops(self):
        with open(os.path.join(self.export, "f"), "wb") as f:
            f.write(b"data")
        self.run_cli("mkdir", self.url("/dir"))
        self.assertTrue(os.path.isdir(os.path.join(self.export, "dir")))
        self.run_cli("mv", self.url("/f"), self.url("/dir/g"))
        self.assertFalse(os.path.exists(os.path.join(self.export, "f")))
        self.run_cli("ln", self.url("/dir/g"), self.url("/hard"))
        self.assertEqual(os.stat(os.path.join(self.export, "hard")).st_nlink, 2)
        self.assertEqual(os.stat(os.path.join(self.export, "hard")).st_ino,
                         os.stat(os.path.join(self.export, "dir", "g")).st_ino)
        self.run_cli("ln", "-s", "dir/g", self.url("/soft"))
        self.assertEqual(os.readlink(os.path.join(self.export, "soft")), "dir/g")
        p = self.run_cli("stat", self.url("/soft"))
        self.assertIn("Target: dir/g", p.stdout.decode())
        self.assertIn("symbolic link", p.stdout.decode())
        p = self.run_cli("ls", self.url("/dir"))
        self.assertEqual(p.stdout, b"g\n")
        p = self.run_cli("cat", self.url("/hard"))
        self.assertEqual(p.stdout, b"data")
        # rm: a non-empty directory fails, files and then the directory succeed
        p = self.run_cli("rm", self.url("/dir"), code=1)
        self.assertIn(b"NOTEMPTY", p.stderr)
        self.run_cli("rm", self.url("/dir/g"))
        self.run_cli("rm", self.url("/dir"))
        self.run_cli("rm", self.url("/soft"))
        self.run_cli("rm", self.url("/hard"))
        self.assertFalse(os.path.exists(os.path.join(self.export, "dir")))
        p = self.run_cli("df", self.url(""))
        self.assertIn(b"1K-blocks", p.stdout)

    def test_rm_recursive(self):
        # rm -r: a tree of 3 levels (files, symlinks, empty and full directories) goes
        # entirely; a file works with -r too; a missing one fails with exit 1
        top = os.path.join(self.export, "tree")
        count = 0
        for a in range(3):
            for b in range(4):
                d = os.path.join(top, f"a{a}", f"b{b}")
                os.makedirs(d)
                for i in range(60):
                    with open(os.path.join(d, f"file{i}"), "wb") as f:
                        f.write(b"x" * i)
                    count += 1
                os.symlink("file0", os.path.join(d, "link"))
            os.mkdir(os.path.join(top, f"a{a}", "empty"))
        with open(os.path.join(top, "lone"), "wb") as f:
            f.write(b"y")
        self.assertGreater(count, 700)
        self.run_cli("rm", "-r", self.url("/tree"))
        self.assertFalse(os.path.exists(top))
        with open(os.path.join(self.export, "plain"), "wb") as f:
            f.write(b"z")
        self.run_cli("rm", "-r", self.url("/plain"))
        self.assertFalse(os.path.exists(os.path.join(self.export, "plain")))
        p = self.run_cli("rm", "-r", self.url("/tree"), code=1)
        self.assertIn(b"NOENT", p.stderr)

    def test_exit_codes(self):
        self.run_cli("--help")
        self.run_cli(code=2)
        self.run_cli("frobnicate", self.url(""), code=2)
        self.run_cli("ls", code=2)
        self.run_cli("ls", "/not/a/url", code=2)
        self.run_cli("ls", "nfs://127.0.0.1:99999/x", code=2)
        self.run_cli("ls", self.url("") + "&bogus=1" if self.url_args else self.url("") + "?bogus=1",
                     code=2)
        p = self.run_cli("stat", self.url("/no-such-file"), code=1)
        self.assertIn(b"NOENT", p.stderr)
        self.run_cli("get", self.url("/no-such-file"), os.path.join(self.tmp, "x"), code=1)
        p = self.run_cli("ls", self.url_base + "?vers=4.3", code=2)
        self.assertIn(b"bad vers=4.3", p.stderr)
        self.run_cli("mkdir", self.url("/no/such/parent"), code=1)
        self.run_cli("cp", "/etc/hostname", "/tmp/x", code=2)


    has_locks = True

    def start_lock_holder(self, name, *opts):
        """`peernfs lock ... --hold 60` in the background, once it printed "locked"."""
        cmd = self.prefix + [ARGS.peernfs, "-q", "lock", *opts, "--hold", "60", "--stats",
                             self.url("/" + name)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = p.stdout.readline()
        if line != b"locked\n":
            p.kill()
            out, err = p.communicate()
            self.fail(f"lock holder did not lock: {line!r} {err!r}")
        return p

    def stop_lock_holder(self, p):
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        return err.decode()

    def test_async_api(self):
        # the library's asynchronous metadata calls, queued from one thread (see
        # client_async_check.c): 200 creates/setattrs/lookups/renames/removes at once,
        # symlink/readlink/link/readdir/fsstat, and locks over two instances
        if not ARGS.async_check:
            self.skipTest("no --async-check binary")
        cmd = self.prefix + [ARGS.async_check, self.url("")]
        if self.has_locks:
            cmd.append("--locks")
        p = subprocess.run(cmd, capture_output=True, timeout=300)
        self.assertEqual(p.returncode, 0, f"{' '.join(cmd)}\nstdout: {p.stdout!r}\n"
                                          f"stderr: {p.stderr[-4000:]!r}")
        self.assertIn(b"all checks passed", p.stdout)
        self.assertEqual([n for n in os.listdir(self.export) if n.startswith("async.")], [],
                         "the check's directory was not removed")

    def test_lock_conflict(self):
        if not self.has_locks:
            self.skipTest("no lock service on this server")
        with open(os.path.join(self.export, "lockme"), "wb") as f:
            f.write(b"x" * 100)
        a = self.start_lock_holder("lockme", "--write")
        try:
            # a second client instance: write and read locks conflict (exit 3), a
            # disjoint range does not; testlock names the holder's range
            p = self.run_cli("lock", "--hold", "0", self.url("/lockme"), code=3)
            self.assertIn(b"held by someone else", p.stderr)
            self.run_cli("lock", "--read", "--hold", "0", self.url("/lockme"), code=3)
        finally:
            self.stop_lock_holder(a)
        self.run_cli("lock", "--hold", "0", self.url("/lockme"))
        # a range lock; a command run under the lock gives its exit status
        a = self.start_lock_holder("lockme", "--range", "0:10")
        try:
            self.run_cli("lock", "--range", "10:10", self.url("/lockme"), "--", "true")
            self.run_cli("lock", "--range", "5:10", "--hold", "0", self.url("/lockme"), code=3)
        finally:
            self.stop_lock_holder(a)
        self.run_cli("lock", self.url("/lockme"), "--", "sh", "-c", "exit 7", code=7)
        # --wait: polls until the holder lets go
        a = self.start_lock_holder("lockme")
        waiter = subprocess.Popen(self.prefix + [ARGS.peernfs, "-q", "lock", "--wait",
                                                 self.url("/lockme"), "--", "true"])
        time.sleep(1.5)
        self.assertIsNone(waiter.poll(), "--wait returned while the lock was held")
        self.stop_lock_holder(a)
        self.assertEqual(waiter.wait(60), 0)


class PeernfsdCli(CliTests, unittest.TestCase):
    vers_arg = ""  # v3: MOUNT and NLM on the NFS port (no rpcbind)

    @classmethod
    def setUpClass(cls):
        # no grace period: v4 OPEN and NLM would be held back for 90 s after start
        cls.srv = Peernfsd(ARGS.peernfsd, exports_opts="rw,no_root_squash,insecure",
                           extra_args=("--grace", "0", "--no-statd")).start()
        cls.export = cls.srv.export
        cls.url_base = f"nfs://127.0.0.1{cls.srv.export}"
        cls.url_args = f"?port={cls.srv.port}&mountport={cls.srv.port}{cls.vers_arg}"
        cls.tmp = tempfile.mkdtemp(prefix="peernfs-cli-")

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.srv.stop()
            if rc != 0:
                raise AssertionError(f"peernfsd exit status {rc}:\n{cls.srv.read_log()}")
        finally:
            cls.srv.cleanup()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_ipv6_and_window(self):
        with open(os.path.join(self.export, "v6"), "wb") as f:
            f.write(os.urandom(3 * 1024 * 1024 + 17))
        for w in ("1", "3", "64"):
            p = self.run_cli("-w", w, "cat",
                             f"nfs://[::1]{self.srv.export}/v6{self.url_args}")
            with open(os.path.join(self.export, "v6"), "rb") as f:
                self.assertEqual(p.stdout, f.read())

    def test_secure_export(self):
        # exports default to `secure`: as root the client connects from a reserved port
        # and is served; the same command as an unprivileged user is refused cleanly
        srv = Peernfsd(ARGS.peernfsd, exports_opts="rw,no_root_squash").start()
        try:
            url = f"nfs://127.0.0.1{srv.export}?port={srv.port}&mountport={srv.port}"
            if os.geteuid() != 0:
                self.skipTest("needs root for a reserved port")
            self.run_cli("ls", url, code=0)
            p = self.run_cli("ls", url, code=1, user=65534)
            self.assertIn(b"MOUNT", p.stderr)
            self.assertIn(b"ACCES", p.stderr)
        finally:
            srv.stop()
            srv.cleanup()

    def test_connection_refused(self):
        p = self.run_cli("ls", f"nfs://127.0.0.1{self.export}?port=1&mountport=1", code=1)
        self.assertIn(b"refused", p.stderr)


class PeernfsdCliV40(PeernfsdCli):
    vers_arg = "&vers=4.0"

    def test_lost_open_reply(self):
        # an OPEN that times out while the server is frozen (SIGSTOP), which the server
        # then runs: the library must not reuse its owner seqid, else the server takes
        # the next OPEN for a retransmission and answers it with the lost one's reply
        if not ARGS.v40_lost:
            self.skipTest("no --v40-lost binary")
        p = subprocess.Popen([ARGS.v40_lost, self.url("") + "&timeo=1"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(p.stdout.readline().strip(), "ready")
            os.kill(self.srv.proc.pid, signal.SIGSTOP)
            try:
                p.stdin.write("go\n")
                p.stdin.flush()
                line = p.stdout.readline().strip()
                self.assertTrue(line.startswith("lost "), line)
            finally:
                os.kill(self.srv.proc.pid, signal.SIGCONT)
            # the server runs the frozen OPEN of b now
            deadline = time.time() + 10
            while not os.path.exists(os.path.join(self.export, "lost-b")):
                self.assertLess(time.time(), deadline, "the server never ran the lost OPEN")
                time.sleep(0.05)
            p.stdin.write("go\n")
            p.stdin.flush()
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, f"stdout: {out!r}\nstderr: {err!r}")
            self.assertEqual(out.strip(), "ok")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        with open(os.path.join(self.export, "lost-c"), "rb") as f:
            self.assertEqual(f.read(), b"seqid")

    def test_no_delegation(self):
        # the library gives SETCLIENTID a callback address nobody listens at: the
        # server's probe fails, it grants no delegation, and another client's OPEN for
        # writing needs no recall; the reader's lease is kept by RENEW
        with open(os.path.join(self.export, "nodeleg"), "wb") as f:
            f.write(b"before\n")
        a = self.start_lock_holder("nodeleg", "--read")
        try:
            src = os.path.join(self.tmp, "after40")
            with open(src, "wb") as f:
                f.write(b"after\n")
            t0 = time.time()
            self.run_cli("put", src, self.url("/nodeleg"), timeout=60)
            self.assertLess(time.time() - t0, 10)
        finally:
            err = self.stop_lock_holder(a)
        with open(os.path.join(self.export, "nodeleg"), "rb") as f:
            self.assertEqual(f.read(), b"after\n")
        self.assertRegex(err, r"delegations 0 recalls 0 delegreturns 0 callbacks 0 ", err)

    def test_vers4_is_40(self):
        # vers=4 means 4.0: such a client's locks meet a 4.0 holder's range, not beside it
        with open(os.path.join(self.export, "a4"), "wb") as f:
            f.write(b"y" * 10)
        url = self.url_base + "/a4" + self.url_args.replace("vers=4.0", "vers=4")
        a = self.start_lock_holder("a4", "--range", "0:5")
        try:
            p = self.run_cli("lock", "--range", "0:1", "--hold", "0", url, code=3)
            self.assertIn(b"held by someone else", p.stderr)
            self.run_cli("lock", "--range", "5:1", "--hold", "0", url)
        finally:
            self.stop_lock_holder(a)


class PeernfsdCliV41(PeernfsdCli):
    vers_arg = "&vers=4.1"

    def test_delegation_recall(self):
        # A opens for reading (peernfsd hands out a read delegation) and holds a read
        # lock; B opens the file for writing (put): the server recalls A's delegation over
        # A's back channel, A's library returns it (DELEGRETURN from its lease thread), and
        # B's OPEN, answered NFS4ERR_DELAY meanwhile, succeeds on a retry.
        with open(os.path.join(self.export, "deleg"), "wb") as f:
            f.write(b"before\n")
        a = self.start_lock_holder("deleg", "--read")
        try:
            src = os.path.join(self.tmp, "after")
            with open(src, "wb") as f:
                f.write(b"after\n")
            self.run_cli("put", src, self.url("/deleg"), timeout=60)
        finally:
            err = self.stop_lock_holder(a)
        with open(os.path.join(self.export, "deleg"), "rb") as f:
            self.assertEqual(f.read(), b"after\n")
        self.assertRegex(err, r"delegations 1 recalls 1 delegreturns 1 ", err)


class PeernfsdCliV42(PeernfsdCliV41):
    vers_arg = "&vers=4.2"


class GaneshaCli(CliTests, unittest.TestCase):
    has_locks = False  # started with Enable_NLM = false
    url_args = ""  # ports from Ganesha's rpcbind

    @classmethod
    def setUpClass(cls):
        if not ARGS.ganesha:
            raise unittest.SkipTest("no ganesha.nfsd")
        cls.srv = Ganesha(ARGS.ganesha)
        try:
            cls.srv.start()
        except Exception:
            cls.srv.cleanup()
            raise
        cls.export = cls.srv.export
        cls.url_base = "nfs://127.0.0.1/export"
        cls.prefix = ["ip", "netns", "exec", cls.srv.ns]
        cls.tmp = tempfile.mkdtemp(prefix="peernfs-cli-")

    @classmethod
    def tearDownClass(cls):
        alive = cls.srv.proc.poll() is None
        log = cls.srv.read_log()
        cls.srv.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if not alive:
            raise AssertionError("ganesha died during the tests:\n" + log)


class GaneshaCliV41(GaneshaCli):
    has_locks = True  # NFSv4 locks are Ganesha's own (no NLM needed)
    url_args = "?vers=4.1"


class GaneshaCliV40(GaneshaCli):
    has_locks = True
    url_args = "?vers=4.0"


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--peernfs", required=True)
    ap.add_argument("--peernfsd", required=True)
    ap.add_argument("--ganesha", default=shutil.which("ganesha.nfsd"))
    ap.add_argument("--no-ganesha", action="store_true")
    ap.add_argument("--async-check", help="client_async_check binary (test_async_api)")
    ap.add_argument("--v40-lost", help="client_v40_lost binary (test_lost_open_reply)")
    ARGS, rest = ap.parse_known_args()
    if ARGS.no_ganesha:
        ARGS.ganesha = None
    if os.geteuid() != 0 and ARGS.ganesha:
        print("not root: Ganesha part skipped", file=sys.stderr)
        ARGS.ganesha = None
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
