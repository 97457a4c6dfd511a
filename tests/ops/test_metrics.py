#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The admin port of a real stratad: /metrics scraped while uploads and
downloads run through the strata CLI, counters that moved exactly as the
traffic did, strict Prometheus text format, /healthz and /readyz, the access
log, and the HTTP bounds (404, 405, 400, 431, 505, 408, connection cap) that
keep a scraper or a stranger from hurting the node."""
import os
import subprocess
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsutil import CLI, Node, check, fail, get, http, parse_metrics, value  # noqa: E402

ADMIN_MAX = 4
# timeout_ms: the idle connections of the cap check below must outlive the
# check on a loaded machine (at 1000 ms one was timed out first, its slot
# freed, and the connection over the cap answered).
node = Node(admin=True, extra='max_connections = %d\ntimeout_ms = 3000\n'
            '[log]\naccess = true\n' % ADMIN_MAX)
try:
    node.start()
    a = node.admin_port

    st, hd, body = get(a, '/healthz')
    check(st == 200 and body == b'ok\n', '/healthz: 200 ok')
    st, hd, body = get(a, '/readyz')
    check(st == 200, '/readyz: 200 while serving')
    st, hd, body = get(a, '/metrics')
    check(st == 200 and hd['content-type'].startswith('text/plain; version=0.0.4'),
          '/metrics: 200, text/plain; version=0.0.4')
    m0 = parse_metrics(body.decode())
    check(value(m0, 'strata_ready') == 1 and
          value(m0, 'strata_build_info', version='0.1.0') == 1,
          '/metrics parses strictly; ready 1, build_info carries the version')
    check(value(m0, 'strata_admin_requests_total') == 3,
          'strata_admin_requests_total counts /healthz, /readyz and this '
          'scrape itself (%g)' % value(m0, 'strata_admin_requests_total'))
    st, hd, body = get(a, '/metrics', 'HEAD')
    check(st == 200 and body == b'' and int(hd['content-length']) > 1000,
          'HEAD /metrics: headers only, with the length')

    # Traffic through the CLI, with a scraper running alongside.
    bucket = 'opsbucket'
    node.cli('-q', 'mb', 'strata://' + bucket)
    sizes = [0, 1, 4095, 70000, 1 << 20, (4 << 20) + 7, 3 * 1000 * 1000]
    files = []
    for i, n in enumerate(sizes):
        p = os.path.join(node.work, 'obj%d' % i)
        with open(p, 'wb') as f:
            f.write(os.urandom(n))
        files.append(p)
    scrapes, errors = [], []
    stop = threading.Event()

    def scraper():
        while not stop.is_set():
            try:
                s, _, b = get(a, '/metrics')
                if s != 200:
                    errors.append('status %s' % s)
                else:
                    scrapes.append(parse_metrics(b.decode()))
            except SystemExit as e:
                errors.append('parse: %s' % e)
            except OSError as e:
                errors.append(str(e))
            time.sleep(0.02)

    t = threading.Thread(target=scraper)
    t.start()
    for i, p in enumerate(files):
        node.cli('-q', 'cp', p, 'strata://%s/k%d' % (bucket, i))
    for i, p in enumerate(files):
        got = node.cli('cat', 'strata://%s/k%d' % (bucket, i))
        if got != open(p, 'rb').read():
            fail('object k%d came back different' % i)
    stop.set()
    t.join()
    check(not errors and len(scrapes) >= 3,
          '%d scrapes during the traffic, every one 200 and well formed' % len(scrapes))
    mono = all(scrapes[i][k] <= scrapes[i + 1].get(k, 0)
               for i in range(len(scrapes) - 1) for k in scrapes[i]
               if k[0].endswith('_total'))
    check(mono, 'counters never go down between scrapes')

    # A failing request is counted as an error.

    e = dict(os.environ)
    e.update(node.env)
    r = subprocess.run([CLI,
                        'cat', 'strata://%s/missing' % bucket], env=e,
                       capture_output=True)
    check(r.returncode != 0, 'a GET of a missing key fails')

    m1 = parse_metrics(get(a, '/metrics')[2].decode())
    N, total = len(sizes), sum(sizes)

    def d(name, **lab):
        return value(m1, name, **lab) - value(m0, name, **lab)

    check(d('strata_requests_total', op='put', result='ok') == N,
          'put ok counter +%d (got %+d)' % (N, d('strata_requests_total', op='put', result='ok')))
    check(d('strata_request_body_bytes_total', op='put', direction='in') == total,
          'put body bytes in +%d (got %+d)' % (total, d('strata_request_body_bytes_total', op='put', direction='in')))
    check(d('strata_requests_total', op='get', result='ok') == N,
          'get ok counter +%d' % N)
    check(d('strata_requests_total', op='get', result='error') == 1,
          'get error counter +1 (the missing key)')
    check(d('strata_request_body_bytes_total', op='get', direction='out') == total,
          'get body bytes out +%d' % total)
    check(d('strata_request_duration_seconds_count', op='put') == N and
          d('strata_request_duration_seconds_sum', op='put') > 0,
          'put latency histogram counted %d requests' % N)
    check(d('strata_requests_total', op='bucket_create', result='ok') == 1,
          'bucket_create ok +1')
    check(d('strata_protocol_bytes_total', direction='in') >= total and
          d('strata_protocol_bytes_total', direction='out') >= total,
          'protocol bytes in and out >= the object bytes')
    check(d('strata_store_puts_total') == N and d('strata_store_bytes_in_total') == total,
          'store puts +%d and bytes in +%d' % (N, total))
    check(value(m1, 'strata_tier_live_bytes', tier='hot') > 0 and
          value(m1, 'strata_tier_segment_bytes', tier='hot') >=
          value(m1, 'strata_tier_live_bytes', tier='hot'),
          'hot tier: live bytes > 0 and <= segment bytes')
    check(d('strata_connections_opened_total') >= 2 * N,
          'connections opened counted')
    check(value(m1, 'strata_cache_budget_bytes') > 0, 'cache budget reported')
    check(value(m1, 'strata_output_cap_bytes') == 1 << 30 and
          value(m1, 'strata_output_pending_bytes') >= 0,
          'node-wide output cap (default 1G) and pending output reported')

    log = node.tail(400)
    check('op=PUT target="%s/k4" status=0 in=%d' % (bucket, 1 << 20) in log,
          'access log: one line per PUT with target, status and bytes')
    check('op=GET target="%s/missing" status=-' % bucket in log,
          'access log: a failed GET carries its error code')

    # The HTTP bounds.
    check(get(a, '/nope')[0] == 404, 'unknown path: 404')
    st, hd, _ = get(a, '/metrics', 'POST')
    check(st == 405 and hd.get('allow') == 'GET, HEAD', 'POST: 405 with Allow')
    check(http(a, b'hello there\r\n\r\n')[0] == 400, 'garbage: 400')
    check(http(a, b'GET /healthz HTTP/1.1\nHost: x\n\n')[0] == 400, 'bare LF: 400')
    check(http(a, b'GET /healthz HTTP/2.0\r\n\r\n')[0] == 505, 'HTTP/2.0 on this port: 505')
    check(http(a, b'GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello')[0] == 400,
          'a request body: 400')
    big = b'GET /healthz HTTP/1.1\r\nX-Big: ' + b'a' * 9000 + b'\r\n\r\n'
    check(http(a, big)[0] == 431, 'a 9 KB head: 431')
    check(http(a, b'GET /' + b'a' * 300 + b' HTTP/1.1\r\n\r\n')[0] == 414, 'a long path: 414')
    s = socket.create_connection(('127.0.0.1', a), 5)
    s.sendall(b'GET /hea')
    time.sleep(0.2)
    s.sendall(b'lthz HTTP/1.1\r\nHo')
    time.sleep(0.2)
    s.sendall(b'st: x\r\n\r\n')
    data = s.recv(4096)
    s.close()
    check(data.startswith(b'HTTP/1.1 200'), 'a request in pieces is answered')
    t0 = time.monotonic()
    st = http(a, b'GET /healthz HTTP/1.1\r\n', timeout=10)[0]
    check(st == 408 and 2.5 < time.monotonic() - t0 < 8,
          'an unfinished request: 408 after timeout_ms')

    # The connection cap: idle connections up to the limit, one more is
    # closed without an answer, and the port recovers.  The node may not
    # have seen the end of the connections above yet (their slots are
    # freed when it does): then it refuses one of the idle ones instead,
    # and the extra one gets the slot freed meanwhile.  So first make sure
    # every idle connection holds a slot (a refused one is closed at once:
    # its peek says EOF), starting over if not.
    def refused(sock):
        sock.setblocking(False)
        try:
            return sock.recv(1, socket.MSG_PEEK) == b''
        except BlockingIOError:
            return False
        except ConnectionError:
            return True
        finally:
            sock.setblocking(True)
    for attempt in range(10):
        idle = [socket.create_connection(('127.0.0.1', a), 5) for _ in range(ADMIN_MAX)]
        time.sleep(0.2)
        if not any(refused(s) for s in idle):
            break
        for s in idle:
            s.close()
        time.sleep(0.5)
    st, _, body = http(a, b'GET /healthz HTTP/1.1\r\n\r\n', timeout=5)
    check(st is None, 'connection %d over max_connections is closed unanswered' % (ADMIN_MAX + 1))
    for s in idle:
        s.close()
    time.sleep(0.2)
    check(get(a, '/healthz')[0] == 200, 'the admin port answers again once they are gone')
    m2 = parse_metrics(get(a, '/metrics')[2].decode())
    check(value(m2, 'strata_admin_refused_total') >= 1, 'refused admin connections are counted')
    node.cli('-q', 'ls', 'strata://' + bucket)
    check(True, 'the object port still serves')
    rc = node.stop()
    check(rc == 0, 'stratad stops cleanly (exit %s)' % rc)
except SystemExit:
    print(node.tail())
    raise
finally:
    node.cleanup()
print('metrics: all checks passed')
