# SPDX-License-Identifier: Apache-2.0
"""The Python binding against a real node (started by dataset.sh).

A synthetic WebDataset of 64 tar shards (4 samples each) is uploaded, then
read with a torch DataLoader (2 workers) as 4 simulated ranks (RANK and
WORLD_SIZE in the environment, as torchrun sets them):
  - every sample exactly once per epoch, with its bytes intact;
  - another order in the next epoch, the same order for the same seed;
  - drop/pad give equal shares per rank;
  - a node killed (-9) and restarted on the same directories and port in
    the middle of an epoch costs nothing: every sample still exactly once;
  - ranks from torch.distributed (gloo, spawned ranks, a Dataset made
    before init_process_group) and set_epoch() reach DataLoader workers,
    persistent ones included; other processes keep their own epoch;
  - Ctrl-C stops a num_workers=0 loop on a node that hangs (SIGSTOP) at
    once, whatever the client's timeout_ms, and so it does a Client call
    (get, put, list, one waiting for a free connection), a Dataset
    construction, or a Client connecting to a port that never answers;
    Ctrl-C during a large get from a node that answers raises
    KeyboardInterrupt, never returns the object short;
    one that stays away is given up on, saying after how many retries.
Also the Client calls (put/get/range/stat/list/delete/hint) and errors:
arguments of the wrong type or range refused before they reach C;
strata.Error pickled and re-raised out of DataLoader workers with its code;
unreadable CA files named; spawned workers read the constructed listing
(keys, sizes, etags) or refuse; shards overwritten or deleted after the
listing and damaged tar shards named in the error; bad RANK/WORLD_SIZE
values named; uneven="drop" with more ranks than shards refused; and
strata-bench --samples tar counting across pieces and failing on damaged
shards.

usage: test_dataset.py CLUSTER_DIR PORT DEV_CLUSTER_SH
"""
import ctypes
import errno
import hashlib
import io
import json
import os
import pickle
import random
import socket
import subprocess
import sys
import tarfile
import threading
import time

import strata
import torch.utils.data as tud

CLUSTER, PORT, DEV = sys.argv[1], sys.argv[2], sys.argv[3]
BUCKET = "dstest"
URL = "strata://%s/train/" % BUCKET
NSHARDS, PER_SHARD, RANKS = 64, 4, 4
failures = []


def check(cond, what):
    if cond:
        print("ok:", what)
    else:
        print("FAIL:", what)
        failures.append(what)


def sample_bytes(key):
    n = 2000 + int(hashlib.sha256(key.encode()).hexdigest()[:4], 16) % 20000
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%s/%d" % (key.encode(), i)).digest()
        i += 1
    return out[:n]


def make_shard(s, per_shard=PER_SHARD, fmt=tarfile.USTAR_FORMAT):
    bio = io.BytesIO()
    keys = []
    with tarfile.open(fileobj=bio, mode="w", format=fmt) as t:
        for j in range(per_shard):
            key = "s%04d_%d" % (s, j)
            keys.append(key)
            for ext, data in (("bin", sample_bytes(key)),
                              ("cls", str(s * 10 + j).encode()),
                              ("txt", ("sample " + key).encode())):
                ti = tarfile.TarInfo(key + "." + ext)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return bio.getvalue(), keys


def verify(sample):
    k = sample["__key__"]
    s, j = int(k[1:5]), int(k[6:])
    return (sample["bin"] == sample_bytes(k) and
            sample["cls"] == str(s * 10 + j).encode() and
            sample["txt"] == ("sample " + k).encode() and
            set(sample) == {"__key__", "__url__", "bin", "cls", "txt"})


def read_rank(ds, rank, world, workers=2):
    os.environ["RANK"], os.environ["WORLD_SIZE"] = str(rank), str(world)
    keys, bad = [], 0
    loader = tud.DataLoader(ds, num_workers=workers, batch_size=None)
    for sample in loader:
        keys.append(sample["__key__"])
        bad += not verify(sample)
    return keys, bad


def read_epoch(ds, world=RANKS):
    per_rank, bad = [], 0
    for r in range(world):
        k, b = read_rank(ds, r, world)
        per_rank.append(k)
        bad += b
    return per_rank, bad


def node_pid():
    with open(os.path.join(CLUSTER, "node1", "stratad.pid")) as f:
        return int(f.read())


def restart_node(delay):
    """kill -9 the node now, start it again after delay seconds."""
    old = node_pid()
    os.kill(old, 9)
    done = {}

    def up():
        time.sleep(delay)
        subprocess.run(["bash", DEV, "up", "--dir", CLUSTER, "--port", PORT],
                       check=True, stdout=subprocess.DEVNULL)
        done["pid"] = node_pid()

    t = threading.Thread(target=up)
    t.start()
    return old, t, done


def epoch_pieces(c, ds, **kw):
    """Run a libstrata epoch iterator directly: [(key, offset, bytes,
    last)] or an error code per piece."""
    o = strata._EpochOpts(**kw)
    e = ctypes.c_void_p()
    rc = strata._epoch_new(c.handle, ds, ctypes.byref(o), ctypes.byref(e))
    assert rc == 0, rc
    out = []
    sh = strata._Shard()
    while True:
        rc = strata._epoch_next(e, ctypes.byref(sh))
        if rc == 0:
            break
        if rc < 0:
            out.append((sh.key.decode(), rc))
            continue
        out.append((sh.key.decode(), sh.offset,
                    ctypes.string_at(sh.data, sh.length), sh.last))
        strata._epoch_buf_free(e, sh.data, sh.length)
    strata._epoch_free(e)
    return out


def low_level(c):
    """The C API through ctypes: caller-provided buffers, range pieces, an
    object changed after the listing, an iterator dropped early."""
    c.create_bucket("dslow", exist_ok=True)
    blobs = {"p/%02d" % i: os.urandom(50000 + 7919 * i) for i in range(6)}
    for k, v in blobs.items():
        c.put("dslow", k, v)
    ds = ctypes.c_void_p()
    assert strata._ds_open(c.handle, b"dslow", b"p/", ctypes.byref(ds)) == 0

    # Pieces of at most 16,000 bytes, reassembled in order.
    got = {}
    disorder = 0
    pieces = epoch_pieces(c, ds, seed=1, piece_size=16000, prefetch=3)
    for key, off, data, last in pieces:
        disorder += off != len(got.get(key, b""))
        got[key] = got.get(key, b"") + data
        disorder += last != (len(got[key]) == len(blobs[key]))
    check(got == blobs and not disorder and
          len(pieces) == sum((len(v) + 15999) // 16000
                             for v in blobs.values()),
          "piece_size 16000: %d range reads reassemble every shard" %
          len(pieces))

    # Caller-provided buffers (as pinned memory would be): every piece
    # lands in one of ours; the ones never handed over come back to us.
    arena = {}

    def alloc(arg, size):
        b = ctypes.create_string_buffer(size)
        arena[ctypes.addressof(b)] = b
        return ctypes.addressof(b)

    freed = []

    def free(arg, p, size):
        freed.append(p)
        arena.pop(p, None)

    a_fn, f_fn = strata._ALLOC_FN(alloc), strata._FREE_FN(free)
    o = strata._EpochOpts(seed=2, prefetch=4, alloc_fn=a_fn, free_fn=f_fn)
    e = ctypes.c_void_p()
    assert strata._epoch_new(c.handle, ds, ctypes.byref(o),
                             ctypes.byref(e)) == 0
    sh = strata._Shard()
    ok = strata._epoch_next(e, ctypes.byref(sh)) == 1
    ok = ok and sh.data in arena and \
        ctypes.string_at(sh.data, sh.length) == blobs[sh.key.decode()]
    mine = sh.data
    time.sleep(0.3)                     # let the prefetch fill
    strata._epoch_free(e)               # 3 fetched, never handed over
    check(ok and mine not in freed and len(freed) >= 1 and
          mine in arena,
          "alloc_fn buffers: the handed-over one is ours to keep, %d "
          "undelivered ones given back" % len(freed))

    # An object overwritten after the listing: -ESTALE for it, the rest
    # still read.
    c.put("dslow", "p/03", b"changed")
    res = epoch_pieces(c, ds, seed=3)
    errs = [r for r in res if len(r) == 2]
    check(errs == [("p/03", -errno.ESTALE)] and len(res) == 6,
          "an object changed since the listing: -ESTALE for it only "
          "(%s)" % errs)
    strata._ds_free(ds)


def tar_in_pieces():
    """The tar reader against Python's tarfile, whole and in pieces: the
    same members for every way of cutting an archive (ustar, GNU long
    names, pax paths, empty and block-sized members, a directory), and
    the same errors whole and in pieces for truncated ones."""
    from strata import _tar
    rnd = random.Random(11)

    def archive(n, fmt):
        bio = io.BytesIO()
        with tarfile.open(fileobj=bio, mode="w", format=fmt) as t:
            for i in range(n):
                name = "k%04d.bin" % i
                if fmt != tarfile.USTAR_FORMAT and rnd.random() < 0.2:
                    name = "d" * 120 + "/" + name     # a long name
                size = rnd.choice([0, 1, 511, 512, 513, 4096, 10000])
                ti = tarfile.TarInfo(name)
                ti.size = size
                t.addfile(ti, io.BytesIO(os.urandom(size)))
            ti = tarfile.TarInfo("dir")
            ti.type = tarfile.DIRTYPE
            t.addfile(ti)
        return bio.getvalue()

    def cut(data, k):
        at = sorted(rnd.sample(range(1, len(data)), min(k, len(data) - 1)))
        return [data[a:b] for a, b in zip([0] + at, at + [len(data)])]

    def oracle(data):                   # Python's own tarfile
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            return [(m.name, t.extractfile(m).read()) for m in t
                    if m.isreg()]

    same = 0
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT,
                tarfile.PAX_FORMAT):
        for _ in range(20):
            data = archive(rnd.randint(0, 15), fmt)
            want = oracle(data)
            if list(_tar.members(data)) != want:
                continue
            for pieces in (cut(data, rnd.randint(0, 10)),
                           [data[i:i + 7] for i in range(0, len(data), 7)]):
                same += list(_tar.members_stream(pieces)) == want
    check(same == 120, "tar read whole and in pieces: tarfile's members "
          "(%d of 120)" % same)

    def err(f):
        try:
            list(f())
        except ValueError as e:
            return str(e)
        return None
    data = archive(3, tarfile.USTAR_FORMAT)
    agree = [err(lambda: _tar.members(data[:k])) ==
             err(lambda: _tar.members_stream(cut(data[:k], 3)))
             for k in range(1, len(data), 97)]
    check(all(agree) and err(lambda: _tar.members(data[:700])),
          "tar read in pieces: the same errors when cut short (%d cuts)" %
          len(agree))

    # A malformed pax record is a ValueError saying so, whole and in
    # pieces, never int()'s "invalid literal".
    pax = bad_pax()
    bad = [err(lambda: _tar.members(pax)),
           err(lambda: _tar.members_stream(cut(pax, 5)))]
    check(all(e and e.startswith("tar: bad pax record") for e in bad),
          "a malformed pax record: %s" % bad)


def bad_pax():
    """A pax archive whose first record's length is not a number."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.PAX_FORMAT) as t:
        ti = tarfile.TarInfo("p" * 200 + "/s0001_0.bin")   # a pax path
        ti.size = 3
        t.addfile(ti, io.BytesIO(b"abc"))
    data = bio.getvalue()
    at = data.index(b" path=")          # the record follows its header
    assert data[156:157] == b"x" and data[512:at].isdigit()
    return data[:512] + b"x" * (at - 512) + data[at:]


def expect_raise(exc, f, what, has=()):
    """f() raises exc (not a subclass of another kind) whose text holds
    every string of has."""
    try:
        f()
    except exc as e:
        check(all(h in str(e) for h in has), "%s: %s: %s"
              % (what, type(e).__name__, str(e).splitlines()[-1][:150]))
        # Without its frames: a DataLoader iterator left in a reference
        # cycle would be collected in the next DataLoader's forked workers.
        return e.with_traceback(None)
    except Exception as e:
        check(False, "%s: %s, not %s: %s" % (what, type(e).__name__,
                                             exc.__name__, e))
        return None
    check(False, "%s: no %s" % (what, exc.__name__))
    return None


def bad_arguments(c):
    """Arguments of the wrong type or range are refused in Python, before
    ctypes turns an int into a pointer or wraps a number."""
    c.put(BUCKET, "args/a", b"the real a")
    T, V = TypeError, ValueError
    for f, exc, name in (
            (lambda: c.put(BUCKET, "args/k", b"x", content_type=5), T,
             "content_type"),
            (lambda: c.list(BUCKET, prefix=5), T, "prefix"),
            (lambda: list(c.list(BUCKET, delimiter=5)), T, "delimiter"),
            (lambda: strata.Client(endpoint=5), T, "endpoint"),
            (lambda: strata.Client(access_key=5), T, "access_key"),
            (lambda: strata.Client(secret_key=5.0), T, "secret_key"),
            (lambda: strata.Client(ca=5), T, "ca"),
            (lambda: c.put(5, "k", b"x"), T, "bucket"),
            (lambda: c.put(BUCKET, None, b"x"), T, "key"),
            (lambda: c.put(BUCKET, "k", 5), T, "data"),
            (lambda: c.get(BUCKET, 5), T, "key"),
            (lambda: c.stat(BUCKET, 5), T, "key"),
            (lambda: c.delete(5, "k"), T, "bucket"),
            (lambda: c.create_bucket(5), T, "bucket"),
            (lambda: c.delete_bucket(b"dstest\0x"), V, "bucket"),
            (lambda: c.hint(BUCKET, "abc"), T, "keys"),
            (lambda: c.hint(BUCKET, b"abc"), T, "keys"),
            (lambda: c.hint(BUCKET, [5]), T, "keys[0]"),
            (lambda: c.hint(BUCKET, 5), T, "keys"),
            (lambda: strata.Dataset(5), T, "url"),
            (lambda: strata.Dataset(URL + "\0x"), V, "url"),
            (lambda: strata.plan("3"), T, "nshards"),
            (lambda: c.put(BUCKET, "args/a\x00b", b"x"), V, "key"),
            (lambda: c.get(BUCKET, "args/a\x00b"), V, "key"),
            (lambda: c.put(BUCKET, "args/k", b"x", content_type="a\0"), V,
             "content_type"),
            (lambda: c.get(BUCKET, "args/a", offset=2 ** 64 + 5), V,
             "offset"),
            (lambda: c.get(BUCKET, "args/a", offset=-1), V, "offset"),
            (lambda: c.get(BUCKET, "args/a", length=-1), V, "length"),
            (lambda: c.get(BUCKET, "args/a", length=2 ** 64), V, "length"),
            (lambda: strata.Client(pool_size=-1), V, "pool_size"),
            (lambda: strata.Client(timeout_ms=-1), V, "timeout_ms"),
            (lambda: strata.Client(timeout_ms=2 ** 32), V, "timeout_ms"),
            (lambda: strata.plan(-1), V, "nshards"),
            (lambda: strata.plan(4, rank=4, world_size=4), V, "rank"),
            (lambda: strata.plan(4, world_size=0), V, "world_size"),
            (lambda: strata.plan(4, worker=2, num_workers=2), V, "worker"),
            (lambda: strata.plan(4, epoch=-1), V, "epoch"),
            (lambda: strata.plan(4, seed=2 ** 64), V, "seed"),
            (lambda: strata.Dataset(URL, world_size=-1), V, "world_size"),
            (lambda: strata.Dataset(URL, rank=4, world_size=4), V, "rank"),
            (lambda: strata.Dataset(URL, prefetch=-1), V, "prefetch"),
            (lambda: strata.Dataset(URL, prefetch_bytes=-1), V,
             "prefetch_bytes"),
            (lambda: strata.Dataset(URL, retries=-1), V, "retries"),
            (lambda: strata.Dataset(URL, backoff_ms=2 ** 32), V,
             "backoff_ms"),
            (lambda: strata.Dataset(URL, piece_size=-1), V, "piece_size"),
            # samples="shards" yields whole shards: pieces would be
            # ignored.
            (lambda: strata.Dataset(URL, piece_size=4096), V, "piece_size"),
            (lambda: strata.Dataset(URL, epoch=-1), V, "epoch"),
            (lambda: strata.Dataset(URL, seed="1"), T, "seed")):
        expect_raise(exc, f, "%s refused" % name, (name + ":",))
    check(c.get(BUCKET, "args/a") == b"the real a",
          "args/a intact after a put of 'args/a\\x00b' was refused")
    d = strata.Dataset(URL, rank=0, world_size=1)
    expect_raise(ValueError, lambda: d.set_epoch(-1), "set_epoch(-1)",
                 ("epoch:",))
    d.prefetch = -1                     # set after construction
    expect_raise(ValueError, lambda: next(iter(d)), "prefetch=-1 set "
                 "after construction", ("prefetch:",))
    # Documented: length None reads to the end; a range past the end is
    # cut; bytes are accepted where str is.
    check(c.get(BUCKET, "args/a", 4) == b"real a" and
          c.get(BUCKET, "args/a", 4, None) == b"real a" and
          c.get(BUCKET, "args/a", 4, 100) == b"real a" and
          c.get(BUCKET, "args/a", 4, 0) == b"" and
          c.get(BUCKET.encode(), b"args/a", 9) == b"a",
          "get: length None to the end, ranges cut at the end")
    c.delete(BUCKET, "args/a")


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def errors_across_processes(c):
    """strata.Error survives pickling, and a libstrata error in a
    DataLoader worker is a strata.Error with its code in the main
    process."""
    e = strata.Error(strata.ENOOBJECT, "b/k", "the node's words")
    e2 = pickle.loads(pickle.dumps(e))
    check(type(e2) is strata.Error and e2.code == e.code and
          e2.what == "b/k" and e2.node_message == "the node's words" and
          str(e2) == str(e) and e2.args == e.args,
          "strata.Error pickle round trip: %s" % e2)
    try:
        c.get(BUCKET, "no/such/object")
    except strata.Error as real:
        e3 = pickle.loads(pickle.dumps(real))
        check(e3.code == strata.ENOOBJECT and str(e3) == str(real) and
              e3.node_message == real.node_message,
              "a real error pickled: %s" % e3)

    # A CA file that cannot be read, or holds no certificate, is named.
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".pem") as f:
        f.write(b"not a certificate\n")
        f.flush()
        for ca, code, has in (("/nonexistent/ca.pem", -errno.ENOENT,
                               "No such file"),
                              (f.name, -errno.EPROTO, "no PEM certificate")):
            e = expect_raise(strata.Error, lambda: strata.Client(ca=ca),
                             "CA file %s" % ca, ("CA file %s: " % ca, has))
            check(e is not None and e.code == code,
                  "... code %s" % (e.code if e is not None else None))

    # The listing works; the workers' node is a closed port.
    d = strata.Dataset(URL, samples="shards", rank=0, world_size=1,
                       retries=strata.NO_RETRY)
    d.client_args = {"endpoint": "127.0.0.1:%d" % closed_port()}
    e = expect_raise(strata.Error,
                     lambda: list(tud.DataLoader(d, num_workers=2,
                                                 batch_size=None)),
                     "DataLoader(num_workers=2), node unreachable",
                     ("Connection refused",))
    check(e is not None and e.code == -errno.ECONNREFUSED,
          "... with its code in the main process (%s)"
          % (e.code if e is not None else None))


def spawned_listing(c):
    """Workers started by spawn read the listing made at construction,
    and refuse when the prefix no longer lists the same."""
    prefix = "spawn/"
    c.delete(BUCKET, prefix + "shard-0106.tar", missing_ok=True)
    want = set()
    for s in range(100, 106):
        data, keys = make_shard(s)
        c.put(BUCKET, "%sshard-%04d.tar" % (prefix, s), data)
        want.update(keys)
    url = "strata://%s/%s" % (BUCKET, prefix)

    def read(d, ctx):
        keys = [x["__key__"] for x in
                tud.DataLoader(d, num_workers=2, batch_size=None,
                               multiprocessing_context=ctx)]
        return keys

    d = strata.Dataset(url, seed=1, samples="webdataset", rank=0,
                       world_size=1)
    keys = read(d, "spawn")
    check(len(keys) == len(want) and set(keys) == want,
          "spawn: %d samples, each once" % len(keys))
    data, _ = make_shard(106)
    c.put(BUCKET, prefix + "shard-0106.tar", data)      # after construction
    keys = read(d, "fork")
    check(len(keys) == len(want) and set(keys) == want,
          "fork, a shard added after construction: the constructed %d "
          "samples" % len(keys))
    e = expect_raise(strata.Error, lambda: read(d, "spawn"),
                     "spawn, a shard added after construction: refused",
                     ("changed", "shard-0106.tar"))
    check(e is not None and e.code == -errno.ESTALE,
          "... as ESTALE (%s)" % (e.code if e is not None else None))
    d2 = strata.Dataset(url, seed=1, samples="webdataset", rank=0,
                        world_size=1)
    keys = read(d2, "spawn")
    check(len(keys) == len(want) + PER_SHARD,
          "spawn, constructed again: %d samples" % len(keys))
    # A shard rewritten at the same size: spawned workers refuse too,
    # rather than read the new version silently.
    data, _ = make_shard(100)
    c.put(BUCKET, prefix + "shard-0100.tar",
          data[:600] + bytes([data[600] ^ 1]) + data[601:])
    e = expect_raise(strata.Error, lambda: read(d2, "spawn"),
                     "spawn, a shard rewritten at the same size: refused",
                     ("rewritten: %sshard-0100.tar" % prefix,))
    check(e is not None and e.code == -errno.ESTALE,
          "... as ESTALE (%s)" % (e.code if e is not None else None))
    c.put(BUCKET, prefix + "shard-0100.tar", data)


def tar_of(members):
    """A ustar archive of (name, bytes) members, in that order."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w",
                      format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


def tar_errors(c):
    """A damaged webdataset shard, or one with a sample field twice: the
    error names it and what is wrong."""
    good, _ = make_shard(200)
    for name, data, has in (
            ("notar", b"this is not a tar archive\n" * 100,
             "tar: header checksum mismatch at byte 0 (not a tar"),
            ("short", good[:3000], "tar: "),
            ("pax", bad_pax(), "tar: bad pax record"),
            ("dup", tar_of([("s1.bin", b"a"), ("s1.cls", b"1"),
                            ("s1.bin", b"b")]),
             "tar: member 's1.bin': sample 's1' already has a 'bin' field"),
            ("key", tar_of([("s1.bin", b"a"), ("s1.__key__", b"other")]),
             "tar: member 's1.__key__': sample 's1' already has a "
             "'__key__' field")):
        key = "badtar/%s/shard.tar" % name
        c.put(BUCKET, key, data)
        url = "strata://%s/badtar/%s/" % (BUCKET, name)
        shard = "strata://%s/%s: " % (BUCKET, key)
        for piece in (0, 1000):
            d = strata.Dataset(url, samples="webdataset", rank=0,
                               world_size=1, piece_size=piece)
            expect_raise(ValueError, lambda: list(d),
                         "%s shard, piece_size %d" % (name, piece),
                         (shard + has,))
        c.delete(BUCKET, key)
    c.put(BUCKET, "badtar/notar/shard.tar", b"x" * 1024)
    d = strata.Dataset("strata://%s/badtar/notar/" % BUCKET, rank=0,
                       world_size=1, samples="webdataset")
    expect_raise(ValueError,
                 lambda: list(tud.DataLoader(d, num_workers=1,
                                             batch_size=None)),
                 "a damaged shard in a DataLoader worker",
                 ("strata://%s/badtar/notar/shard.tar: tar:" % BUCKET,))
    c.delete(BUCKET, "badtar/notar/shard.tar")


def suffix_filter(c):
    """Other objects beside the shards (an index, a README): without
    suffix= the first one fails the epoch with a hint; with suffix=".tar"
    only the shards are read, every sample once."""
    want = set()
    for i in range(3):
        data, keys = make_shard(i, per_shard=5)
        c.put(BUCKET, "sfx/shard-%d.tar" % i, data)
        want.update(keys)
    c.put(BUCKET, "sfx/index.json", b'{"shards": 3}\n' * 40)
    c.put(BUCKET, "sfx/README", b"three shards\n" * 40)
    url = "strata://%s/sfx/" % BUCKET
    d = strata.Dataset(url, samples="webdataset", rank=0, world_size=1)
    expect_raise(ValueError, lambda: list(d), "a README under the prefix",
                 ('suffix=".tar"',))
    d = strata.Dataset(url, samples="webdataset", rank=0, world_size=1,
                       suffix=".tar")
    got = [s["__key__"] for s in d]
    check(sorted(got) == sorted(want) and len(got) == len(want),
          "suffix=\".tar\": every sample of the .tar shards once (%d of %d)"
          % (len(got), len(want)))
    d = strata.Dataset(url, rank=0, world_size=1, suffix=".json")
    check([k for k, _ in d] == ["sfx/index.json"], 'suffix=".json"')
    expect_raise(TypeError, lambda: strata.Dataset(url, suffix=3),
                 "suffix=3", ("suffix",))
    for k in ["sfx/shard-%d.tar" % i for i in range(3)] + [
            "sfx/index.json", "sfx/README"]:
        c.delete(BUCKET, k)


def changed_shards(c):
    """A shard overwritten or deleted after the Dataset listed it: an
    Error naming it, saying what happened."""
    for i in range(3):
        c.put(BUCKET, "chg/%d" % i, b"version one %d" % i)
    url = "strata://%s/chg/" % BUCKET
    d = strata.Dataset(url, shuffle=False, rank=0, world_size=1)
    c.put(BUCKET, "chg/1", b"version two")
    e = expect_raise(strata.Error, lambda: list(d), "a shard overwritten "
                     "after the listing",
                     (url + "1: changed since the Dataset listed it",))
    check(e is not None and e.code == -errno.ESTALE,
          "... as ESTALE (%s)" % (e.code if e is not None else None))
    c.delete(BUCKET, "chg/1")
    e = expect_raise(strata.Error, lambda: list(d), "a shard deleted "
                     "after the listing", (url + "1: no such object",))
    check(e is not None and e.code == strata.ENOOBJECT,
          "... as ENOOBJECT (%s)" % (e.code if e is not None else None))
    for i in (0, 2):
        c.delete(BUCKET, "chg/%d" % i)


def drop_empty():
    """uneven="drop" with more ranks than shards would leave every rank
    nothing: refused."""
    expect_raise(ValueError, lambda: strata.Dataset(
        URL, world_size=NSHARDS + 1, rank=0, uneven="drop"),
                 "drop, world_size 65 > 64 shards, at construction",
                 ('uneven="drop"', "world_size 65"))
    os.environ["RANK"], os.environ["WORLD_SIZE"] = "3", "100"
    d = strata.Dataset(URL, uneven="drop", samples="webdataset")
    expect_raise(ValueError, lambda: list(d),
                 "drop, WORLD_SIZE=100 from the environment, iterating",
                 ('uneven="drop"',))
    expect_raise(ValueError, d.plan, "drop: Dataset.plan()",
                 ('uneven="drop"',))
    expect_raise(ValueError, lambda: list(tud.DataLoader(
        d, num_workers=2, batch_size=None)), "drop, in DataLoader workers",
                 ('uneven="drop"',))
    expect_raise(ValueError, lambda: strata.plan(3, world_size=4, rank=1,
                                                 uneven="drop"),
                 "drop: plan(3 shards, 4 ranks)", ('uneven="drop"',))
    check(len(strata.plan(3, world_size=4, rank=3, uneven="pad")) == 1 and
          strata.plan(0, world_size=4, uneven="drop") == [] and
          len(strata.Dataset(URL, uneven="pad").plan()) == 1,
          "pad still gives every rank a shard; an empty dataset is no "
          "error")
    os.environ["RANK"], os.environ["WORLD_SIZE"] = "0", "1"
    # A RANK or WORLD_SIZE that is not a number is named.
    d = strata.Dataset(URL, seed=1)
    for var, val in (("RANK", "abc"), ("WORLD_SIZE", ""), ("RANK", "1.0")):
        os.environ[var] = val
        expect_raise(ValueError, d.plan, "%s=%r" % (var, val),
                     ("%s=%r" % (var, val), "not an integer"))
        os.environ["RANK"], os.environ["WORLD_SIZE"] = "0", "1"


def bench_binary():
    if os.environ.get("STRATA_BENCH"):
        return os.environ["STRATA_BENCH"]
    # PYTHONPATH is the build tree's client/python: strata-bench is in
    # client/ beside it.
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(strata.__file__)))), "strata-bench")


def bench_tar(c):
    """strata-bench --samples tar: the same count whatever --piece-size
    cuts, damaged shards counted as errors, and --size bounded."""
    bench = bench_binary()
    if not os.access(bench, os.X_OK):
        check(False, "strata-bench not found at %s (set STRATA_BENCH)"
              % bench)
        return
    for s in range(300, 305):
        data, _ = make_shard(s, 100)
        c.put(BUCKET, "benchtar/shard-%04d.tar" % s, data)

    def run(prefix, *more):
        r = subprocess.run([bench, "--workload", "dataset-epoch", "--bucket",
                            BUCKET, "--prefix", prefix, "--samples", "tar",
                            "--concurrency", "2", "--json"] + list(more),
                           capture_output=True, text=True, timeout=120)
        try:
            out = json.loads(r.stdout)
        except ValueError:
            out = {}
        return r.returncode, out, r.stderr

    for piece in (None, "100000", "512", "1000"):
        rc, out, err = run("benchtar/", *(["--piece-size", piece]
                                          if piece else []))
        check(rc == 0 and out.get("samples") == 500 and
              out.get("errors") == 0,
              "strata-bench --samples tar, --piece-size %s: %s samples of "
              "500, exit %d %s" % (piece, out.get("samples"), rc,
                                   err.strip()[:200]))
    good, _ = make_shard(310)
    c.put(BUCKET, "benchbad/a-notar", b"not a tar at all\n" * 64)
    c.put(BUCKET, "benchbad/b-truncated", good[:3000])
    c.put(BUCKET, "benchbad/c-good", good)
    for piece in (None, "700"):
        rc, out, err = run("benchbad/", *(["--piece-size", piece]
                                          if piece else []))
        check(rc == 1 and out.get("errors") == 2 and
              "shard benchbad/a-notar: tar: header checksum mismatch" in err
              and "shard benchbad/b-truncated: tar: " in err and
              "malformed protocol frame" not in err,
              "strata-bench, a non-tar and a truncated shard (piece %s): "
              "exit %d, %s errors: %s" % (piece, rc, out.get("errors"),
                                          err.strip().replace("\n", " | ")))
    # A closed port: a --size let through fails to connect (exit 1)
    # instead of streaming terabytes to the node.
    for size in ("99999T", "2T", "1025G"):
        r = subprocess.run([bench, "--workload", "put", "--bucket", BUCKET,
                            "--size", size, "--ops", "1", "--endpoint",
                            "127.0.0.1:%d" % closed_port()],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 2 and "--size" in r.stderr,
              "strata-bench --size %s: usage error (exit %d)"
              % (size, r.returncode))


def persistent_workers():
    """set_epoch() in the main process reaches persistent DataLoader
    workers, forked or spawned: another order each epoch, the first one
    again for epoch 0, the same as workers started afresh."""
    import copy
    for ctx, copied in (("fork", False), ("spawn", False), ("fork", True)):
        d = strata.Dataset(URL, seed=6, samples="webdataset", rank=1,
                           world_size=RANKS)
        if copied:                      # a copy has its own epoch
            d = copy.deepcopy(d)
        loader = tud.DataLoader(d, num_workers=2, batch_size=None,
                                persistent_workers=True,
                                multiprocessing_context=ctx)
        orders = []
        for epoch in (0, 1, 2, 0):
            d.set_epoch(epoch)
            orders.append([s["__key__"] for s in loader])
        fresh = strata.Dataset(URL, seed=6, epoch=2, samples="webdataset",
                               rank=1, world_size=RANKS)
        check(len({tuple(o) for o in orders}) == 3 and
              orders[0] == orders[3] and
              orders[2] == [s["__key__"] for s in tud.DataLoader(
                  fresh, num_workers=2, batch_size=None)],
              "persistent_workers (%s%s): set_epoch() reaches the "
              "workers (%d orders in epochs 0, 1, 2, 0)"
              % (ctx, ", a deepcopy" if copied else "",
                 len({tuple(o) for o in orders})))


def _own_epoch(d, epoch, q):
    """In a process that is not a DataLoader worker: set its own epoch."""
    d.set_epoch(epoch)
    time.sleep(0.3)                     # while the others set theirs
    q.put(d.epoch)


def own_epochs():
    """Processes other than DataLoader workers (ranks started with the
    Dataset, a sweep's jobs) keep their own epoch: set_epoch() in one
    changes neither its parent's nor its siblings'."""
    import multiprocessing
    for ctx in ("fork", "spawn"):
        mp = multiprocessing.get_context(ctx)
        d = strata.Dataset(URL, epoch=3, rank=0, world_size=1)
        q = mp.Queue()
        ps = [mp.Process(target=_own_epoch, args=(d, e, q)) for e in (7, 9)]
        for p in ps:
            p.start()
        got = sorted([q.get(timeout=60), q.get(timeout=60)])
        for p in ps:
            p.join()
        check(d.epoch == 3 and got == [7, 9],
              "%s: two processes set epochs 7 and 9: they read %s, their "
              "parent still 3 (%d)" % (ctx, got, d.epoch))


def _dist_rank(rank, world, port, out):
    """One rank of distributed_workers(), in a spawned process: its
    samples of epochs 0 and 1 through a DataLoader with 2 workers."""
    import torch.distributed as dist
    for v in ("RANK", "WORLD_SIZE"):    # only torch.distributed says
        os.environ.pop(v, None)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", port
    # Made before init_process_group, epoch never set: the workers learn
    # the rank when they are forked.
    early = strata.Dataset(URL, seed=4, epoch=1, samples="webdataset")
    dist.init_process_group("gloo", init_method="env://", rank=rank,
                            world_size=world)
    try:
        d = strata.Dataset(URL, seed=4, samples="webdataset")
        keys = []
        for epoch in (0, 1):
            d.set_epoch(epoch)
            keys.append([s["__key__"] for s in
                         tud.DataLoader(d, num_workers=2, batch_size=None)])
        keys.append([s["__key__"] for s in
                     tud.DataLoader(early, num_workers=2, batch_size=None)])
        with open(os.path.join(out, str(rank)), "w") as f:
            json.dump(keys, f)
    finally:
        dist.destroy_process_group()


def distributed_workers():
    """Ranks from torch.distributed (init_process_group with explicit
    ranks, as under torch.multiprocessing.spawn; no RANK/WORLD_SIZE in the
    environment) reach the DataLoader workers, in which torch.distributed
    is not initialized: every sample exactly once across the ranks."""
    import tempfile
    import torch.multiprocessing as tmp
    world = 2
    with tempfile.TemporaryDirectory() as out:
        tmp.spawn(_dist_rank, args=(world, str(closed_port()), out),
                  nprocs=world)
        per_rank = []
        for r in range(world):
            with open(os.path.join(out, str(r))) as f:
                per_rank.append(json.load(f))
    for epoch, how in ((0, "epoch 0"), (1, "epoch 1"),
                       (2, "a Dataset made before init_process_group")):
        flat = [k for r in per_rank for k in r[epoch]]
        check(len(flat) == NSHARDS * PER_SHARD and
              len(set(flat)) == len(flat),
              "torch.distributed (gloo, %d ranks) in DataLoader workers, "
              "%s: %s samples per rank, each exactly once"
              % (world, how, [len(r[epoch]) for r in per_rank]))
    check([r[2] for r in per_rank] == [r[1] for r in per_rank],
          "... the same samples as a Dataset made after it, epoch 1")


def hung_node():
    """The node stops answering (SIGSTOP) while a DataLoader with
    num_workers=0 reads in process, and Ctrl-C (SIGINT) comes:
    KeyboardInterrupt comes out and the iterator is gone within a second
    or so, though the client's timeout_ms is 30 s (the iterator's free cuts
    the fetch in flight short instead of waiting it out).  Once the node
    runs again, the same Dataset (same client) reads a whole epoch."""
    import signal
    d = strata.Dataset(URL, seed=5, samples="shards", prefetch=1, rank=0,
                       world_size=1, retries=3,
                       client_args={"timeout_ms": 30000})
    it = iter(tud.DataLoader(d, batch_size=None, num_workers=0))
    next(it)
    pid = node_pid()
    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    got = None
    ctrl_c = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    try:
        ctrl_c.start()
        for _ in it:
            pass
    except KeyboardInterrupt:
        got = "KeyboardInterrupt"
    except strata.Error as e:
        got = "strata.Error %s" % e
    finally:
        ctrl_c.cancel()
        it = None           # closes the Dataset's generator: its free
        took = time.monotonic() - t0
        os.kill(pid, signal.SIGCONT)
    # Old: the free waited for the fetch in flight, some 30 s.
    check(got == "KeyboardInterrupt" and took < 3,
          "a hung node: Ctrl-C's KeyboardInterrupt and the iterator's free "
          "after %.1f s (SIGINT at 0.5 s, timeout_ms 30 s): %s" % (took, got))
    keys = [k for k, _ in d]
    check(len(keys) == NSHARDS and len(set(keys)) == NSHARDS,
          "... then the same Dataset reads a whole epoch (%d shards)"
          % len(keys))


def ctrl_c_on(what, fn, pid, sigcont_at=None):
    """Run fn() with the node stopped (SIGSTOP) and a SIGINT to this
    process 0.5 s in (and a SIGCONT to the node at sigcont_at s, when
    given; else right after fn): (what came out, seconds taken)."""
    import signal
    os.kill(pid, signal.SIGSTOP)
    timers = [threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))]
    if sigcont_at is not None:
        timers.append(threading.Timer(sigcont_at, os.kill,
                                      (pid, signal.SIGCONT)))
    t0 = time.monotonic()
    try:
        for t in timers:
            t.start()
        got = ("returned", fn())
    except KeyboardInterrupt:
        got = ("KeyboardInterrupt", None)
    except strata.Error as e:
        got = ("strata.Error %s" % e, None)
    finally:
        took = time.monotonic() - t0
        for t in timers:
            t.cancel()
            t.join()
        os.kill(pid, signal.SIGCONT)
    print("   %s: %s after %.2f s" % (what, got[0], took))
    return got, took


def open_sockets():
    n = 0
    for f in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink("/proc/self/fd/" + f).startswith("socket:")
        except OSError:                 # the listing's own descriptor
            pass
    return n


def hung_calls(c):
    """Ctrl-C during a Client call or a Dataset construction blocked on a
    node that hangs (SIGSTOP after the connection was set up) or on one
    that accepts TCP but never answers: KeyboardInterrupt within a second
    or so, though timeout_ms is 30 s, not after it (old: the call waited
    its timeout out).  Afterwards (SIGCONT) the same Client works, and no
    connection is left open."""
    import gc
    import signal
    pid = node_pid()
    c = strata.Client(timeout_ms=30000)
    c.put(BUCKET, "hung/a", b"still here")
    c.get(BUCKET, "hung/a")
    socks = open_sockets()
    for what, fn in (
            ("get", lambda: c.get(BUCKET, "hung/a")),
            ("put", lambda: c.put(BUCKET, "hung/b", b"x" * 1000)),
            ("list", lambda: list(c.list(BUCKET, prefix="hung/"))),
            ("Dataset()", lambda: strata.Dataset(
                URL, client_args={"timeout_ms": 30000}))):
        got, took = ctrl_c_on(what, fn, pid)
        check(got[0] == "KeyboardInterrupt" and took < 3,
              "a hung node: Ctrl-C during %s: KeyboardInterrupt after "
              "%.1f s (SIGINT at 0.5 s, timeout_ms 30 s): %s"
              % (what, took, got[0]))
        check(c.get(BUCKET, "hung/a") == b"still here",
              "... then (SIGCONT) the same Client gets again")
    gc.collect()
    check(open_sockets() == socks, "... and no connection was left open "
          "(%d sockets before, %d after)" % (socks, open_sockets()))

    # Waiting for a free connection (pool_size 1, its connection busy on
    # another thread, which is not interrupted and ends once the node
    # runs again).
    c1 = strata.Client(timeout_ms=30000, pool_size=1)
    other = {}
    os.kill(pid, signal.SIGSTOP)
    t = threading.Thread(target=lambda: other.setdefault(
        "got", c1.get(BUCKET, "hung/a")))
    t.start()
    time.sleep(0.2)
    got, took = ctrl_c_on("get waiting for the pool",
                          lambda: c1.get(BUCKET, "hung/a"), pid)
    t.join(30)
    check(got[0] == "KeyboardInterrupt" and took < 3 and
          other.get("got") == b"still here" and
          c1.get(BUCKET, "hung/a") == b"still here",
          "Ctrl-C during a get waiting for the pool's only connection "
          "(busy on a hung node): KeyboardInterrupt after %.1f s; the "
          "other thread's get ended once the node ran again"
          % took)
    c1.close()

    # A SIGINT handler of the program's own that returns: the call goes
    # on (made again) and succeeds once the node runs again.
    seen = []
    old = signal.signal(signal.SIGINT, lambda *a: seen.append(1))
    try:
        got, took = ctrl_c_on("get, SIGINT handler that returns",
                              lambda: c.get(BUCKET, "hung/a"), pid,
                              sigcont_at=1.0)
    finally:
        signal.signal(signal.SIGINT, old)
    check(got == ("returned", b"still here") and seen == [1],
          "a SIGINT handler that returns: it ran once and the get went "
          "on to its end: %s, %s" % (got, seen))

    # A node that accepts TCP but never answers (the TLS handshake).
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    try:
        got, took = ctrl_c_on(
            "Client() on a silent port",
            lambda: strata.Client(endpoint="127.0.0.1:%d"
                                  % s.getsockname()[1], timeout_ms=30000),
            pid)
    finally:
        s.close()
    check(got[0] == "KeyboardInterrupt" and took < 3,
          "Ctrl-C during Client() on a port that accepts TCP and never "
          "answers: KeyboardInterrupt after %.1f s" % took)
    c.delete(BUCKET, "hung/a")
    c.delete(BUCKET, "hung/b", missing_ok=True)
    c.close()


def ctrl_c_big_get(c):
    """Ctrl-C in the middle of a large get from a node that answers: the
    KeyboardInterrupt comes out (or, when the get ended first, the whole
    object does).  Old: the get's Python callback took the interrupt on
    entry; ctypes printed it ("Exception ignored on calling ctypes
    callback function") and dropped it, and the callback's undefined
    return value either let the get go on without that chunk (the object
    returned 256 KiB short, no error) or stopped it with a nonsense
    code."""
    import signal
    data = os.urandom(64 << 20)
    c.put(BUCKET, "big/a", data)
    t0 = time.monotonic()
    check(c.get(BUCKET, "big/a") == data, "a 64 MiB get")
    took = time.monotonic() - t0
    dropped = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = dropped.append
    outcomes = []
    try:
        for i in range(8):
            t = threading.Timer(took * (0.1 + 0.1 * i), os.kill,
                                (os.getpid(), signal.SIGINT))
            got = None
            try:
                t.start()
                got = c.get(BUCKET, "big/a")
                got = "whole" if got == data else \
                    "WRONG (%d bytes)" % len(got)
                t.join()                # a SIGINT after the get: here
                got += ", no KeyboardInterrupt"
            except KeyboardInterrupt:
                got = got + ", then KeyboardInterrupt" if got else \
                    "KeyboardInterrupt"
            except strata.Error as e:
                got = "strata.Error %s" % e
            t.join()
            outcomes.append(got)
    finally:
        sys.unraisablehook = old_hook
    check(all(o in ("KeyboardInterrupt", "whole, then KeyboardInterrupt")
              for o in outcomes) and
          "KeyboardInterrupt" in outcomes and not dropped,
          "Ctrl-C during a 64 MiB get (8 times, %.2f s each): "
          "KeyboardInterrupt (or the whole object, when the get ended "
          "first, then KeyboardInterrupt), never fewer bytes, an error, "
          "or a lost or dropped KeyboardInterrupt: %s; dropped: %s"
          % (took, outcomes, [d.exc_type.__name__ for d in dropped]))
    check(c.get(BUCKET, "big/a") == data, "... then the get works")
    c.delete(BUCKET, "big/a")


def main():
    tar_in_pieces()
    c = strata.Client()
    c.create_bucket(BUCKET, exist_ok=True)

    # ---- Client calls ----
    c.put(BUCKET, "misc/a", b"hello world", content_type="text/plain")
    check(c.get(BUCKET, "misc/a") == b"hello world", "put/get")
    check(c.get(BUCKET, "misc/a", 6, 3) == b"wor", "range get")
    st = c.stat(BUCKET, "misc/a")
    check(st["size"] == 11 and st["content_type"] == "text/plain", "stat")
    big = os.urandom(5 << 20)
    c.put(BUCKET, "misc/big", bytearray(big))
    check(c.get(BUCKET, "misc/big") == big, "5 MiB put/get (several chunks)")
    check([e["key"] for e in c.list(BUCKET, prefix="misc/")] ==
          ["misc/a", "misc/big"], "list")
    c.delete(BUCKET, "misc/a")
    try:
        c.get(BUCKET, "misc/a")
        check(False, "get of a deleted object raises")
    except strata.Error as e:
        check(e.code == strata.ENOOBJECT and "object" in str(e).lower(),
              "get of a deleted object raises ENOOBJECT: %s" % e)
    c.delete(BUCKET, "misc/big")
    try:
        strata.Dataset("strata://no-such-bucket/x/")
        check(False, "a dataset in a missing bucket raises")
    except strata.Error as e:
        # The node's words are not repeated when they are the code's.
        check(e.code == strata.ENOBUCKET and e.node_message and
              str(e).count("no such bucket") == 1,
              "missing bucket: %s" % e)

    # ---- the dataset ----
    expect = set()
    for s in range(NSHARDS):
        data, keys = make_shard(s)
        c.put(BUCKET, "train/shard-%04d.tar" % s, data)
        expect.update(keys)
    c.put(BUCKET, "other/not-a-shard", b"x")
    # 1,500 keys: two HINT requests (at most 1,024 keys each).
    c.hint(BUCKET, ["train/shard-%04d.tar" % (i % NSHARDS)
                    for i in range(1500)])
    check(True, "hint of 1,500 keys accepted")

    ds = strata.Dataset(URL, seed=42, samples="webdataset")
    check(ds.num_shards == NSHARDS and ds.keys[0] == "train/shard-0000.tar"
          and ds.keys == sorted(ds.keys),
          "listed once: %d shards, sorted" % ds.num_shards)

    orders = {}
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        per_rank, bad = read_epoch(ds)
        flat = [k for r in per_rank for k in r]
        check(bad == 0, "epoch %d: every sample's bytes intact" % epoch)
        check(len(flat) == len(expect) and set(flat) == expect,
              "epoch %d: %d samples over %d ranks x 2 workers, each "
              "exactly once" % (epoch, len(flat), RANKS))
        check(all(len(r) == NSHARDS * PER_SHARD // RANKS for r in per_rank),
              "epoch %d: equal shares" % epoch)
        orders[epoch] = per_rank
    check(orders[0] != orders[1] and
          any(set(a) != set(b) for a, b in zip(orders[0], orders[1])),
          "epoch 1 reads another order (and other shards per rank)")
    again = strata.Dataset(URL, seed=42, epoch=0, samples="webdataset")
    check(read_rank(again, 2, RANKS)[0] == orders[0][2],
          "same seed and epoch: the same order (rank 2)")
    other = strata.Dataset(URL, seed=7, epoch=0, samples="webdataset")
    check(read_rank(other, 2, RANKS)[0] != orders[0][2],
          "another seed: another order")

    # Shards read in pieces and their tars parsed as the pieces arrive:
    # members (and headers) span pieces; the same samples, same order.
    for piece in (5000, 65536):
        d = strata.Dataset(URL, seed=42, epoch=0, samples="webdataset",
                           piece_size=piece)
        keys, bad = read_rank(d, 2, RANKS)
        check(bad == 0 and keys == orders[0][2],
              "piece_size %d: rank 2's samples intact, in order" % piece)
    d = strata.Dataset(URL, seed=42, epoch=0, samples="webdataset",
                       piece_size=5000, rank=0, world_size=RANKS)
    n = sum(1 for _ in d)
    check(d.last_stats["pieces"] > NSHARDS // RANKS * 10 and
          n == NSHARDS * PER_SHARD // RANKS,
          "piece_size 5000 in process: %d pieces for %d samples" %
          (d.last_stats["pieces"], n))

    # Shards over 1 MiB with the default pieces (64 MiB): the first shard
    # of the plan comes in growing pieces (1 MiB, 2 MiB, the rest), the
    # second whole; the samples are those of the whole archives, in order.
    want = []
    for s in (900, 901):
        data, keys = make_shard(s, per_shard=300)
        check(len(data) > 3 << 20, "a %d-byte shard" % len(data))
        c.put(BUCKET, "ramp/shard-%d.tar" % s, data)
        want += keys
    d = strata.Dataset("strata://%s/ramp/" % BUCKET, shuffle=False,
                       samples="webdataset", rank=0, world_size=1)
    got = list(d)
    check([x["__key__"] for x in got] == want and all(map(verify, got)),
          "big shards, default pieces: %d samples intact, in order" %
          len(got))
    check(d.last_stats["pieces"] == 4,
          "the first shard in 3 growing pieces, the second whole: %d "
          "pieces" % d.last_stats["pieces"])
    for s in (900, 901):
        c.delete(BUCKET, "ramp/shard-%d.tar" % s)

    # Three ranks do not divide 64 shards.
    for uneven, per, distinct in (("drop", 21, 63), ("pad", 22, 64),
                                  ("share", None, 64)):
        d = strata.Dataset(URL, seed=3, samples="webdataset", uneven=uneven)
        per_rank, bad = read_epoch(d, world=3)
        counts = [len(r) // PER_SHARD for r in per_rank]
        shards = {k[:5] for r in per_rank for k in r}
        ok = bad == 0 and len(shards) == distinct
        if per is not None:
            ok = ok and counts == [per] * 3
        else:
            ok = ok and sorted(counts) == [21, 21, 22] and \
                sum(counts) == NSHARDS
        check(ok, "uneven=%s over 3 ranks: shards per rank %s" %
              (uneven, counts))

    # Whole shards, in process, with the reader's counters.
    d = strata.Dataset(URL, seed=1, samples="shards", rank=1, world_size=4)
    got = list((k, hashlib.sha256(v).hexdigest()) for k, v in d)
    check([k for k, _ in got] == d.plan() and len(got) == 16,
          "samples=shards: whole shards in plan order")
    check(d.last_stats["hints"] >= 1 and d.last_stats["pieces"] == 16,
          "prestaging hint sent: %s" % d.last_stats)

    # torch.distributed, when initialized, wins over RANK/WORLD_SIZE.
    import tempfile
    import torch.distributed as dist
    os.environ["RANK"], os.environ["WORLD_SIZE"] = "3", "4"
    d = strata.Dataset(URL, seed=1)
    from_env = d.plan()
    store = tempfile.mktemp(prefix="strata-dist-")
    dist.init_process_group("gloo", init_method="file://" + store, rank=0,
                            world_size=1)
    try:
        from_dist = d.plan()
    finally:
        dist.destroy_process_group()
        if os.path.exists(store):
            os.unlink(store)
    check(len(from_env) == 16 and from_env == d.plan() and
          from_dist == strata.Dataset(URL, seed=1, rank=0,
                                      world_size=1).plan() and
          len(from_dist) == 64,
          "rank/world from RANK/WORLD_SIZE (3 of 4: 16 shards), and from "
          "torch.distributed when initialized (0 of 1: 64 shards)")

    distributed_workers()
    persistent_workers()
    own_epochs()
    low_level(c)
    bad_arguments(c)
    errors_across_processes(c)
    spawned_listing(c)
    tar_errors(c)
    suffix_filter(c)
    changed_shards(c)
    drop_empty()
    bench_tar(c)

    # ---- a hung node: Ctrl-C stops a loop, or a call, at once ----
    hung_node()
    hung_calls(c)
    ctrl_c_big_get(c)

    # ---- a node that does not come back in time ----
    d = strata.Dataset(URL, seed=5, samples="shards", prefetch=1, rank=0,
                       world_size=1, retries=2, backoff_ms=50)
    it = iter(d)
    next(it)
    old, t, done = restart_node(3)
    e = expect_raise(strata.Error, lambda: list(it), "node down for 3 s, "
                     "2 retries", ("given up after 2 retries in ",
                                   "Connection refused"))
    check(e is not None and e.code == -errno.ECONNREFUSED,
          "... as ECONNREFUSED (%s)" % (e.code if e is not None else None))
    t.join()

    # ---- a node restart in the middle of an epoch ----
    # In process first: the reader's counters show the retries.
    d = strata.Dataset(URL, seed=5, samples="shards", prefetch=1, rank=0,
                       world_size=1)
    seen = []
    it = iter(d)
    for _ in range(5):
        seen.append(next(it)[0])
    old, t, done = restart_node(1.5)
    for k, _ in it:
        seen.append(k)
    t.join()
    check(sorted(seen) == sorted(d.keys) and done.get("pid") != old,
          "in process: node killed and restarted after 5 of 64 shards; "
          "all 64 read once")
    check(d.last_stats["retries"] > 0,
          "the reader retried through the restart: %s" % d.last_stats)

    # Then through a DataLoader with 2 workers.
    os.environ["RANK"], os.environ["WORLD_SIZE"] = "0", "1"
    d = strata.Dataset(URL, seed=9, samples="webdataset", prefetch=1)
    keys, bad = [], 0
    t = None
    for i, sample in enumerate(tud.DataLoader(d, num_workers=2,
                                              batch_size=None)):
        keys.append(sample["__key__"])
        bad += not verify(sample)
        if i == 20:
            old, t, done = restart_node(1.5)
    t.join()
    check(done.get("pid") not in (None, old), "the node was restarted "
          "(pid %d -> %s)" % (old, done.get("pid")))
    check(bad == 0 and len(keys) == len(expect) and set(keys) == expect,
          "DataLoader, 2 workers: restart after 21 of %d samples survived, "
          "every sample exactly once" % len(expect))

    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
