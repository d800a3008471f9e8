"""Start and stop a real peernfsd for interop tests (no rpcbind: fixed loopback port)."""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc, port, timeout, name, output):
    """Wait until something accepts TCP connections on 127.0.0.1:port; RuntimeError (with
    output(), the process's log) if proc exits first or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {output()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not start listening: {output()}")


class Peernfsd:
    """peernfsd on 127.0.0.1 and ::1 exporting a fresh temp directory."""

    def __init__(self, binary, exports_opts="rw,no_root_squash", extra_args=()):
        self.binary = binary
        self.tmp = tempfile.mkdtemp(prefix="peernfs-interop-")
        self.export = os.path.join(self.tmp, "export")
        os.mkdir(self.export)
        self.state = os.path.join(self.tmp, "state")
        self.port = free_port()
        self.exports_file = os.path.join(self.tmp, "exports")
        with open(self.exports_file, "w") as f:
            f.write(f"{self.export} *({exports_opts})\n")
        self.log_path = os.path.join(self.tmp, "peernfsd.log")
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self, timeout=10):
        args = [self.binary, "--no-rpcbind", "-p", str(self.port), "-l", "127.0.0.1", "-l", "::1",
                "--state-dir", self.state, "--exports", self.exports_file, "-d", "info"]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args + self.extra_args, stdout=self.log, stderr=self.log)
        wait_listening(self.proc, self.port, timeout, "peernfsd", self.read_log)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, timeout=15):
        """SIGTERM; returns the exit status (must be 0 for a clean shutdown)."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("peernfsd did not stop on SIGTERM")
        self.log.close()
        return self.proc.returncode

    def stop_and_cleanup(self):
        """End of a test class: SIGTERM, which must exit 0 (AssertionError with the log
        otherwise), then remove everything. Returns the server's log."""
        try:
            rc = self.stop()
            log = self.read_log()
            if rc != 0:
                raise AssertionError(f"peernfsd exit status {rc} after SIGTERM:\n{log}")
            return log
        finally:
            self.cleanup()

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_unittests(module_globals):
    """main() of a test script that needs only a peernfsd: --peernfsd PATH becomes the
    script's BINARY, the other arguments go to unittest."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--peernfsd", required=True)
    args, rest = ap.parse_known_args()
    module_globals["BINARY"] = args.peernfsd
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
