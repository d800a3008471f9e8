#!/usr/bin/env python3
"""Client copy benchmark: `peernfs get` / `peernfs put` of a big file against
`nfs-cp` (libnfs-utils) over the same server, for peernfsd and NFS-Ganesha, each
in its own network namespace (bench/run.py's server machinery). Prints MB/s and
the ratio peernfs / nfs-cp per server and direction (target: >= 1.2).

    sudo bench/client_copy.py [--size-mib 1024] [--reps 3] [--servers peernfsd,ganesha]
                              [--peernfs build/bin/peernfs] [--peernfsd build/bin/peernfsd]
                              [--vers 3|4.1|4.2]
The local side of every copy is a tmpfs file, so the local disk is not measured.
--vers is the protocol of peernfs' URL; nfs-cp always speaks NFSv3.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (bench/run.py: Server, netns handling)

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, ns):
    t0 = time.time()
    p = subprocess.run(['ip', 'netns', 'exec', ns] + cmd, capture_output=True, text=True,
                       timeout=600)
    dt = time.time() - t0
    if p.returncode != 0:
        raise RuntimeError('%s: exit %d\n%s' % (' '.join(cmd), p.returncode, p.stderr[-800:]))
    return dt


def same_file(a, b):
    return subprocess.run(['cmp', '-s', a, b]).returncode == 0


def bench_server(args, srv, local):
    """-> {(direction, tool): [MB/s...]} for one running server."""
    size = os.path.getsize(local)
    libnfs_url = srv.url % 3  # nfs://127.0.0.1/PATH?version=3
    base = libnfs_url.split('?')[0]
    back = local + '.back'
    out = {}
    for rep in range(args.reps):
        for direction in args.directions:
            # alternate which tool goes first. On VMs that hand freed memory back to the
            # host at once (virtio-balloon free page reporting, e.g. min_free_ms=0), writing
            # 1 GiB into fresh tmpfs pages takes 0.2 s or 2.5 s depending on what the host
            # did with them, and a fixed order made one tool lose most pairs: the first copy
            # of a pair was the slow one. An untimed warm-up copy goes first.
            tools = ('peernfs', 'nfs-cp') if rep % 2 == 0 else ('nfs-cp', 'peernfs')
            for tool in ('warm-up',) + tools:
                # a fresh name per copy: nfs-cp will not overwrite, and a server may
                # cache directory contents, so files are removed through NFS
                name = 'copy-%d-%s.bin' % (rep, tool)
                purl = base + '/' + name + '?vers=' + args.vers
                lurl = base + '/' + name + '?version=3'
                if direction == 'get':
                    timed([args.peernfs, '-q', 'put', local, purl], srv.ns)
                if os.path.exists(back):
                    os.unlink(back)
                # untimed: write back what earlier copies left dirty (nfs-cp never
                # COMMITs, so its put leaves up to 1 GiB for the kernel to flush during
                # the next copies, whichever tool they are)
                os.sync()
                if tool in ('peernfs', 'warm-up'):
                    cmd = [args.peernfs, '-q'] + (['-w', str(args.window)] if args.window else []) + (['put', local, purl] if direction == 'put'
                                                  else ['get', purl, back])
                else:
                    cmd = ['nfs-cp'] + ([local, lurl] if direction == 'put' else [lurl, back])
                dt = timed(cmd, srv.ns)
                check = os.path.join(srv.export, name) if direction == 'put' else back
                if not same_file(local, check):
                    raise RuntimeError('%s %s: copied data differs' % (tool, direction))
                timed([args.peernfs, '-q', 'rm', purl], srv.ns)
                mbs = size / dt / 1e6
                if tool == 'warm-up':
                    continue
                out.setdefault((direction, tool), []).append(mbs)
                bench.log('[%s] rep %d %s %-7s %7.1f MB/s' % (srv.name, rep + 1, direction, tool, mbs))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--size-mib', type=int, default=1024)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--servers', default='peernfsd,ganesha')
    ap.add_argument('--peernfs', default=os.path.join(TOP, 'build/bin/peernfs'))
    ap.add_argument('--peernfsd', default=os.path.join(TOP, 'build/bin/peernfsd'))
    ap.add_argument('--directions', default='put,get', type=lambda v: v.split(','),
                    help='put,get (default) or one of them')
    ap.add_argument('--window', type=int, default=0,
                    help="peernfs' READ/WRITE requests in flight (-w; default: its own)")
    ap.add_argument('--vers', default='3', choices=('3', '4.1', '4.2'),
                    help="peernfs' protocol version (nfs-cp stays on NFSv3)")
    args = ap.parse_args()
    # bench/run.py's options give the Server class what it needs
    sys.argv = [sys.argv[0], '--peernfsd', args.peernfsd, '--servers', args.servers,
                '--workdir', '/tmp/peernfs-bench-copy']
    a = bench.parse_args()
    bench.preflight(a)
    bench.clean_stale_netns()
    tmpfs = tempfile.mkdtemp(dir='/dev/shm', prefix='peernfs-copy-')
    local = os.path.join(tmpfs, 'src.bin')
    with open(local, 'wb') as f:
        chunk = os.urandom(1 << 20)
        for _ in range(args.size_mib):
            f.write(chunk)
    results = {}
    try:
        for name in a.servers:
            srv = bench.Server(a, name)
            srv.start(fresh=True)
            try:
                results[name] = bench_server(args, srv, local)
            finally:
                srv.stop()
    finally:
        for ns in bench.netns_list():
            if ns.startswith('pnbench-%d-' % os.getpid()):
                bench.sh(['ip', 'netns', 'delete', ns])
        subprocess.run(['rm', '-rf', tmpfs])
    # Each repetition copies with both tools back to back, so the ratio within a pair
    # sees the same machine state; its median is reported beside the ratio of medians.
    print('\n| server | direction | peernfs MB/s | nfs-cp MB/s | peernfs/nfs-cp '
          '| pair ratios: median (min-max) | pairs won |')
    print('|---|---|--:|--:|--:|--:|--:|')
    for name, res in results.items():
        for direction in args.directions:
            ps, ns = res[(direction, 'peernfs')], res[(direction, 'nfs-cp')]
            p, n = statistics.median(ps), statistics.median(ns)
            pairs = [a / b for a, b in zip(ps, ns)]
            print('| %s | %s | %.0f | %.0f | %.2f | %.2f (%.2f-%.2f) | %d/%d |'
                  % (name, direction, p, n, p / n, statistics.median(pairs), min(pairs),
                     max(pairs), sum(r > 1 for r in pairs), len(pairs)))
    print('\n%d MiB file, medians of %d runs; local side on tmpfs; peernfs NFSv%s, nfs-cp NFSv3.'
          % (args.size_mib, args.reps, args.vers))


if __name__ == '__main__':
    main()
