#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What stratad holds after load has gone: 2,000 idle authenticated
connections opened and closed leave its descriptors and, within a few
seconds, its resident memory where they were before (glibc keeps freed
memory that is not at the top of a heap; stratad hands it back)."""
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsutil import Node, check, import_strata, rss_kib  # noqa: E402

CONNS = 2000


def fds(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


strata = import_strata()
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard != resource.RLIM_INFINITY and hard < CONNS + 200:
    print('skipped: open files limited to %d' % hard)
    sys.exit(77)
if soft != resource.RLIM_INFINITY and soft < CONNS + 200:
    resource.setrlimit(resource.RLIMIT_NOFILE, (CONNS + 200, hard))

node = Node(admin=False)
try:
    os.environ.update(node.env)
    node.start()
    pid = node.proc.pid
    # Connections to each I/O thread first: libuv opens a descriptor or
    # two per loop at its first connection, once.
    warm = [strata.Client(pool_size=1) for _ in range(64)]
    for c in warm:
        c.create_bucket('idle', exist_ok=True)
        c.close()
    time.sleep(1)
    rss0, fds0 = rss_kib(pid), fds(pid)
    clients = []
    for _ in range(CONNS):
        c = strata.Client(pool_size=1)
        c.create_bucket('idle', exist_ok=True)      # authenticated
        clients.append(c)
    rss1 = rss_kib(pid)
    check(fds(pid) >= fds0 + CONNS, '%d connections open (%d KiB -> %d KiB, '
          '%.1f KiB each)' % (CONNS, rss0, rss1, (rss1 - rss0) / CONNS))
    for c in clients:
        c.close()
    clients = None
    # The trim runs every 10 s; give it two rounds.
    end = time.time() + 25
    while time.time() < end:
        rss2, fds2 = rss_kib(pid), fds(pid)
        if fds2 <= fds0 and rss2 <= rss0 + 16 * 1024:
            break
        time.sleep(0.5)
    check(fds2 <= fds0, 'every descriptor released (%d, %d before)'
          % (fds2, fds0))
    check(rss2 <= rss0 + 16 * 1024, 'resident memory back to %d KiB '
          '(%d KiB before, %d KiB with the connections)' % (rss2, rss0, rss1))
    check(node.stop() == 0, 'stratad stops cleanly')
finally:
    node.cleanup()
