#!/usr/bin/env python3
"""The NFSv4.x client library (through the peernfs CLI) survives a server restart and
a dropped connection, as RFC 8881 8.4.2 / 2.10.13 (4.1/4.2) and RFC 7530 9.6 (4.0)
describe:

- `peernfs put` / `get` of a 200 MB file while peernfsd is killed with SIGKILL mid-transfer
  and started again 1.5 s later on the same port and state directory: the command
  succeeds and the data is intact (on the server's disk for put: writes whose verifier
  changed are sent again before COMMIT);
- the same with only the TCP connection killed (`ss -K`, root only): the session
  survives, the client reconnects and binds the new connection to it (4.0: reconnects,
  and RENEW says its client id is still good: nothing reclaimed);
- 4.0: a `put` (which writes by handle) finds the restart through its lost connection
  and the RENEW after the reconnect (STALE_CLIENTID), sets its client id again and
  writes on;
- a byte-range lock held by `peernfs lock --hold` is reclaimed after a restart: another
  client cannot take it during the grace period nor after it; restarted without a grace
  period (nothing can be reclaimed), the holder's state is reported lost.

    test_client_recovery.py --peernfs build/bin/peernfs --peernfsd build/bin/peernfsd
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
BIG = 200 * 1000 * 1000
KILL_AT = 40 * 1000 * 1000  # bytes transferred before the server (or connection) goes


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def wait_size(path, size, proc, timeout=120):
    """Until path has at least size bytes (False if proc ended or time ran out first)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if os.path.getsize(path) >= size:
                return True
        except OSError:
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


class RecoveryTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="peernfs-recovery-")
        cls.src = os.path.join(cls.tmp, "big.src")
        with open(cls.src, "wb") as f:
            for _ in range(BIG // (1 << 20)):
                f.write(os.urandom(1 << 20))
            f.write(os.urandom(BIG % (1 << 20)))
        cls.want = sha256_file(cls.src)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        # a grace period long enough for an idle holder to notice the restart (its lease
        # renewal, every lease/3 s) and reclaim; a lease short enough to keep that quick
        self.srv = Peernfsd(ARGS.peernfsd, exports_opts="rw,no_root_squash,insecure",
                            extra_args=("--grace", "8", "--lease", "10", "--no-statd")).start()
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        try:
            rc = self.srv.stop()
            if rc != 0:
                raise AssertionError(f"peernfsd exit status {rc}:\n{self.srv.read_log()}")
        finally:
            self.srv.cleanup()

    def url(self, path, vers):
        return (f"nfs://127.0.0.1{self.srv.export}{path}?port={self.srv.port}"
                f"&mountport={self.srv.port}&vers={vers}")

    def cli(self, *argv):
        return [ARGS.peernfs, "-q", "-v"] + list(argv)  # -v: the library's recovery log

    def start(self, *argv):
        p = subprocess.Popen(self.cli(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(p)
        return p

    def restart_server(self, gap=1.5, extra_args=None):
        """SIGKILL, then the same port and state directory again after `gap` seconds."""
        self.srv.proc.kill()
        self.srv.proc.wait()
        self.srv.log.close()
        time.sleep(gap)
        if extra_args is not None:
            self.srv.extra_args = list(extra_args)
        self.srv.start()

    def finish(self, p, timeout=300):
        out, err = p.communicate(timeout=timeout)
        self.assertEqual(p.returncode, 0, f"stderr: {err!r}\nserver log:\n{self.srv.read_log()}")
        return out, err

    def transfer_through(self, what, vers, disrupt):
        """put or get the big file, calling disrupt() once KILL_AT bytes have arrived."""
        remote = os.path.join(self.srv.export, "big.bin")
        local = os.path.join(self.tmp, f"big.{what}.{vers}")
        if what == "put":
            p, watch = self.start("put", self.src, self.url("/big.bin", vers)), remote
        else:
            shutil.copyfile(self.src, remote)
            p, watch = self.start("get", self.url("/big.bin", vers), local), local
        t0 = time.time()
        self.assertTrue(wait_size(watch, KILL_AT, p), f"transfer ended early: {p.poll()}")
        t_dis = time.time()
        disrupt()
        out, err = self.finish(p)
        t1 = time.time()
        print(f"\n  {what} vers={vers}: disrupted after {t_dis - t0:.1f} s, done after "
              f"{t1 - t0:.1f} s", file=sys.stderr)
        self.assertEqual(sha256_file(watch if what == "put" else local), self.want)
        if what == "get":
            os.unlink(local)
        err = err.decode()
        self.assertIn("recovery done", err)
        return err

    def test_put_v41_server_killed(self):
        err = self.transfer_through("put", "4.1", self.restart_server)
        # the first 64 MiB batch had writes before and after the restart: sent again
        self.assertIn("client state", err)
        self.assertIn("write verifier changed", err)

    def test_put_v40_server_killed(self):
        err = self.transfer_through("put", "4.0", self.restart_server)
        self.assertIn("reconnected, RENEW: stale clientid", err)
        self.assertIn("SETCLIENTID + SETCLIENTID_CONFIRM: success", err)
        self.assertIn("write verifier changed", err)

    def test_get_v42_server_killed(self):
        self.transfer_through("get", "4.2", self.restart_server)

    def test_put_v42_server_killed(self):
        err = self.transfer_through("put", "4.2", self.restart_server)
        self.assertIn("write verifier changed", err)

    def kill_connections(self):
        # the client's end (destination port = the server's); the kernel resets the peer
        p = subprocess.run(["ss", "-K", "-t", "dst", "127.0.0.1", "dport", "=",
                            f":{self.srv.port}"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f":{self.srv.port}", p.stdout, "ss -K closed no connection")

    def test_put_v42_connection_dropped(self):
        if os.geteuid() != 0 or not shutil.which("ss"):
            self.skipTest("needs root and ss -K")
        err = self.transfer_through("put", "4.2", self.kill_connections)
        self.assertTrue(self.srv.alive())
        # the session survived: no new client state, nothing written twice
        self.assertIn("BIND_CONN_TO_SESSION: success", err)
        self.assertNotIn("client state", err)
        self.assertNotIn("write verifier changed", err)

    def test_put_v40_connection_dropped(self):
        if os.geteuid() != 0 or not shutil.which("ss"):
            self.skipTest("needs root and ss -K")
        err = self.transfer_through("put", "4.0", self.kill_connections)
        self.assertTrue(self.srv.alive())
        self.assertIn("reconnected, RENEW: success", err)
        self.assertNotIn("client state", err)
        self.assertNotIn("write verifier changed", err)

    def test_get_v41_connection_dropped(self):
        if os.geteuid() != 0 or not shutil.which("ss"):
            self.skipTest("needs root and ss -K")
        err = self.transfer_through("get", "4.1", self.kill_connections)
        self.assertNotIn("client state", err)

    def start_holder(self, vers):
        with open(os.path.join(self.srv.export, "lockme"), "wb") as f:
            f.write(b"x" * 100)
        p = self.start("lock", "--hold", "120", "--stats", self.url("/lockme", vers))
        self.assertEqual(p.stdout.readline(), b"locked\n")
        return p

    def other_client_lock(self, vers):
        p = subprocess.run(self.cli("lock", "--hold", "0", self.url("/lockme", vers)),
                           capture_output=True, timeout=180)
        return p.returncode, p.stderr

    def stop_holder(self, p):
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
        return p.returncode, err.decode()

    def lock_reclaimed_after_restart(self, vers):
        a = self.start_holder(vers)
        self.restart_server()
        # during grace: held back until the holder reclaimed (4.1: RECLAIM_COMPLETE ends
        # the grace period; 4.0: it runs out), then refused
        t0 = time.time()
        rc, err = self.other_client_lock(vers)
        self.assertEqual(rc, 3, err)
        print(f"\n  lock vers={vers}: second client refused after {time.time() - t0:.1f} s",
              file=sys.stderr)
        time.sleep(9)  # past any grace period
        rc, err = self.other_client_lock(vers)
        self.assertEqual(rc, 3, err)
        rc, holder_err = self.stop_holder(a)
        self.assertEqual(rc, 0, holder_err)
        self.assertRegex(holder_err, r"recoveries 1 reclaims 2 lost 0", holder_err)
        rc, err = self.other_client_lock(vers)
        self.assertEqual(rc, 0, err)
        return holder_err

    def test_lock_reclaimed_after_restart(self):
        for vers in ("4.1", "4.2"):
            self.lock_reclaimed_after_restart(vers)

    def test_lock_reclaimed_after_restart_v40(self):
        # the idle holder finds the restart with its RENEW (every lease / 3), then
        # SETCLIENTID with the same id and verifier, OPEN CLAIM_PREVIOUS + OPEN_CONFIRM
        # and LOCK reclaim = true with open_to_lock_owner4, all in the grace period
        err = self.lock_reclaimed_after_restart("4.0")
        self.assertIn("SETCLIENTID + SETCLIENTID_CONFIRM: success", err)
        self.assertIn("reclaimed 1 open file(s): success", err)

    def test_lock_lost_without_grace(self):
        a = self.start_holder("4.1")
        # no grace period after this start: the holder's reclaim gets NO_GRACE
        self.restart_server(extra_args=("--grace", "0", "--lease", "10", "--no-statd"))
        deadline = time.time() + 60
        while time.time() < deadline:
            rc, err = self.other_client_lock("4.1")
            if rc == 0:
                break
            time.sleep(1)
        self.assertEqual(rc, 0, err)
        rc, err = self.stop_holder(a)
        self.assertEqual(rc, 1, err)  # its unlock reports the lost state
        self.assertIn("lost 1", err)
        self.assertIn("Input/output error", err)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--peernfs", required=True)
    ap.add_argument("--peernfsd", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
