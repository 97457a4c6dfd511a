#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A real stratad killed under load, seen from the client (libstrata through
the Python binding).  Threads put (0 B, 1 B, 4 KiB, 1 MiB, 9 MiB; the same
keys again and again) and delete while the node is killed with SIGKILL at
random moments and started again (STRATA_KILL9_ROUNDS rounds, default 10),
then stopped with SIGTERM during the same load, and with SIGTERM while a
client reads a 9 MiB object slowly (it must finish whole: the node lets
requests under way finish).  After each start: every object whose
put or delete the client saw acknowledged is exactly that (bytes, size,
etag); one whose last operation failed is either its old or its new value,
never a mix (nothing half visible); the listing agrees with the gets.
The hot tier is small (48M): puts spill to cold, the mover demotes.
SIGTERM exits 0.  At the end, with everything deleted and compaction run
(gc every 10 s), no byte is left live or used in the tiers
(strata admin tiers)."""
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsutil import Node, check, fail, get_through, import_strata  # noqa: E402

strata = import_strata()

ROUNDS = int(os.environ.get('STRATA_KILL9_ROUNDS', '10'))
THREADS = 4
KEYS = 6                        # per thread: each key has one writer
SIZES = [0, 1, 4096, 1 << 20, 9 << 20]
CHUNK = 4 << 20                 # the default chunk_size
BUCKET = 'crash'
seed = int(os.environ.get('STRATA_KILL9_SEED', str(random.randrange(1 << 30))))
print('seed %d (STRATA_KILL9_SEED)' % seed, flush=True)
rng = random.Random(seed)
BASE = rng.randbytes(2 * SIZES[-1] + 4096)


class Value:
    """An object's content, made from (gen, size) alone."""

    def __init__(self, gen, size):
        self.gen, self.size = gen, size
        self.sha = hashlib.sha256(self.data()).hexdigest()

    def data(self):
        if not self.size:
            return b''
        off = (self.gen * 4099) % (len(BASE) - self.size)
        tag = b'%d:' % self.gen
        return (tag + BASE[off:off + self.size])[:self.size]

    def etag(self):
        d = self.data()
        if len(d) <= CHUNK:
            return hashlib.sha256(d).hexdigest()
        hs = [hashlib.sha256(d[i:i + CHUNK]).digest()
              for i in range(0, len(d), CHUNK)]
        return '%s-%d' % (hashlib.sha256(b''.join(hs)).hexdigest(), len(hs))

    def __repr__(self):
        return 'gen %d (%d bytes)' % (self.gen, self.size)


class Model:
    """Per key: what was acknowledged last (None: absent) and what a failed
    operation since may have left instead."""

    def __init__(self):
        self.sure = {}
        self.maybe = {}
        self.acked = 0
        self.failed = 0


model = Model()
gen_lock = threading.Lock()
gen_next = [1]


def new_gen():
    with gen_lock:
        g = gen_next[0]
        gen_next[0] += 1
        return g


def worker(node, t, stop, errors):
    r = random.Random(seed * 31 + t + gen_next[0])
    try:
        c = strata.Client(endpoint=node.env['STRATA_ENDPOINT'],
                          access_key=node.env['STRATA_ACCESS_KEY'],
                          secret_key=node.env['STRATA_SECRET_KEY'],
                          ca=node.env['STRATA_CA'], timeout_ms=10000)
    except strata.Error as e:
        if not stop.is_set():
            errors.append('thread %d: connecting: %s' % (t, e))
        return
    try:
        while not stop.is_set():
            key = 'k%d-%d' % (t, r.randrange(KEYS))
            if r.random() < 0.2:
                v = None
            else:
                v = Value(new_gen(), r.choice(SIZES))
            model.maybe.setdefault(key, []).append(v)
            try:
                if v is None:
                    c.delete(BUCKET, key, missing_ok=True)
                else:
                    c.put(BUCKET, key, v.data())
            except strata.Error as e:
                model.failed += 1
                if not stop.is_set():
                    # Only a stop may fail an operation.
                    time.sleep(0.3)
                    if not stop.is_set():
                        errors.append('thread %d: %s %s: %s' %
                                      (t, 'delete' if v is None else 'put',
                                       key, e))
                return
            model.sure[key] = v
            model.maybe[key] = []
            model.acked += 1
    finally:
        c.close()


def client(node):
    return strata.Client(endpoint=node.env['STRATA_ENDPOINT'],
                         access_key=node.env['STRATA_ACCESS_KEY'],
                         secret_key=node.env['STRATA_SECRET_KEY'],
                         ca=node.env['STRATA_CA'], timeout_ms=20000)


def verify(node, what):
    """Every key as acknowledged, or as a failed operation may have left
    it; the candidates collapse to what is there (nothing is in flight)."""
    c = client(node)
    try:
        listed = {e['key']: e['size'] for e in c.list(BUCKET)}
        keys = set(model.sure) | set(model.maybe)
        for key in sorted(keys):
            cands = [model.sure.get(key)] + model.maybe.get(key, [])
            try:
                got = c.get(BUCKET, key)
            except strata.Error as e:
                if e.code != strata.ENOOBJECT:
                    fail('%s: get %s: %s' % (what, key, e))
                got = None
            if got is None:
                if None not in cands:
                    fail('%s: %s is gone; acknowledged: %r, maybe %r' %
                         (what, key, model.sure.get(key), model.maybe.get(key)))
                if key in listed:
                    fail('%s: %s is listed but not there' % (what, key))
                model.sure[key] = None
                model.maybe[key] = []
                continue
            sha = hashlib.sha256(got).hexdigest()
            match = [v for v in cands if v is not None and v.sha == sha]
            if not match:
                fail('%s: %s holds %d bytes that are none of %r' %
                     (what, key, len(got), cands))
            v = match[0]
            st = c.stat(BUCKET, key)
            if st['size'] != v.size or st['etag'] != v.etag():
                fail('%s: %s: stat says %d bytes, etag %s; expected %r, %s' %
                     (what, key, st['size'], st['etag'], v, v.etag()))
            if listed.get(key) != v.size:
                fail('%s: %s: listed as %r, holds %d bytes' %
                     (what, key, listed.get(key), v.size))
            model.sure[key] = v
            model.maybe[key] = []
        extra = set(listed) - keys
        if extra:
            fail('%s: listed keys nobody wrote: %r' % (what, sorted(extra)))
    finally:
        c.close()


def load(node, seconds, stopper):
    """Run the writers; after a random moment in (0, seconds) call
    stopper() (which ends the node), then wait for the writers."""
    stop = threading.Event()
    errors = []
    ts = [threading.Thread(target=worker, args=(node, t, stop, errors))
          for t in range(THREADS)]
    for th in ts:
        th.start()
    time.sleep(rng.uniform(0.05, seconds))
    stop.set()
    stopper()
    for th in ts:
        th.join(60)
        if th.is_alive():
            fail('a writer hung after the node stopped')
    if errors:
        fail('operations failed while the node ran: %s' % errors[:3])


def tiers(node):
    return json.loads(node.cli('admin', 'tiers', '--json'))


# A small hot tier: puts spill to cold and the mover demotes all along,
# so kills also land in the middle of moves.
os.environ['STRATA_DEV_TIERS'] = 'hot_capacity = 48M\\nmover_rate = 0'
node = Node(admin=False)
try:
    node.start()
    c = client(node)
    c.create_bucket(BUCKET)
    c.close()
    t0 = time.time()
    cold_used = 0
    for rnd in range(ROUNDS):
        before, before_failed = model.acked, model.failed

        def kill():
            node.proc.kill()
            node.proc.wait()

        load(node, 2.0, kill)
        node.start()
        verify(node, 'kill -9 round %d' % rnd)
        print('ok: kill -9 round %d: %d acknowledged, %d cut short, all as '
              'acknowledged' % (rnd, model.acked - before,
                                model.failed - before_failed),
              flush=True)
        tv = tiers(node)
        cold_used = max(cold_used, tv['tier.cold.used_bytes'])
    check(cold_used > 0, 'the cold tier took chunks (%d bytes)' % cold_used)

    # What the cut-short puts left is garbage that compaction reclaims:
    # once it ran (every 10 s), no segment is more than half dead
    # (gc_dead_pct 50), so the tiers hold at most twice the live bytes.
    end = time.time() + 25
    while True:
        tv = tiers(node)
        live = tv['tier.hot.live_bytes'] + tv['tier.cold.live_bytes']
        used = tv['tier.hot.used_bytes'] + tv['tier.cold.used_bytes']
        if used <= 2 * live + (1 << 20) or time.time() > end:
            break
        time.sleep(0.5)
    check(used <= 2 * live + (1 << 20), 'compaction left %d bytes used for '
          '%d live in %d segments' % (used, live, tv['store.segments']))
    check(model.acked > 0, 'writes were acknowledged between the kills')

    # Killed again while it starts (recovery, orphan removal): the next
    # start still finds everything.
    node.proc.kill()
    node.proc.wait()
    for i in range(5):
        node.start(wait=False)
        time.sleep(rng.uniform(0, 0.3))
        node.proc.kill()
        node.proc.wait()
    node.start()
    verify(node, 'kill -9 during starts')
    print('ok: killed 5 times while starting, all as acknowledged', flush=True)

    # SIGTERM during the same load: exit 0, nothing half done.
    rc = [None]

    def term():
        node.proc.send_signal(signal.SIGTERM)
        try:
            rc[0] = node.proc.wait(30)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            fail('stratad did not stop on SIGTERM under load in 30 s')

    load(node, 2.0, term)
    check(rc[0] == 0, 'SIGTERM under load: exit %r' % rc[0])
    node.start()
    verify(node, 'SIGTERM under load')
    print('ok: after SIGTERM under load, all as acknowledged', flush=True)

    # SIGTERM while a client reads a 9 MiB object slowly.
    big = Value(new_gen(), 9 << 20)
    c = client(node)
    c.put(BUCKET, 'slow', big.data())
    model.sure['slow'] = big
    got = []
    res = {}

    def slow_get():
        cc = client(node)
        parts = []
        b, k = b'crash', b'slow'

        def sink(arg, p, n):
            parts.append(strata.ctypes.string_at(p, n))
            if len(parts) == 2:
                got.append('started')
            time.sleep(0.05)
            return 0

        res['rc'] = get_through(strata, cc, b, k, sink)
        res['data'] = b''.join(parts)
        cc.close()

    th = threading.Thread(target=slow_get)
    th.start()
    end = time.time() + 20
    while not got and time.time() < end:
        time.sleep(0.02)
    check(bool(got), 'a slow download is under way')
    t1 = time.time()
    node.proc.send_signal(signal.SIGTERM)
    try:
        r = node.proc.wait(60)
    except subprocess.TimeoutExpired:
        node.proc.kill()
        fail('stratad did not stop on SIGTERM during a slow download')
    check(r == 0, 'SIGTERM during a slow download: exit 0 in %.1f s' %
          (time.time() - t1))
    th.join(60)
    check(not th.is_alive(), 'the slow download ended')
    # The node lets a request it has received finish before it goes
    # (shutdown_grace_ms, 10 s by default; this one needs about 2 s).
    check(res['rc'] == 0, 'the download under way at SIGTERM finished '
          '(rc %r after %d bytes)' % (res['rc'], len(res['data'])))
    check(hashlib.sha256(res['data']).hexdigest() == big.sha,
          'the download finished whole')
    node.start()
    verify(node, 'SIGTERM during a slow download')

    # Everything deleted: after compaction nothing is live or used.
    c = client(node)
    for key in list(model.sure):
        c.delete(BUCKET, key, missing_ok=True)
    c.close()
    end = time.time() + 25
    while True:
        tv = tiers(node)
        live = tv['tier.hot.live_bytes'] + tv['tier.cold.live_bytes']
        used = tv['tier.hot.used_bytes'] + tv['tier.cold.used_bytes']
        if (live == 0 and used == 0) or time.time() > end:
            break
        time.sleep(0.5)
    check(live == 0, 'all deleted: no live bytes (%d)' % live)
    check(used == 0, 'all deleted and compacted: no bytes used in the tiers '
          '(%d, %d segments)' % (used, tv['store.segments']))
    print('kill9: %d rounds in %.0f s' % (ROUNDS, time.time() - t0))
except SystemExit:
    print(node.tail())
    raise
finally:
    node.cleanup()
print('kill9: all checks passed')
