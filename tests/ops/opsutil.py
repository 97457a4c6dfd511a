# SPDX-License-Identifier: Apache-2.0
"""Shared by the operations tests: a scratch node made with
deploy/dev-cluster.sh (CA, certificate, master key, config), free loopback
ports, a raw HTTP client for the admin port, a Prometheus text parser."""
import ctypes
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
STRATAD = os.environ.get('STRATAD', os.path.join(ROOT, 'build', 'daemon', 'stratad'))
CLI = os.environ.get('STRATA_CLI', os.path.join(ROOT, 'build', 'client', 'strata'))
DEV = os.path.join(ROOT, 'deploy', 'dev-cluster.sh')


def fail(msg):
    print('FAIL: ' + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print('ok: ' + msg, flush=True)


def free_port():
    for _ in range(100):
        p = random.randint(20000, 32767)  # below the ephemeral range
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', p))
            except OSError:
                continue
        return p
    fail('no free port')


class Node:
    """A node directory made by dev-cluster.sh (configured, not running)."""

    def __init__(self, admin=True, extra=''):
        self.work = tempfile.mkdtemp(prefix='strata-ops.')
        self.dir = os.path.join(self.work, 'cluster')
        self.admin_port = free_port() if admin else None
        env = dict(os.environ, STRATAD=STRATAD)
        # up once to write the config and the admin key, then down; on
        # another port when something took this one meanwhile.
        for attempt in range(3):
            self.port = free_port()
            r = subprocess.run([DEV, 'up', '--dir', self.dir, '--port',
                                str(self.port)], env=env,
                               stdout=subprocess.DEVNULL)
            if r.returncode == 0:
                break
            log = os.path.join(self.dir, 'node1', 'stratad.log')
            try:
                with open(log, errors='replace') as f:
                    taken = 'address already in use' in f.read().lower()
            except OSError:
                taken = False
            if not taken or attempt == 2:
                fail('dev-cluster.sh up failed (exit %d)' % r.returncode)
            subprocess.run([DEV, 'down', '--dir', self.dir], env=env,
                           stdout=subprocess.DEVNULL)
            subprocess.run(['rm', '-rf', self.dir])
        subprocess.run([DEV, 'down', '--dir', self.dir], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        self.conf = os.path.join(self.dir, 'node1', 'stratad.conf')
        self.log = os.path.join(self.dir, 'node1', 'stratad.log')
        with open(self.conf, 'a') as f:
            if admin:
                f.write('\n[admin]\nlisten = 127.0.0.1:%d\n' % self.admin_port)
            f.write(extra)
        self.env = {}
        with open(os.path.join(self.dir, 'env')) as f:
            for line in f:
                m = re.match(r'export (\w+)=(.*)', line.strip())
                if m:
                    self.env[m.group(1)] = ''.join(shlex.split(m.group(2)))
        self.proc = None

    def start(self, env=None, wait=True):
        e = dict(os.environ)
        e.update(env or {})
        self.logf = open(self.log, 'ab')
        self.log_start = self.logf.tell()
        self.proc = subprocess.Popen([STRATAD, '-c', self.conf], env=e,
                                     stdout=self.logf, stderr=self.logf)
        if wait:
            self.wait_serving()
        return self.proc

    def wait_serving(self, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                fail('stratad exited (%d); log:\n%s' % (self.proc.returncode, self.tail()))
            # Its own "serving on" line, not merely something that
            # answers on the port.
            with open(self.log, 'rb') as f:
                f.seek(getattr(self, 'log_start', 0))
                mine = f.read()
            if b'serving on 127.0.0.1:%d ' % self.port in mine:
                try:
                    socket.create_connection(('127.0.0.1', self.port),
                                             0.5).close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        fail('stratad did not serve in %d s' % timeout)

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail('stratad did not stop on SIGTERM in %d s' % timeout)
        return self.proc.returncode if self.proc else None

    def tail(self, n=30):
        try:
            with open(self.log, errors='replace') as f:
                return ''.join(f.readlines()[-n:])
        except OSError:
            return ''

    def cli(self, *args, data=None):
        e = dict(os.environ)
        e.update(self.env)
        r = subprocess.run([CLI] + list(args), env=e, input=data,
                           capture_output=True)
        if r.returncode != 0:
            fail('strata %s: exit %d: %s' % (' '.join(args), r.returncode,
                                              r.stderr.decode(errors='replace')))
        return r.stdout

    def mount_tmpfs(self, size_mb):
        """A tmpfs of size_mb MiB in the work directory (unmounted by
        cleanup()); without the right to mount one, the test is skipped
        (exit 77)."""
        mnt = os.path.join(self.work, 'tmpfs')
        os.mkdir(mnt)
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%dm' % size_mb,
                            'tmpfs', mnt], capture_output=True)
        if r.returncode != 0:
            print('cannot mount a tmpfs (%s): skipped' % r.stderr.decode().strip())
            self.cleanup()
            sys.exit(77)
        self.tmpfs = mnt
        return mnt

    def move_dirs(self, dirs):
        """Point config keys at new directories ({key: dir}, made here)."""
        conf = open(self.conf).read()
        for key, d in dirs.items():
            os.makedirs(d, exist_ok=True)
            conf, n = re.subn(r'^%s = .*$' % key, '%s = %s' % (key, d), conf,
                              flags=re.M)
            if n != 1:
                fail('no %s line in %s' % (key, self.conf))
        open(self.conf, 'w').write(conf)

    def use_admin_key(self, state_dir):
        """Take the admin key the node made in state_dir as the
        credentials of cli() and of the tests' clients."""
        keys = open(os.path.join(state_dir, 'admin.key')).read()
        self.env['STRATA_ACCESS_KEY'] = re.search(r'access_key = (\S+)', keys).group(1)
        self.env['STRATA_SECRET_KEY'] = re.search(r'secret_key = (\S+)', keys).group(1)

    def cleanup(self):
        try:
            self.stop()
        finally:
            if getattr(self, 'tmpfs', None):
                subprocess.run(['umount', self.tmpfs])
            subprocess.run(['rm', '-rf', self.work])


def import_strata():
    """The Python binding from the build (STRATA_PYTHONPATH), or exit 77
    (skipped): a sanitized build's libstrata cannot be loaded by ctypes."""
    sys.path.insert(0, os.environ.get(
        'STRATA_PYTHONPATH', os.path.join(ROOT, 'build', 'client', 'python')))
    if os.environ.get('STRATA_SANITIZE', 'none') != 'none':
        print('skipped: sanitized build (ctypes cannot load its libstrata)')
        sys.exit(77)
    try:
        import strata
    except ImportError as e:
        print('cannot import the strata binding (%s): skipped' % e)
        sys.exit(77)
    return strata


def rss_kib(pid):
    """Resident memory of process pid, KiB."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    fail('no VmRSS for %d' % pid)


_WRITE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_size_t)


def get_through(strata, client, bucket, key, sink):
    """strata_object_get() of the whole object bucket/key (bytes), handing
    each piece to sink(arg, pointer, length) as it arrives, as a streaming
    reader would (strata.Client.get reads into one buffer): a sink that
    does not return is a reader that stopped reading.  Returns the call's
    code."""
    f = strata._lib.strata_object_get
    f.restype = ctypes.c_int
    f.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                  ctypes.c_uint64, ctypes.c_uint64, _WRITE_FN,
                  ctypes.c_void_p, ctypes.c_void_p]
    cb = _WRITE_FN(sink)
    return f(client.handle, bucket, key, 0, 2 ** 64 - 1, cb, None, None)


def http(port, raw, timeout=5.0):
    """Send raw bytes, read until the server closes; (status, headers, body)
    or (None, None, b'') when it closed without an answer."""
    s = socket.create_connection(('127.0.0.1', port), timeout)
    try:
        s.sendall(raw)
        data = b''
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            data += b
    finally:
        s.close()
    if not data:
        return None, None, b''
    head, _, body = data.partition(b'\r\n\r\n')
    lines = head.decode().split('\r\n')
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(':')
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def get(port, path, method='GET'):
    return http(port, ('%s %s HTTP/1.1\r\nHost: x\r\n\r\n' % (method, path)).encode())


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (-?[0-9.e+-]+|\+Inf|NaN)$')


def parse_metrics(text):
    """Parse Prometheus text 0.0.4 strictly enough to catch format slips:
    every sample belongs to a family with # TYPE, values are numbers,
    histogram buckets are cumulative and end in +Inf == _count.
    Returns {(name, frozenset(labels)): value}."""
    types = {}
    out = {}
    for line in text.split('\n'):
        if not line:
            continue
        if line.startswith('# HELP '):
            continue
        if line.startswith('# TYPE '):
            _, _, name, typ = line.split(' ', 3)
            if name in types:
                fail('metrics: family %s declared twice' % name)
            if typ not in ('counter', 'gauge', 'histogram', 'summary', 'untyped'):
                fail('metrics: bad type %r' % line)
            types[name] = typ
            continue
        m = SAMPLE.match(line)
        if not m:
            fail('metrics: line does not parse: %r' % line)
        name, labels = m.group(1), m.group(3)
        fam = re.sub(r'_(bucket|sum|count)$', '', name) if name not in types else name
        if fam not in types:
            fail('metrics: %s has no # TYPE' % name)
        lab = frozenset()
        if labels:
            pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels)
            if ','.join('%s="%s"' % p for p in pairs) != labels:
                fail('metrics: bad labels in %r' % line)
            lab = frozenset(pairs)
        key = (name, lab)
        if key in out:
            fail('metrics: duplicate sample %r' % line)
        out[key] = float(m.group(4))
    hist = {}
    for (name, lab), v in out.items():
        if name.endswith('_bucket'):
            le = dict(lab).get('le')
            if le is None:
                fail('metrics: %s without le' % name)
            rest = frozenset(p for p in lab if p[0] != 'le')
            hist.setdefault((name[:-len('_bucket')], rest), []).append(
                (float('inf') if le == '+Inf' else float(le), v))
    for (base, rest), pts in hist.items():
        pts.sort()
        if pts[-1][0] != float('inf'):
            fail('metrics: %s has no +Inf bucket' % base)
        if any(pts[i][1] > pts[i + 1][1] for i in range(len(pts) - 1)):
            fail('metrics: %s buckets are not cumulative' % base)
        if out.get((base + '_count', rest)) != pts[-1][1]:
            fail('metrics: %s +Inf bucket differs from _count' % base)
    return out


def value(m, name, **labels):
    return m.get((name, frozenset(labels.items())), 0.0)
