#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Plays systemd's side of the notify protocol against a real stratad:
READY=1 once it serves, STATUS= lines, WATCHDOG=1 pings from the event loop
at half of $WATCHDOG_USEC, no pings while the loop is deliberately stalled
(STRATAD_TEST_STALL + SIGUSR1), RELOADING=1 then READY=1 on SIGHUP (and a
reload of a broken file changes nothing), STOPPING=1 and exit 0 on SIGTERM.
Key files are named relative to $CREDENTIALS_DIRECTORY, as LoadCredential=
hands them over."""
import re
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsutil import Node, check, fail  # noqa: E402

WATCHDOG_USEC = 400000          # pings every 200 ms
STALL_MS = 2000

node = Node(admin=False)
sock = None
try:
    path = os.path.join(node.work, 'notify.sock')
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.05)
    msgs = []                   # (time, [assignments])

    def pump(pred=None, timeout=1.0):
        """Collect messages for timeout seconds, or until pred(lines)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                data = sock.recv(4096)
            except socket.timeout:
                continue
            rec = (time.monotonic(), data.decode().split('\n'))
            msgs.append(rec)
            if pred and pred(rec[1]):
                return rec
        return None

    def pings(since, until=None):
        return [t for t, m in msgs if 'WATCHDOG=1' in m and t >= since and
                (until is None or t <= until)]

    # Credentials: relative names, resolved against $CREDENTIALS_DIRECTORY
    # (a directory of their own, as systemd makes it).
    creds = os.path.join(node.work, 'creds')
    os.mkdir(creds, 0o700)
    conf = open(node.conf).read()
    for key, name in (('cert', 'node.pem'), ('key', 'node.key'),
                      ('master_key', 'master.key')):
        m = re.search(r'^%s = (.*)$' % key, conf, re.M)
        os.rename(m.group(1), os.path.join(creds, name))
        conf = conf.replace(m.group(0), '%s = %s' % (key, name))
    open(node.conf, 'w').write(conf)
    node.start(env={'NOTIFY_SOCKET': path,
                    'WATCHDOG_USEC': str(WATCHDOG_USEC),
                    'STRATAD_TEST_STALL': str(STALL_MS),
                    'CREDENTIALS_DIRECTORY': creds}, wait=False)
    r = pump(lambda m: 'READY=1' in m, 30)
    check(r is not None, 'READY=1 arrives')
    try:
        socket.create_connection(('127.0.0.1', node.port), 2).close()
        served = True
    except OSError:
        served = False
    check(served, 'the node accepts connections when READY=1 comes '
          '(key files found through $CREDENTIALS_DIRECTORY)')
    check(any(a.startswith('STATUS=') for a in r[1]), 'READY=1 comes with a STATUS= line')

    t0 = time.monotonic()
    pump(timeout=1.5)
    n = len(pings(t0))
    check(n >= 4, 'WATCHDOG=1 every half period (%d pings in 1.5 s, 200 ms period)' % n)
    gaps = [b - a for a, b in zip(pings(t0), pings(t0)[1:])]
    check(max(gaps) < 1.0, 'no gap between pings over 1 s while the loop runs (max %.3f s)' % max(gaps))

    # Wedge the loop: the pings must stop while it sleeps, then resume.
    ts = time.monotonic()
    node.proc.send_signal(signal.SIGUSR1)
    pump(timeout=STALL_MS / 1000 + 1.5)
    after = pings(ts)
    gaps = [b - a for a, b in zip([ts] + after, after)]
    check(gaps and max(gaps) >= (STALL_MS / 1000) * 0.8,
          'a stalled loop sends no WATCHDOG=1 (longest gap %.3f s for a %d ms stall)'
          % (max(gaps) if gaps else 0, STALL_MS))
    tail = [t for t in after if t > ts + STALL_MS / 1000]
    check(len(tail) >= 2, 'pings resume once the loop runs again (%d)' % len(tail))
    check(node.proc.poll() is None, 'the daemon survived the stall')

    # Reload: RELOADING=1, then READY=1 again; a new cache budget applies;
    # a changed key that only a restart applies is named.
    conf = open(node.conf).read()
    check('io_threads' not in conf, 'the node runs with the default io_threads')
    conf = conf.replace('[node]\n', '[node]\nio_threads = 3\n', 1)
    open(node.conf, 'w').write(conf + '\n[store]\ncache_size = 64M\n')
    node.proc.send_signal(signal.SIGHUP)
    r1 = pump(lambda m: 'RELOADING=1' in m, 10)
    check(r1 is not None and any(a.startswith('MONOTONIC_USEC=') for a in r1[1]),
          'SIGHUP: RELOADING=1 with MONOTONIC_USEC=')
    r2 = pump(lambda m: 'READY=1' in m, 10)
    check(r2 is not None, 'SIGHUP: READY=1 after the reload')
    time.sleep(0.2)
    check(re.search(r'SIGHUP: reloaded .*log level info.*TLS certificate and key',
                    node.tail()) is not None,
          'the reload is logged in one line, naming what it applied')
    check('cache_size 67108864' in node.tail(),
          'the chunk cache budget is applied on reload (64M)')
    check(re.search(r'SIGHUP: reloaded .*; restart to apply: \[node\] io_threads',
                    node.tail()) is not None,
          'a changed [node] io_threads is named as needing a restart')

    # A broken file: errors logged, nothing applied, READY=1 again.
    with open(node.conf, 'a') as f:
        f.write('\n[log]\nlevel = loud\n')
    node.proc.send_signal(signal.SIGHUP)
    check(pump(lambda m: 'RELOADING=1' in m, 10) is not None and
          pump(lambda m: 'READY=1' in m, 10) is not None,
          'a reload of a broken file: RELOADING=1, READY=1')
    time.sleep(0.2)
    log = node.tail()
    check('[log] level: want error, warn, info or debug' in log and
          'has errors; nothing reloaded' in log,
          'its problem is logged with file:line, and nothing is reloaded')
    try:
        socket.create_connection(('127.0.0.1', node.port), 2).close()
        served = True
    except OSError:
        served = False
    check(served and node.proc.poll() is None, 'the node still serves')

    # Stop: STOPPING=1, exit 0.
    node.proc.send_signal(signal.SIGTERM)
    r3 = pump(lambda m: 'STOPPING=1' in m, 10)
    check(r3 is not None, 'SIGTERM: STOPPING=1')
    try:
        rc = node.proc.wait(30)
    except Exception:
        fail('stratad did not exit after SIGTERM')
    check(rc == 0, 'stratad exits 0 after SIGTERM (%d)' % rc)
except SystemExit:
    print(node.tail())
    raise
finally:
    if sock:
        sock.close()
    node.cleanup()
print('notify: all checks passed')
