#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The audit log ([audit] path) of a real stratad, through the CLI: every
request answered is one record (who, from where, what, on which bucket
and key, the result, bytes), the chain verifies (`strata admin audit
verify`), an edit or a removed record is found with its line, the metrics
count the records.  A node killed with SIGKILL while clients write, with a
torn last line left in the file, starts again, cuts the torn line and
goes on with the chain; a file whose last line is not a record stops the
start (the operator moves it aside) rather than begin a second chain in
it.  A request refused by an access policy is recorded with -EACCES."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsutil import CLI, Node, check, fail, get, parse_metrics, value  # noqa: E402


def records(path):
    with open(path, 'rb') as f:
        data = f.read()
    lines = data.split(b'\n')
    if lines and lines[-1] == b'':
        lines.pop()
    return [json.loads(l) for l in lines]


def verify(node, path, *extra):
    e = dict(os.environ)
    e.update(node.env)
    return subprocess.run([CLI, 'admin', 'audit', 'verify'] + list(extra) +
                          [path], env=e, capture_output=True, timeout=60)


def settle(path, want):
    """Records reach the file at the end of the node's loop iteration:
    wait (bounded) until it holds at least want of them."""
    end = time.time() + 10
    while time.time() < end:
        if os.path.exists(path) and len(records(path)) >= want:
            return
        time.sleep(0.05)


node = Node(admin=True)
try:
    log = os.path.join(node.work, 'audit', 'audit.log')
    os.mkdir(os.path.dirname(log))
    with open(node.conf, 'a') as f:
        f.write('\n[audit]\npath = %s\nsync_interval_ms = 50\n' % log)
    node.start()
    admin_id = node.env['STRATA_ACCESS_KEY']
    src = os.path.join(node.work, 'obj')
    with open(src, 'wb') as f:
        f.write(os.urandom(5000))
    node.cli('-q', 'mb', 'strata://aud')
    node.cli('-q', 'cp', src, 'strata://aud/dir/obj')
    node.cli('cat', 'strata://aud/dir/obj')
    node.cli('-q', 'rm', 'strata://aud/dir/obj')
    pol = os.path.join(node.work, 'pol.json')
    with open(pol, 'w') as f:
        f.write('{"version": 1, "statements": [{"effect": "allow", '
                '"actions": ["object:get"], "resources": ["aud/*"]}]}')
    out = node.cli('admin', 'key', 'create', '--policy', pol).decode()
    uid = re.search(r'access_key = (\S+)', out).group(1)
    usec = re.search(r'secret_key = (\S+)', out).group(1)
    e = dict(os.environ)
    e.update(node.env, STRATA_ACCESS_KEY=uid, STRATA_SECRET_KEY=usec)
    r = subprocess.run([CLI, '-q', 'cp', src, 'strata://aud/denied'], env=e,
                       capture_output=True, timeout=60)
    check(r.returncode == 1 and b'access denied: object:put' in r.stderr,
          'a PUT the policy does not allow is refused: %r' % r.stderr)
    settle(log, 1)
    time.sleep(0.3)

    recs = records(log)
    check(os.stat(log).st_mode & 0o077 == 0, 'the log is mode 0600')
    check([x['seq'] for x in recs] == list(range(1, len(recs) + 1)),
          'records are numbered 1..%d' % len(recs))

    def find(op, **kw):
        return [x for x in recs if x['op'] == op and
                all(x.get(k) == v for k, v in kw.items())]
    check(find('BUCKET_CREATE', principal=admin_id, bucket='aud', status=0),
          'the bucket creation is recorded with its key')
    check(find('PUT', bucket='aud', key='dir/obj', status=0, **{'in': 5000}),
          'the PUT is recorded with its bytes in')
    check(find('GET', bucket='aud', key='dir/obj', status=0, out=5000),
          'the GET is recorded with its bytes out')
    check(find('DELETE', bucket='aud', key='dir/obj', status=0),
          'the DELETE is recorded')
    check(find('KEY_CREATE', principal=admin_id, key=uid, status=0),
          'the key creation names the new key')
    check(find('PUT', principal=uid, bucket='aud', key='denied', status=-13),
          'the refused PUT is recorded with -EACCES and its key')
    check(all(x['peer'].startswith('127.0.0.1:') for x in recs),
          'every record has the peer address')
    r = verify(node, log)
    check(r.returncode == 0 and b'intact: %d records' % len(recs) in r.stdout,
          'strata admin audit verify: intact (%r)' % r.stdout)

    m = parse_metrics(get(node.admin_port, '/metrics')[2].decode())
    check(value(m, 'strata_audit_records_total') == len(recs) and
          value(m, 'strata_audit_seq') == recs[-1]['seq'],
          'the metrics count the records')
    check(('strata_answer_cache_hits_total', frozenset()) not in m,
          'no answer cache while the audit log is on')

    # An edit, a removed record: found, with the line.
    data = open(log, 'rb').read().split(b'\n')
    edited = os.path.join(node.work, 'edited.log')
    i = len(recs) // 2
    data2 = list(data)
    data2[i] = data2[i].replace(b'"status":0', b'"status":1', 1)
    open(edited, 'wb').write(b'\n'.join(data2))
    r = verify(node, edited)
    check(r.returncode == 1 and b'line %d' % (i + 1) in r.stderr,
          'an edited record is found at its line: %r' % r.stderr)
    data2 = data[:i] + data[i + 1:]
    open(edited, 'wb').write(b'\n'.join(data2))
    r = verify(node, edited, '--json')
    check(r.returncode == 1 and json.loads(r.stdout)['bad_line'] == i + 1,
          'a removed record is found at the next line: %r' % r.stdout)

    # SIGKILL while clients write; a torn line left at the end.
    before = len(records(log))
    stop = threading.Event()

    def writer(n):
        k = 0
        while not stop.is_set():
            subprocess.run([CLI, '-q', 'cp', src, 'strata://aud/w%d-%d' %
                            (n, k)], env=dict(os.environ, **node.env),
                           capture_output=True, timeout=60)
            k += 1
    ts = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in ts:
        t.start()
    time.sleep(1.5)
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait()
    stop.set()
    for t in ts:
        t.join()
    killed = records(log)
    check(len(killed) > before, 'records were written before the kill '
          '(%d more)' % (len(killed) - before))
    with open(log, 'ab') as f:
        f.write(b'{"seq":%d,"prev":"00' % (killed[-1]['seq'] + 1))
    r = verify(node, log)
    check(r.returncode == 0 and b'torn last line' in r.stdout,
          'verify: intact, with a torn last line (%r)' % r.stdout)
    node.start()
    check('torn last line' in node.tail(), 'the restart cuts the torn line')
    node.cli('ls', 'strata://aud/')
    settle(log, len(killed) + 2)
    after = records(log)
    check(after[:len(killed)] == killed and
          after[len(killed)]['seq'] == killed[-1]['seq'] + 1 and
          after[len(killed)]['prev'] == killed[-1]['hash'],
          'the chain goes on after the kill')
    r = verify(node, log)
    check(r.returncode == 0, 'the whole log verifies: %r' % r.stdout)
    check(node.stop() == 0, 'SIGTERM: a clean stop')
    r = verify(node, log)
    check(r.returncode == 0 and b'torn' not in r.stdout,
          'after a clean stop the log ends whole')

    # A last line that is not a record: the node refuses to start.
    with open(log, 'ab') as f:
        f.write(b'not a record\n')
    node.start(wait=False)
    try:
        rc = node.proc.wait(30)
    except subprocess.TimeoutExpired:
        fail('stratad started over a log whose last line is not a record')
    check(rc != 0 and 'move it aside' in node.tail().lower(),
          'a log whose last line is not a record stops the start (exit %d)'
          % rc)
    os.rename(log, log + '.old')
    node.start()
    node.cli('ls')
    settle(log, 1)
    check(records(log)[0]['seq'] == 1, 'moved aside: a new chain begins')
    check(node.stop() == 0, 'and the node stops cleanly')
finally:
    node.cleanup()
