#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The index's file system filling up is seen on /metrics: with state_dir
on a small tmpfs (64 MiB: a reserve of 16 MiB), strata_index_writes_refused
is 0, then 1 once a file leaves less than the reserve free (a bucket can
no longer be made: No space left on device), then 0 again when it is gone,
and writes work again.  Needs root to mount the tmpfs; skipped (77)
otherwise."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsutil import CLI, Node, check, fail, get, parse_metrics, value  # noqa: E402

node = Node(admin=True)
try:
    mnt = node.mount_tmpfs(64)
    node.move_dirs({'state_dir': os.path.join(mnt, 'state')})
    node.start()
    node.use_admin_key(os.path.join(mnt, 'state'))

    def refused():
        st, _, body = get(node.admin_port, '/metrics')
        if st != 200:
            fail('/metrics: %s' % st)
        return value(parse_metrics(body.decode()), 'strata_index_writes_refused')

    check(refused() == 0, 'strata_index_writes_refused is 0 with room')
    node.cli('-q', 'mb', 'strata://roomy')
    filler = os.path.join(mnt, 'filler')
    st = os.statvfs(mnt)
    with open(filler, 'wb') as f:
        f.write(b'\0' * (st.f_bavail * st.f_frsize - (8 << 20)))
    check(refused() == 1, 'under the reserve: strata_index_writes_refused is 1')
    e = dict(os.environ)
    e.update(node.env)
    r = subprocess.run([CLI, '-q', 'mb', 'strata://full'], env=e,
                       capture_output=True)
    check(r.returncode == 1 and b'No space left on device' in r.stderr,
          'and a write is refused: %s' % r.stderr.decode().strip())
    os.unlink(filler)
    check(refused() == 0, 'room again: 0')
    node.cli('-q', 'mb', 'strata://again')
    check(b'again' in node.cli('ls'), 'writes work again')
except SystemExit:
    print(node.tail())
    raise
finally:
    node.cleanup()
print('indexfull: all checks passed')
