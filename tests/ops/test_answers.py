#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The I/O loops' answers to small GETs (daemon/anscache.h) under writes.

WRITERS clients each put new versions of their own 4 KiB object, one
after another; READERS other clients (other connections) read random ones
of them all the while.  Each version's bytes name it.  Every read must:
be some version's exact bytes; be no older than the newest version whose
put had been answered before the read began (read-your-writes across
connections); be no older than what the same reader read before
(monotonic reads).  The node must answer many of the reads on its I/O
loops (strata_answer_cache_hits_total), and its GET count must include
them.  Run with connections on 2 I/O threads, then on the engine's loop
(io_threads = 0), where the same table answers from the same loop.

Removing the store's second generation move (before writes are answered)
makes this fail within seconds: readers get the version a put they saw
answered had replaced."""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsutil import Node, check, get, import_strata  # noqa: E402
from opsutil import parse_metrics, value  # noqa: E402

WRITERS = 4
READERS = int(os.environ.get('ANSWERS_READERS', '6'))
SECS = float(os.environ.get('ANSWERS_SECS', '5'))
# [node] io_threads values to run with (ANSWERS_IO_THREADS="auto 2 0" ...)
IO_THREADS = os.environ.get('ANSWERS_IO_THREADS', '2 0').split()
BUCKET = 'answers'


def body(k, v):
    head = ('%d:%d:' % (k, v)).encode()
    return head + b'x' * (4096 - len(head))


def run(strata, io_threads):
    node = Node(extra='\n[node]\nio_threads = %s\n' % io_threads)
    try:
        os.environ.update(node.env)
        node.start()
        c = strata.Client()
        c.create_bucket(BUCKET, exist_ok=True)
        for k in range(WRITERS):
            c.put(BUCKET, 'k%d' % k, body(k, 0))
        acked = [0] * WRITERS
        lock = threading.Lock()
        stop = threading.Event()
        errors, counts = [], {'puts': 0, 'gets': 0}

        def writer(k):
            w = strata.Client()
            v = 0
            while not stop.is_set():
                v += 1
                w.put(BUCKET, 'k%d' % k, body(k, v))
                with lock:
                    acked[k] = v
                    counts['puts'] += 1
                time.sleep(0.003)   # room for reads between versions

        def reader(i):
            r = strata.Client()
            rnd = random.Random(i)
            last = [0] * WRITERS
            while not stop.is_set():
                k = rnd.randrange(WRITERS)
                with lock:
                    floor = acked[k]
                d = r.get(BUCKET, 'k%d' % k)
                try:
                    kk, v, _ = d.split(b':', 2)
                    v = int(v)
                except ValueError:
                    errors.append('k%d: not a version: %r' % (k, d[:16]))
                    continue
                if int(kk) != k or d != body(k, v):
                    errors.append('k%d: v%d bytes wrong' % (k, v))
                if v < floor:
                    errors.append('k%d: read v%d after the put of v%d was '
                                  'answered' % (k, v, floor))
                if v < last[k]:
                    errors.append('k%d: read v%d after reading v%d' %
                                  (k, v, last[k]))
                last[k] = max(last[k], v)
                with lock:
                    counts['gets'] += 1

        threads = [threading.Thread(target=writer, args=(k,))
                   for k in range(WRITERS)]
        threads += [threading.Thread(target=reader, args=(i,))
                    for i in range(READERS)]
        for t in threads:
            t.start()
        time.sleep(SECS)
        stop.set()
        for t in threads:
            t.join()
        for e in errors[:10]:
            print(e)
        check(not errors, 'io_threads = %s: %d gets during %d puts, every '
              'one a whole version, none older than an answered put or '
              'than the reader had seen' % (io_threads, counts['gets'],
                                            counts['puts']))
        status, _, text = get(node.admin_port, '/metrics')
        m = parse_metrics(text.decode())
        hits = value(m, 'strata_answer_cache_hits_total')
        gets = value(m, 'strata_requests_total', op='get', result='ok')
        check(hits > counts['gets'] / 10,
              'io_threads = %s: %d of them answered by the I/O loops' %
              (io_threads, hits))
        check(gets >= counts['gets'],
              'io_threads = %s: the GET count (%d) includes them' %
              (io_threads, gets))
    finally:
        node.cleanup()


strata = import_strata()
for n in IO_THREADS:
    run(strata, n)
