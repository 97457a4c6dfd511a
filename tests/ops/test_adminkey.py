#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The admin key a node makes on its first start (<state_dir>/admin.key):
a crash during that first start must not leave a node that cannot start
(an admin.key left empty, a half-written admin.key.tmp) or a key nobody
can read.  A node started over such leftovers makes a key, writes it whole
(0600), the key works, and a restart keeps it.  An operator who lost
admin.key makes another with `stratad --new-admin-key` while the node is
stopped (refused while it runs)."""
import os
import re
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsutil import STRATAD, Node, check  # noqa: E402

node = Node(admin=False)
try:
    # A store of its own (new state and tier directories): no access key
    # yet, as at a first start.
    fresh = os.path.join(node.work, 'fresh')
    node.move_dirs({k: os.path.join(fresh, k)
                    for k in ('state_dir', 'hot', 'cold')})
    state = os.path.join(fresh, 'state_dir')
    keyf = os.path.join(state, 'admin.key')
    # What a crash at the first start could leave: the key file created
    # but not yet written, and a torn temporary file.
    open(keyf, 'w').close()
    with open(keyf + '.tmp', 'w') as f:
        f.write('# stratad admin access key; keep this file 0600\naccess_k')

    node.start()
    text = open(keyf).read()
    m = re.search(r'^access_key = (AK[0-9A-F]{18})\nsecret_key = ([0-9a-f]{64})$',
                  text, re.M)
    check(m is not None, 'a node started over an empty admin.key serves and '
          'writes a whole key into it')
    check(stat.S_IMODE(os.stat(keyf).st_mode) == 0o600, 'admin.key is 0600')
    check(not os.path.exists(keyf + '.tmp'), 'no admin.key.tmp is left')
    check('replaced ' + keyf in node.tail(), 'the log says admin.key was replaced')
    node.env['STRATA_ACCESS_KEY'], node.env['STRATA_SECRET_KEY'] = m.groups()
    out = node.cli('admin', 'key', 'list').decode()
    check(re.search(r'^%s +admin$' % m.group(1), out, re.M) is not None and
          len(out.splitlines()) == 1,
          'the key in admin.key works and is the only (admin) key')

    # A restart keeps the key and its file.
    check(node.stop() == 0, 'the node stops cleanly')
    node.start()
    check(open(keyf).read() == text, 'a restart leaves admin.key as it was')
    out = node.cli('admin', 'key', 'list').decode()
    check(len(out.splitlines()) == 1, 'and makes no other key')

    # admin.key lost: --new-admin-key, refused while the node runs.
    def new_key():
        return subprocess.run([STRATAD, '-c', node.conf, '--new-admin-key'],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=60)
    r = new_key()
    check(r.returncode == 1 and b'another stratad' in r.stderr,
          '--new-admin-key while the node runs is refused: %r' % r.stderr)
    check(open(keyf).read() == text, 'and leaves admin.key alone')
    check(node.stop() == 0, 'the node stops cleanly again')
    os.unlink(keyf)
    r = new_key()
    check(r.returncode == 0, '--new-admin-key with the node stopped: %r'
          % r.stderr)
    m2 = re.search(r'^access_key = (AK[0-9A-F]{18})\nsecret_key = ([0-9a-f]{64})$',
                   open(keyf).read(), re.M)
    check(m2 is not None and m2.group(1) != m.group(1),
          'it writes a new key into admin.key')
    check(stat.S_IMODE(os.stat(keyf).st_mode) == 0o600, 'admin.key is 0600')
    node.start()
    node.env['STRATA_ACCESS_KEY'], node.env['STRATA_SECRET_KEY'] = m2.groups()
    out = node.cli('admin', 'key', 'list').decode()
    check(re.search(r'^%s +admin$' % m2.group(1), out, re.M) is not None and
          re.search(r'^%s +admin$' % m.group(1), out, re.M) is not None,
          'the new key works, and the old one still exists: %r' % out)
except SystemExit:
    print(node.tail())
    raise
finally:
    node.cleanup()
print('adminkey: all checks passed')
