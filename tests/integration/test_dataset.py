# SPDX-License-Identifier: Apache-2.0
"""The Python binding against a real node (started by dataset.sh).

A synthetic WebDataset of 64 tar shards (4 samples each) is uploaded, then
read with a torch DataLoader (2 workers) as 4 simulated ranks (RANK and
WORLD_SIZE in the environment, as torchrun sets them):
  - every sample exactly once per epoch, with its bytes intact;
  - another order in the next epoch, the same order for the same seed;
  - drop/pad give equal shares per rank;
  - a node killed (-9) and restarted on the same directories and port in
    the middle of an epoch costs nothing: every sample still exactly once.
Also the Client calls (put/get/range/stat/list/delete/hint) and errors.

usage: test_dataset.py CLUSTER_DIR PORT DEV_CLUSTER_SH
"""
import ctypes
import errno
import hashlib
import io
import os
import random
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


def make_shard(s):
    bio = io.BytesIO()
    keys = []
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for j in range(PER_SHARD):
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
        check(e.code == strata.ENOBUCKET, "missing bucket: %s" % e)

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

    low_level(c)

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
