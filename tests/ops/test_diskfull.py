#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A node whose disk fills up, seen from the client: state_dir and both
tiers on one small tmpfs (as deploy/dev-cluster.sh lays a node out on one
file system).  Puts of 1 MiB and 4 KiB objects until the node has refused
60 of them: every refusal is ENOSPC (no other error, no abort); every
acknowledged object reads back whole; deletes still work on the full disk
and give the room back (after compaction), so puts work again; a
kill -9 and restart on the full disk loses nothing acknowledged.  Needs
root to mount the tmpfs; skipped (77) otherwise."""
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsutil import Node, check, fail, import_strata  # noqa: E402

strata = import_strata()

# Large enough for RocksDB's preallocated log (about 70 MiB on tmpfs).
SIZE_MB = int(os.environ.get('STRATA_DISKFULL_MB', '256'))
ENOSPC = -28
node = Node(admin=False)


def client():
    return strata.Client(endpoint=node.env['STRATA_ENDPOINT'],
                         access_key=node.env['STRATA_ACCESS_KEY'],
                         secret_key=node.env['STRATA_SECRET_KEY'],
                         ca=node.env['STRATA_CA'], timeout_ms=20000)


def data(i, size):
    seed = hashlib.sha256(b'%d' % i).digest()
    return (seed * (size // 32 + 1))[:size] if size < 4096 else \
        os.urandom(size)


try:
    mnt = node.mount_tmpfs(SIZE_MB)
    node.move_dirs({k: os.path.join(mnt, k)
                    for k in ('state_dir', 'hot', 'cold')})
    node.start()
    node.use_admin_key(os.path.join(mnt, 'state_dir'))

    c = client()
    c.create_bucket('full')
    acked = {}
    refused = 0
    i = 0
    # Clients go on trying: refused puts must not take the room that
    # deletes need.
    while refused < 60 and i < 4 * SIZE_MB:
        size = (1 << 20) if i % 4 else 4096
        d = data(i, size)
        try:
            c.put('full', 'o%d' % i, d)
            acked['o%d' % i] = hashlib.sha256(d).hexdigest()
        except strata.Error as e:
            if e.code != ENOSPC:
                fail('put o%d on a filling disk: %s (not ENOSPC)' % (i, e))
            refused += 1
        i += 1
    check(refused == 60, 'puts refused with ENOSPC once the disk is full '
          '(%d acknowledged)' % len(acked))
    check(node.proc.poll() is None, 'the node runs on')

    def verify(what):
        cc = client()
        listed = {e['key'] for e in cc.list('full')}
        if listed != set(acked):
            fail('%s: listing differs: %r' % (what, sorted(listed ^ set(acked))[:5]))
        for k, sha in acked.items():
            if hashlib.sha256(cc.get('full', k)).hexdigest() != sha:
                fail('%s: %s does not read back as acknowledged' % (what, k))
        cc.close()
        print('ok: %s: %d objects as acknowledged' % (what, len(acked)), flush=True)

    verify('full disk')
    # Deletes work on the full disk.
    gone = sorted(acked)[::2]
    for k in gone:
        try:
            c.delete('full', k)
        except strata.Error as e:
            fail('delete %s on the full disk: %s' % (k, e))
        del acked[k]
    check(True, 'deleted %d objects on the full disk' % len(gone))
    verify('after deletes')
    # The room comes back (compaction every 10 s): puts work again.
    end = time.time() + 30
    d = data(10**6, 1 << 20)
    while True:
        try:
            c.put('full', 'again', d)
            break
        except strata.Error as e:
            if e.code != ENOSPC or time.time() > end:
                fail('put after deletes: %s' % e)
            time.sleep(0.5)
    acked['again'] = hashlib.sha256(d).hexdigest()
    check(True, 'puts work again once deletes gave room back')
    c.close()
    # Full again, then kill -9 and restart: nothing acknowledged lost.
    c = client()
    while True:
        d = data(i, 1 << 20)
        try:
            c.put('full', 'o%d' % i, d)
            acked['o%d' % i] = hashlib.sha256(d).hexdigest()
        except strata.Error as e:
            if e.code != ENOSPC:
                fail('put o%d: %s (not ENOSPC)' % (i, e))
            break
        i += 1
    c.close()
    node.proc.kill()
    node.proc.wait()
    node.start()
    verify('kill -9 on a full disk, restarted')
    check(node.stop() == 0, 'SIGTERM on a full disk: exit 0')
except SystemExit:
    print(node.tail())
    raise
finally:
    node.cleanup()
print('diskfull: all checks passed')
