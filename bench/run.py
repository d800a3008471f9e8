#!/usr/bin/env python3
"""Side-by-side benchmark: peernfsd against NFS-Ganesha 4.3, printing ratios.

Each server in turn gets a fresh export directory, its own network namespace
(loopback only) and a private /run tmpfs with its own rpcbind; the nfsbench
matrix (MATRIX below) runs against it over 127.0.0.1, then the server is
stopped and its namespace deleted.  One markdown table compares the servers
cell by cell; raw runs go to --out as JSON lines.  Needs root.  See README.md.

    bench/run.py                              # both servers, v3 matrix
    bench/run.py --servers ganesha --secs 2 --reps 1
    bench/run.py --cells getattr,read --vers 3,4
    bench/run.py --record                     # also rewrite bench/RESULTS.md
    bench/run.py --from-jsonl FILE [--record] # table from an earlier run
    bench/run.py --list                       # the cells, then exit
"""
import argparse
import fcntl
import fnmatch
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
NFSBENCH_DIR = os.path.join(HERE, 'nfsbench')
NFSBENCH = os.path.join(NFSBENCH_DIR, 'nfsbench')
RESULTS_MD = os.path.join(HERE, 'RESULTS.md')
TCK = os.sysconf('SC_CLK_TCK')

# ------------------------------------------------------------------ matrix
# One line per workload and NFS version; it expands to one cell per
# (connections, outstanding requests per connection) pair.  '{secs}' and
# '{size}' are filled in from --secs and --size.  A cell's id is
# v<vers>/<workload>/<conns>x<qd>, e.g. v3/getattr/1x1.

CQ = ((1, 1), (4, 16))
FILES = 10000                       # files in the lookup/readdir directory
TIMED = ('-t', '{secs}', '-n', 100000000)
SEQ = ('-t', '{secs}', '-s', '{size}', '-b', 1024)   # 1 MiB READ/WRITE
LOCK_CQ = ((1, 1), (8, 1))          # lock: 1 and 8 connections (own NLM owners)
LOCK_FILE = 'lockbench.dat'         # the lock cells' file, made before start
LOCK_WORKLOADS = ('lock', 'lockheld')   # run by peernfs-lockbench, not nfsbench

MATRIX = [
    # vers  workload   nfsbench arguments besides -c -q -P        conns x qd
    (3, 'getattr', TIMED,                                         CQ),
    (3, 'fstat',   TIMED,                                         CQ),
    (3, 'lookup',  TIMED + ('-f', FILES),                         CQ),
    (3, 'create',  TIMED,                                         CQ),
    (3, 'write',   SEQ,                                           CQ),
    (3, 'read',    SEQ,                                           CQ),
    (3, 'readdir', ('-t', '{secs}', '-n', 1000000, '-f', FILES),  CQ),
    # NFSv4.0 (--vers 3,4).  No v4 write/create: Debian's libnfs 4.0.0
    # cannot encode NFSv4 WRITEs over ~3.9 KiB (see nfsbench/README).
    (4, 'getattr', TIMED,                                         CQ),
    (4, 'fstat',   TIMED,                                         CQ),
    (4, 'lookup',  TIMED + ('-f', FILES),                         CQ),
    (4, 'read',    SEQ,                                           CQ),
    (4, 'readdir', ('-t', '{secs}', '-n', 1000000, '-f', FILES),  CQ),
    # NLM v4: peernfs-lockbench (bench/lockbench.c), one LOCK + UNLOCK pair of a
    # 4 KiB range of its own per connection; a blocking client, so qd is always 1.
    # lockheld: each connection also holds one lock through the run (-a), so a
    # server that un- and re-monitors a client through statd when its lock count
    # goes 0 -> 1 (Ganesha) does that once, not per pair
    (3, 'lock',     ('-t', '{secs}'),                             LOCK_CQ),
    (3, 'lockheld', ('-t', '{secs}', '-a'),                       LOCK_CQ),
]


def cells_of(matrix):
    for vers, wl, args, cqs in matrix:
        for conns, qd in cqs:
            yield {'id': 'v%d/%s/%dx%d' % (vers, wl, conns, qd), 'vers': vers,
                   'wl': wl, 'conns': conns, 'qd': qd, 'args': args}


def select_cells(vers, patterns):
    """Cells of the chosen versions matching any pattern: a glob on the id
    (v3/read/*) or one exact part of it (read, 4x16, v3)."""
    out = []
    for c in cells_of(MATRIX):
        if c['vers'] not in vers:
            continue
        if patterns and not any(fnmatch.fnmatchcase(c['id'], p) or
                                p in c['id'].split('/') for p in patterns):
            continue
        out.append(c)
    return out


# ------------------------------------------------------------------ servers

GANESHA_CONF = """\
# written by bench/run.py: NFS-Ganesha 4.3, VFS FSAL, NFSv3+v4, loopback only
NFS_CORE_PARAM {{
	Protocols = 3, 4;
	NFS_Port = 2049;
	MNT_Port = 20048;
	Enable_NLM = {nlm};  # true only with lock cells (then rpc.statd runs too)
	Enable_RQUOTA = false;
	Enable_UDP = false;
	mount_path_pseudo = true;  # v3 mount path == v4 pseudo path (/export)
}}
NFSV4 {{
	Graceless = true;
	Grace_Period = 5;
	Only_Numeric_Owners = true;
	RecoveryRoot = {dir}/recov;
}}
EXPORT_DEFAULTS {{
	Transports = TCP;
}}
EXPORT {{
	Export_Id = 1;
	Path = {export};
	Pseudo = /export;
	Protocols = 3, 4;
	Access_Type = RW;
	Squash = None;
	SecType = sys;
	FSAL {{ Name = VFS; }}
}}
LOG {{
	Default_Log_Level = EVENT;
}}
"""


def ganesha_setup(a, d, export):
    os.makedirs(d + '/recov', exist_ok=True)
    with open(d + '/ganesha.conf', 'w') as f:
        f.write(GANESHA_CONF.format(dir=d, export=export,
                                    nlm='true' if wants_nlm(a) else 'false'))
    argv = [a.ganesha, '-F', '-f', d + '/ganesha.conf', '-L',
            d + '/ganesha.log', '-p', '/run/ganesha.pid', '-N', 'NIV_EVENT']
    return argv, 'nfs://127.0.0.1/export?version=%d'


def peernfsd_setup(a, d, export):
    os.makedirs(d + '/state', exist_ok=True)
    with open(d + '/exports', 'w') as f:
        f.write('%s *(rw,no_root_squash)\n' % export)
    # --grace 0: as Ganesha's Graceless; the benchmark restarts the server between
    # repetitions, and NFSv4.0 clients of the last one would otherwise have a grace
    # period to reclaim in, in which nfsbench's OPENs get NFS4ERR_GRACE
    argv = [a.peernfsd, '--exports', d + '/exports', '--state-dir',
            d + '/state', '--grace', '0'] + shlex.split(a.peernfsd_args)
    return argv, 'nfs://127.0.0.1' + export + '?version=%d'


# name -> (set-up function, process name in /proc/PID/comm)
SERVERS = {
    'peernfsd': (peernfsd_setup, 'peernfsd'),
    'ganesha': (ganesha_setup, 'ganesha.nfsd'),
}
LABEL = {'peernfsd': 'P', 'ganesha': 'G'}

# Runs inside the namespace: private /run, own rpcbind, for the lock cells
# (PNB_STATD=1) an rpc.statd with its own state directory, as both servers' NLM
# monitor their clients through it; then exec the server (so the launcher's pid
# becomes the server's).
LAUNCH = r'''
mount -t tmpfs -o size=16m,mode=755 tmpfs /run || exit 1
mkdir -p /run/rpcbind
rpcbind -f & echo $! > "$PNB_DIR/rpcbind.pid"
i=0
while [ ! -S /run/rpcbind.sock ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
if [ "$PNB_STATD" = 1 ]; then
    mkdir -p "$PNB_DIR/statd/sm" "$PNB_DIR/statd/sm.bak"
    rpc.statd -F -d --no-notify -P "$PNB_DIR/statd" &
    i=0
    while ! rpcinfo -T tcp 127.0.0.1 100024 1 >/dev/null 2>&1 && [ $i -lt 50 ]; do
        sleep 0.1; i=$((i+1))
    done
fi
exec "$@"
'''


def wants_nlm(a):
    """Lock cells selected: Ganesha gets NLM and both servers an rpc.statd."""
    return getattr(a, 'lock_cells', False)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def sh(cmd, timeout=30, check=False):
    return subprocess.run([str(x) for x in cmd], capture_output=True,
                          text=True, timeout=timeout, check=check)


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def pmem(pid):
    d = {}
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(('VmRSS:', 'VmHWM:')):
                    d[line.split(':')[0] + '_kB'] = int(line.split()[1])
    except OSError:
        pass
    return d


def pcpu(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            rest = f.read().rsplit(')', 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / TCK
    except (OSError, IndexError, ValueError):
        return None


def comm(pid):
    try:
        with open('/proc/%d/comm' % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def descendant(root, name):
    """root or the first of its descendants whose comm is name."""
    kids = {}
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                with open('/proc/%s/stat' % p) as f:
                    ppid = int(f.read().rsplit(')', 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(p))
            except (OSError, IndexError, ValueError):
                pass
    todo = [root]
    while todo:
        pid = todo.pop(0)
        if comm(pid) == name[:15]:
            return pid
        todo += kids.get(pid, [])
    return None


class Server:
    """One server instance in its own netns + mount namespace."""

    def __init__(self, a, name):
        self.a, self.name = a, name
        self.dir = os.path.join(a.workdir, name)
        self.export = os.path.join(self.dir, 'export')
        self.ns = 'pnbench-%d-%s' % (os.getpid(), name)
        self.proc = self.pid = self.rpcbind = None
        self.restarts = 0

    def start(self, fresh):
        setup, pname = SERVERS[self.name]
        if fresh:
            shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.export, exist_ok=True)
        if 4 in self.a.vers:
            # the v4 read cell's file, before the server starts: a server that caches
            # directory contents (Ganesha) would not see a file created under it later
            prefill(os.path.join(self.export, 'nfsbench.dat'), self.a.size << 20)
        if wants_nlm(self.a):
            # also before the start, for the same reason
            lockfile = os.path.join(self.export, LOCK_FILE)
            if not os.path.exists(lockfile):
                prefill(lockfile, 4096)
        argv, self.url = setup(self.a, self.dir, self.export)
        if self.ns not in netns_list():
            sh(['ip', 'netns', 'add', self.ns], check=True)
            sh(['ip', 'netns', 'exec', self.ns, 'ip', 'link', 'set', 'lo',
                'up'], check=True)
        for f in ('rpcbind.pid',):
            if os.path.exists(os.path.join(self.dir, f)):
                os.unlink(os.path.join(self.dir, f))
        self.logf = open(os.path.join(self.dir, 'server.log'), 'ab')
        t0 = time.time()
        self.proc = subprocess.Popen(
            ['ip', 'netns', 'exec', self.ns, 'unshare', '-m',
             '--propagation', 'private', 'sh', '-c', LAUNCH, 'sh'] + argv,
            stdin=subprocess.DEVNULL, stdout=self.logf,
            stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, PNB_DIR=self.dir,
                     PNB_STATD='1' if wants_nlm(self.a) else '0'))
        log('[%s] starting: %s' % (self.name, ' '.join(argv)))
        deadline = t0 + self.a.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError('%s exited with status %s at start; log:\n%s'
                                   % (self.name, self.proc.returncode,
                                      self.log_tail()))
            if time.time() > deadline:
                raise RuntimeError('%s not ready after %d s; log:\n%s' % (
                    self.name, self.a.start_timeout, self.log_tail()))
            if self.ready():
                break
            time.sleep(0.2)
        self.pid = descendant(self.proc.pid, pname)
        if self.pid is None:
            raise RuntimeError('%s: no process named %s under pid %d'
                               % (self.name, pname, self.proc.pid))
        try:
            rb = int(open(os.path.join(self.dir, 'rpcbind.pid')).read())
            if os.getpgid(rb) == self.proc.pid:    # ours, not a reused pid
                self.rpcbind = rb
        except (OSError, ValueError):
            pass
        return {'kind': 'server-start', 'server': self.name, 'pid': self.pid,
                'argv': argv, 'url': self.url, 'restart': self.restarts,
                'startup_s': round(time.time() - t0, 3), **pmem(self.pid)}

    def ready(self):
        """NFS answers on 2049 and NFS + MOUNT (+ NLM and statd for the lock
        cells) are registered with rpcbind."""
        try:
            p = sh(['ip', 'netns', 'exec', self.ns, 'sh', '-c',
                    "bash -c 'exec 3<>/dev/tcp/127.0.0.1/2049' 2>/dev/null &&"
                    " rpcinfo -p 127.0.0.1"], timeout=10)
        except subprocess.TimeoutExpired:
            return False
        progs = {l.split()[0] for l in p.stdout.splitlines()[1:] if l.split()}
        want = {'100003', '100005'}
        if wants_nlm(self.a):
            want |= {'100021', '100024'}
        return p.returncode == 0 and want <= progs

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=15):
        out = []
        for f in ('server.log', 'ganesha.log'):
            try:
                with open(os.path.join(self.dir, f), errors='replace') as fh:
                    out += ['%s: %s' % (f, l.rstrip())
                            for l in fh.readlines()[-n:]]
            except OSError:
                pass
        return '\n'.join(out)

    def stop(self):
        """Stop the server (SIGTERM, then SIGKILL), its rpcbind, and delete
        the namespace.  Returns the server-end record (None if not running)."""
        rec = None
        if self.proc is not None:
            rec = {'kind': 'server-end', 'server': self.name, 'pid': self.pid,
                   'restart': self.restarts, 'was_alive': self.alive()}
            if not rec['was_alive']:
                rec['log_tail'] = self.log_tail()
            if self.pid and rec['was_alive']:
                rec.update(pmem(self.pid), cpu_s_total=pcpu(self.pid))
            if self.alive():
                try:
                    os.kill(self.pid or self.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.proc.wait(timeout=self.a.stop_timeout)
                except subprocess.TimeoutExpired:
                    log('[%s] did not stop in %d s: SIGKILL' %
                        (self.name, self.a.stop_timeout))
                    rec['killed'] = True
            rec['exit_status'] = self.proc.poll()
            # the rest of our process group: rpcbind (and any stragglers)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                if sig == signal.SIGTERM:
                    time.sleep(0.3)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.proc = self.pid = self.rpcbind = None
            self.logf.close()
        if self.ns in netns_list():
            sh(['ip', 'netns', 'delete', self.ns])
        return rec


def netns_list():
    p = sh(['ip', 'netns', 'list'])
    return [l.split()[0] for l in p.stdout.splitlines() if l.split()]


def clean_stale_netns():
    """Delete pnbench-<pid>-* namespaces left by runs that were SIGKILLed."""
    for ns in netns_list():
        m = re.fullmatch(r'pnbench-(\d+)-.*', ns)
        if m and not alive(int(m.group(1))):
            log('deleting stale network namespace %s' % ns)
            sh(['ip', 'netns', 'delete', ns])


# ------------------------------------------------------------------ running

def kv(line):
    return {k: (float(v) if re.fullmatch(r'-?[\d.]+', v) else v)
            for k, v in (w.split('=', 1) for w in line.split() if '=' in w)}


def prefill(path, size):
    """The read cell's file, written on the server's disk (same bytes for both
    servers: nfsbench only reads it)."""
    if os.path.exists(path) and os.path.getsize(path) >= size:
        return
    chunk = bytes(range(256)) * 4096
    with open(path, 'wb') as f:
        left = size
        while left > 0:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n
    # the server runs as root; the export may be squashed: make it readable by all
    os.chmod(path, 0o644)


def warm(path):
    # Proactive pageout (DAMON) may evict pages idle for ~60 s: re-read the
    # file so "read" measures a warm page cache on both servers.
    if os.path.exists(path):
        subprocess.run(['dd', 'if=' + path, 'of=/dev/null', 'bs=1M'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=300, check=False)


class Recorder:
    def __init__(self, path):
        self.path, self.recs = path, []

    def emit(self, rec):
        rec.setdefault('time', time.strftime('%Y-%m-%dT%H:%M:%S'))
        with open('/proc/loadavg') as f:
            rec.setdefault('loadavg', float(f.read().split()[0]))
        self.recs.append(rec)
        with open(self.path, 'a') as f:
            f.write(json.dumps(rec) + '\n')


def run_cell(a, srv, cell, rep):
    fill = {'{secs}': a.secs, '{size}': a.size}
    args = [fill.get(x, x) for x in cell['args']]
    if cell['wl'] == 'read':
        dat = os.path.join(srv.export, 'nfsbench.dat')
        if cell['vers'] == 4:
            prefill(dat, a.size << 20)  # libnfs 4.0.0 cannot write it over NFSv4
        warm(dat)
    if cell['wl'] in LOCK_WORKLOADS:
        # peernfs' client: vers= (libnfs: version=), the file below the export
        url = (srv.url % cell['vers']).split('?')[0]
        cmd = ['ip', 'netns', 'exec', srv.ns, a.lockbench, '-P', srv.pid,
               '-c', cell['conns']] + args + [
                   '%s/%s?vers=%d' % (url, LOCK_FILE, cell['vers'])]
    else:
        cmd = ['ip', 'netns', 'exec', srv.ns, NFSBENCH, '-P', srv.pid,
               '-c', cell['conns'], '-q', cell['qd']] + args + [
                   cell['wl'], srv.url % cell['vers']]
    rec = {'kind': 'cell', 'server': srv.name, 'cell': cell['id'],
           'vers': cell['vers'], 'wl': cell['wl'], 'conns': cell['conns'],
           'qd': cell['qd'], 'rep': rep}
    t0 = time.time()
    try:
        p = sh(cmd, timeout=a.cell_timeout)
        lines = [l for l in p.stdout.splitlines()
                 if l.startswith(('nfsbench ', 'lockbench '))]
        res = kv(lines[-1]) if lines else {}
        for k in ('wl', 'vers', 'conns', 'qd'):
            res.pop(k, None)
        rec.update(res, rc=p.returncode)
        if p.returncode or not lines or res.get('errors'):
            rec['stderr'] = p.stderr[-800:]
    except subprocess.TimeoutExpired:
        rec.update(rc='timeout', stderr='no result after %d s (--cell-timeout)'
                   % a.cell_timeout)
    rec['wall_s'] = round(time.time() - t0, 2)
    rec['server_alive'] = srv.alive()
    if srv.alive():
        rec.update(pmem(srv.pid))
    else:
        rec['server_log'] = srv.log_tail()
    rec['ok'] = rec.get('rc') == 0 and 'ops_s' in rec
    return rec


def brief(rec):
    if not rec['ok']:
        err = (rec.get('stderr') or '').strip().splitlines()
        return 'FAILED rc=%s %s' % (rec.get('rc'), err[-1][:100] if err else '')
    return ('%.0f ops/s %.1f MB/s p99 %.0f us cpu %.2f s rss %.1f MiB%s' % (
        rec['ops_s'], rec['mb_s'], rec['lat_p99_us'],
        rec.get('server_cpu_s', 0), rec.get('VmRSS_kB', 0) / 1024,
        ' errors=%d' % rec['errors'] if rec.get('errors') else ''))


def run_server(a, srv, cells, reps, rec, fresh, last):
    """Start srv, run the cells for each rep in reps, stop it; its export
    directory goes after the last instance (unless --keep)."""
    name = srv.name
    try:
        rec.emit(srv.start(fresh=fresh))
        for rep in reps:
            for cell in cells:
                if not srv.alive():
                    if srv.restarts >= a.max_restarts:
                        rec.emit({'kind': 'cell', 'server': name,
                                  'cell': cell['id'], 'rep': rep, 'ok': False,
                                  'rc': 'skipped', 'stderr': 'server down'})
                        continue
                    rec.emit(srv.stop())
                    srv.restarts += 1
                    log('[%s] restarting (%d/%d)' % (name, srv.restarts,
                                                    a.max_restarts))
                    rec.emit(srv.start(fresh=False))
                r = run_cell(a, srv, cell, rep)
                rec.emit(r)
                log('[%s] rep %d/%d %-18s %s' % (name, rep + 1, a.reps,
                                                 cell['id'], brief(r)))
                if not r['server_alive']:
                    log('[%s] server died (status %s); log tail:\n%s' % (
                        name, srv.proc.returncode, r.get('server_log', '')))
    except RuntimeError as e:
        log('[%s] %s' % (name, e))
        rec.emit({'kind': 'server-error', 'server': name, 'error': str(e)})
    finally:
        # a second Ctrl-C must not cut the clean-up short (it is bounded)
        old = {s: signal.signal(s, signal.SIG_IGN) for s in
               (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            end = srv.stop()
            if end:
                rec.emit(end)
            if last and not a.keep:
                shutil.rmtree(srv.export, ignore_errors=True)
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def run_all(a, cells, rec):
    servers = [Server(a, n) for n in a.servers]
    if not a.interleave:
        for srv in servers:
            run_server(a, srv, cells, range(a.reps), rec, True, True)
        return
    # one instance per server and rep, order alternating (A B, B A, ...),
    # so drifting background load hits both servers alike; the export
    # (and its set-up files) survives from one instance to the next
    for rep in range(a.reps):
        for srv in (servers if rep % 2 == 0 else servers[::-1]):
            run_server(a, srv, cells, [rep], rec, rep == 0,
                       rep == a.reps - 1)


# ------------------------------------------------------------------ table

METRICS = [
    # key, header, format, shown only for these workloads (None: all)
    ('ops_s', 'ops/s', '%.0f', None),
    ('mb_s', 'MB/s', '%.1f', ('read', 'write', 'create')),
    ('lat_p99_us', 'p99 µs', '%.0f', None),
    ('server_cpu_s', 'CPU s', '%.2f', None),
    ('cpu_us_op', 'CPU µs/op', '%.1f', None),
    ('rss_mib', 'RSS MiB', '%.1f', None),
]


def cell_values(rs):
    """Medians over the successful repetitions of one server's cell."""
    ok = [r for r in rs if r.get('ok')]
    if not ok:
        return None
    v = {}
    for r in ok:
        if r.get('ops'):
            r['cpu_us_op'] = r.get('server_cpu_s', 0) / r['ops'] * 1e6
        if 'VmRSS_kB' in r:
            r['rss_mib'] = r['VmRSS_kB'] / 1024
    for key, *_ in METRICS:
        xs = [r[key] for r in ok if isinstance(r.get(key), (int, float))]
        if xs:
            v[key] = statistics.median(xs)
    v['n'] = len(ok)
    v['errors'] = sum(int(r.get('errors', 0)) for r in rs)
    return v


def ratio(x, y):
    if x is None or y is None or not y:
        return '-'
    return '%.2f' % (x / y)


def table(recs):
    servers = []
    for r in recs:
        if r.get('server') and r['server'] not in servers:
            servers.append(r['server'])
    order = [c['id'] for c in cells_of(MATRIX)]
    ids = sorted({r['cell'] for r in recs if r.get('kind') == 'cell'},
                 key=lambda i: order.index(i) if i in order else len(order))
    two = len(servers) == 2
    lab = [LABEL.get(s, s) for s in servers]
    hdr, sep = ['cell'], ['---']
    for _, h, _, _ in METRICS:
        hdr += ['%s %s' % (h, l) for l in lab] + (['%s/%s' % tuple(lab)] if two else [])
    sep += ['--:'] * (len(hdr) - 1)
    rows = ['| ' + ' | '.join(hdr) + ' |', '|' + '|'.join(sep) + '|']
    notes, fails = [], {}
    for cid in ids:
        vals, ran = [], []
        for s in servers:
            rs = [r for r in recs if r.get('kind') == 'cell' and
                  r['server'] == s and r['cell'] == cid]
            v = cell_values(rs) if rs else None
            vals.append(v)
            ran.append(bool(rs))
            bad = [r for r in rs if not r.get('ok')]
            if rs and bad:
                err = (bad[-1].get('stderr') or '').strip().splitlines()
                why = 'rc=%s%s' % (bad[-1].get('rc'),
                                   ': ' + err[-1][:120] if err else '')
                fails.setdefault((s, why), []).append(
                    '%s (%d of %d runs)' % (cid, len(bad), len(rs)))
            if v and v['errors']:
                notes.append('%s %s: %d op errors' % (cid, s, v['errors']))
        wl = cid.split('/')[1]
        row = [cid]
        for key, _, fmt, only in METRICS:
            xs = []
            for v, r in zip(vals, ran):
                if v is None:
                    xs.append(None)
                    row.append('FAIL' if r else '-')
                elif only and wl not in only:
                    xs.append(None)
                    row.append('-')
                else:
                    xs.append(v.get(key))
                    row.append(fmt % v[key] if key in v else '-')
            if two:
                row.append(ratio(*xs) if not (only and wl not in only) else '-')
        rows.append('| ' + ' | '.join(row) + ' |')
    # whole-run row: total server CPU and peak RSS (VmHWM) per instance
    ends = {s: [r for r in recs if r.get('kind') == 'server-end' and
                r['server'] == s and 'VmHWM_kB' in r] for s in servers}
    row = ['whole run (CPU total, peak RSS)']
    for key, _, fmt, _ in METRICS:
        xs = []
        for s in servers:
            e = ends[s]
            if key == 'server_cpu_s' and e:
                xs.append(sum(r.get('cpu_s_total') or 0 for r in e))
            elif key == 'rss_mib' and e:
                xs.append(max(r['VmHWM_kB'] for r in e) / 1024)
            else:
                xs.append(None)
            row.append(fmt % xs[-1] if xs[-1] is not None else '')
        if two:
            row.append(ratio(*xs) if None not in xs else '')
    rows.append('| ' + ' | '.join(row) + ' |')
    notes = ['%s failed in %s: %s' % (s, ', '.join(where), why)
             for (s, why), where in fails.items()] + notes
    legend = ', '.join('%s = %s' % (l, s) for l, s in zip(lab, servers))
    if two:
        legend += '; %s/%s = ratio' % tuple(lab)
    for s in servers:
        for r in recs:
            if r.get('server') == s and r.get('kind') == 'server-error':
                notes.append('%s: %s' % (s, r['error'].splitlines()[0]))
            if r.get('server') != s or r.get('kind') != 'server-end':
                continue
            if not r.get('was_alive'):
                notes.append('%s died during the matrix (exit status %s)'
                             % (s, r.get('exit_status')))
            elif r.get('killed'):
                notes.append('%s ignored SIGTERM for --stop-timeout, killed'
                             % s)
            elif r.get('exit_status') not in (0, None) and s == 'peernfsd':
                notes.append('%s exit status on SIGTERM: %s'
                             % (s, r['exit_status']))
    out = [legend + '. Medians over repetitions; RSS = VmRSS after the cell.',
           ''] + rows
    if notes:
        out += [''] + ['- ' + n for n in notes]
    return '\n'.join(out) + '\n'


# ------------------------------------------------------------------ machine

def machine_info(a):
    info = {}
    try:
        with open('/proc/cpuinfo') as f:
            m = re.search(r'^model name\s*:\s*(.*)$', f.read(), re.M)
        info['cpu'] = m.group(1) if m else platform.processor()
    except OSError:
        info['cpu'] = platform.processor()
    info['cores'] = os.cpu_count()
    try:
        with open('/proc/meminfo') as f:
            info['mem_gib'] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    info['kernel'] = platform.release()
    info['date'] = time.strftime('%Y-%m-%d %H:%M:%S %Z')
    g = sh(['git', '-C', REPO, 'rev-parse', '--short=12', 'HEAD'])
    commit = g.stdout.strip() if g.returncode == 0 else 'no commit'
    d = sh(['git', '-C', REPO, 'status', '--porcelain', '--', 'src',
            'CMakeLists.txt', 'proto'])
    if d.returncode == 0 and d.stdout.strip():
        commit += ' (+ uncommitted changes)'
    info['peernfsd_commit'] = commit
    v = sh(['dpkg-query', '-W', '-f', '${Version}', 'nfs-ganesha'])
    info['ganesha'] = v.stdout.strip() if v.returncode == 0 else '?'
    v = sh(['dpkg-query', '-W', '-f', '${Version}', 'libnfs13'])
    info['libnfs'] = v.stdout.strip() if v.returncode == 0 else '?'
    os.makedirs(a.workdir, exist_ok=True)
    v = sh(['findmnt', '-n', '-o', 'FSTYPE,SOURCE', '--target', a.workdir])
    info['export_fs'] = ' on '.join(v.stdout.split()) or '?'
    return info


def record(md_table, run, path=RESULTS_MD):
    m, p = run['machine'], run['params']
    with open(path, 'w') as f:
        f.write('# Benchmark results: peernfsd vs NFS-Ganesha\n\n'
                'Written by `bench/run.py --record` (see README.md); rerun '
                'to update.  Both servers ran on this machine, one after the '
                'other, each in its own network namespace over loopback, '
                'driven by nfsbench (libnfs) from the same host.\n\n')
        f.write('| | |\n|---|---|\n')
        for k, label in (('cpu', 'CPU'), ('cores', 'cores'),
                         ('mem_gib', 'memory GiB'), ('kernel', 'kernel'),
                         ('date', 'date'),
                         ('peernfsd_commit', 'peernfsd commit'),
                         ('ganesha', 'NFS-Ganesha'), ('libnfs', 'libnfs'),
                         ('export_fs', 'export filesystem')):
            f.write('| %s | %s |\n' % (label, m.get(k, '?')))
        f.write('| peernfsd binary | `%s` %s |\n' % (
            p['peernfsd'], p.get('peernfsd_args', '')))
        f.write('| parameters | --secs %s --reps %s --size %s MiB |\n'
                % (p['secs'], p['reps'], p['size']))
        f.write('| command | `%s` |\n\n' % run['argv'])
        f.write(md_table)


# ------------------------------------------------------------------ main

class Interrupted(BaseException):
    pass


def on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def parse_args():
    ap = argparse.ArgumentParser(
        description='peernfsd vs NFS-Ganesha, side by side (run as root)',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument('--servers', default='peernfsd,ganesha',
                    help='comma-separated, run in this order; the ratio is '
                    'first/second')
    ap.add_argument('--secs', type=float, default=5,
                    help='timed phase of every cell')
    ap.add_argument('--reps', type=int, default=3,
                    help='repetitions of the whole matrix per server')
    ap.add_argument('--vers', default='3', help='NFS versions: 3 or 3,4')
    ap.add_argument('--cells', default='',
                    help='comma-separated patterns: glob on the cell id '
                    '(v3/read/*) or a part of it (read, 4x16)')
    ap.add_argument('--size', type=int, default=1024,
                    help='MiB written/read by write and read')
    ap.add_argument('--peernfsd', default=os.path.join(REPO, 'build', 'bin',
                                                       'peernfsd'))
    ap.add_argument('--lockbench', default=None,
                    help='peernfs-lockbench for the lock cells (default: next '
                    'to --peernfsd)')
    ap.add_argument('--peernfsd-args', default='',
                    help='extra peernfsd options, e.g. "--threads 4"')
    ap.add_argument('--ganesha', default=shutil.which('ganesha.nfsd') or
                    '/usr/bin/ganesha.nfsd')
    ap.add_argument('--out', default=os.path.join(HERE, 'results'),
                    help='directory for the .jsonl and .md of this run')
    ap.add_argument('--workdir', default='/tmp/peernfs-bench',
                    help='exports, configs, logs: <workdir>/<server>/')
    ap.add_argument('--interleave', action='store_true',
                    help='restart the servers for every rep, alternating '
                    'their order, instead of all reps of one server first')
    ap.add_argument('--keep', action='store_true',
                    help='keep the export directories afterwards')
    ap.add_argument('--record', action='store_true',
                    help='rewrite bench/RESULTS.md with the table')
    ap.add_argument('--from-jsonl', metavar='FILE',
                    help='no run: print the table of an earlier run')
    ap.add_argument('--list', action='store_true', help='list cells, exit')
    ap.add_argument('--cell-timeout', type=int, default=300,
                    help='seconds before one nfsbench run is killed')
    ap.add_argument('--start-timeout', type=int, default=30)
    ap.add_argument('--stop-timeout', type=int, default=15)
    ap.add_argument('--max-restarts', type=int, default=2,
                    help='restarts of a server that died during the matrix')
    a = ap.parse_args()
    a.servers = [s for s in a.servers.split(',') if s]
    a.vers = [int(v) for v in a.vers.split(',') if v]
    a.cells = [c for c in a.cells.split(',') if c]
    if a.lockbench is None:
        a.lockbench = os.path.join(os.path.dirname(a.peernfsd),
                                   'peernfs-lockbench')
    for s in a.servers:
        if s not in SERVERS:
            ap.error('unknown server %s (have: %s)' % (s, ', '.join(SERVERS)))
    if a.secs <= 0 or a.reps < 1 or a.size < 1:
        ap.error('--secs, --reps and --size must be positive')
    return a


def preflight(a):
    errs = []
    if os.geteuid() != 0:
        errs.append('needs root (network namespaces, mounts)')
    for tool in ('ip', 'unshare', 'rpcbind', 'rpcinfo', 'bash', 'make', 'cc'):
        if not shutil.which(tool):
            errs.append('missing %s' % tool)
    if 'peernfsd' in a.servers and not os.access(a.peernfsd, os.X_OK):
        errs.append('no peernfsd binary at %s (build it: cmake -S . -B build '
                    '-DCMAKE_BUILD_TYPE=Release && cmake --build build; or '
                    'use --servers ganesha)' % a.peernfsd)
    if 'ganesha' in a.servers and not os.access(a.ganesha, os.X_OK):
        errs.append('no ganesha.nfsd at %s (apt-get install nfs-ganesha '
                    'nfs-ganesha-vfs)' % a.ganesha)
    if wants_nlm(a):
        if not os.access(a.lockbench, os.X_OK):
            errs.append('no peernfs-lockbench at %s (the lock cells; it is built '
                        'with peernfsd, or give --lockbench)' % a.lockbench)
        if not shutil.which('rpc.statd'):
            errs.append('missing rpc.statd (apt-get install nfs-common)')
    if errs:
        sys.exit('run.py: ' + '; '.join(errs))
    p = subprocess.run(['make', '-s', '-C', NFSBENCH_DIR, 'nfsbench'],
                       capture_output=True, text=True)
    if p.returncode:
        sys.exit('run.py: building nfsbench failed (apt-get install '
                 'libnfs-dev):\n' + p.stderr)


def main():
    a = parse_args()
    if a.list:
        for c in select_cells(a.vers, a.cells):
            print(c['id'])
        return
    if a.from_jsonl:
        recs = [json.loads(l) for l in open(a.from_jsonl) if l.strip()]
        md = table(recs)
        print(md, end='')
        run = next((r for r in recs if r.get('kind') == 'run'), None)
        if a.record and run:
            record(md, run)
            log('wrote %s' % RESULTS_MD)
        return
    cells = select_cells(a.vers, a.cells)
    if not cells:
        sys.exit('run.py: no cells match --vers %s --cells %s' %
                 (a.vers, a.cells))
    a.lock_cells = any(c['wl'] in LOCK_WORKLOADS for c in cells)
    preflight(a)
    os.makedirs(a.workdir, exist_ok=True)
    lock = open(os.path.join(a.workdir, '.lock'), 'w')
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.exit('run.py: another run is using %s' % a.workdir)
    clean_stale_netns()
    os.makedirs(a.out, exist_ok=True)
    stamp = time.strftime('%Y%m%d-%H%M%S')
    rec = Recorder(os.path.join(a.out, 'run-%s.jsonl' % stamp))
    run = {'kind': 'run', 'argv': ' '.join(shlex.quote(x) for x in sys.argv),
           'machine': machine_info(a), 'cells': [c['id'] for c in cells],
           'servers': a.servers,
           'params': {'secs': a.secs, 'reps': a.reps, 'size': a.size,
                      'vers': a.vers, 'peernfsd': a.peernfsd,
                      'lockbench': a.lockbench,
                      'peernfsd_args': a.peernfsd_args}}
    rec.emit(run)
    est = len(a.servers) * a.reps * len(cells) * (a.secs + 3) + 30
    log('%d cells x %d servers x %d reps, about %.0f min (bounded by '
        '--cell-timeout %d s per run); results: %s' % (
            len(cells), len(a.servers), a.reps, est / 60, a.cell_timeout,
            rec.path))
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    interrupted = None
    try:
        run_all(a, cells, rec)
    except (KeyboardInterrupt, Interrupted) as e:
        interrupted = e.__class__.__name__ + (' ' + str(e) if str(e) else '')
    finally:
        # run_server's finally has stopped the server; this only guards
        # against a second signal arriving during that clean-up
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        for ns in netns_list():
            if ns.startswith('pnbench-%d-' % os.getpid()):
                sh(['ip', 'netns', 'delete', ns])
    if interrupted:
        rec.emit({'kind': 'interrupted', 'by': interrupted})
        log('interrupted (%s): servers stopped, namespaces deleted' %
            interrupted)
    md = table(rec.recs)
    mdpath = rec.path[:-len('.jsonl')] + '.md'
    with open(mdpath, 'w') as f:
        f.write('# %s\n\n`%s`\n\n' % (stamp, run['argv']) + md)
    print()
    print(md, end='')
    log('\nraw: %s\ntable: %s' % (rec.path, mdpath))
    if a.record:
        if interrupted:
            log('not recording an interrupted run')
        else:
            record(md, run)
            log('wrote %s' % RESULTS_MD)
    sys.exit(130 if interrupted else 0)


if __name__ == '__main__':
    main()
