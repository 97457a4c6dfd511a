# SPDX-License-Identifier: Apache-2.0
"""Python binding of libstrata, the Strata object store's C client (ctypes).

    import strata
    c = strata.Client()                      # STRATA_ENDPOINT, ... as the CLI
    c.put("imagenet", "train/shard-0001.tar", data)
    ds = strata.Dataset("strata://imagenet/train/", seed=42,
                        samples="webdataset")
    loader = torch.utils.data.DataLoader(ds, num_workers=8, batch_size=None)
    for epoch in range(10):
        ds.set_epoch(epoch)
        for sample in loader: ...           # {"__key__": ..., "jpg": b"..."}

Dataset is a torch.utils.data.IterableDataset when torch can be imported,
a plain iterable otherwise.  Each rank and each DataLoader worker reads its
own share of the epoch's plan (libstrata's strata_dataset_plan: every shard
exactly once per epoch across all ranks and workers), prefetched in
parallel by libstrata's threads, which retry through node restarts.

String arguments (buckets, keys, prefixes, endpoint, ...) are str,
encoded as UTF-8, or bytes; anything else is a TypeError naming the
argument, and a NUL in one (C would stop at it: 'a\\x00b' would name key
'a') a ValueError.  Integer arguments are checked against the C types they
become (a ValueError naming the argument, never a silent wrap).

Ctrl-C (SIGINT) on the main thread ends a call that waits on a node that
hangs (Client calls, Client() and Dataset() construction, a Dataset's
iteration) at once with KeyboardInterrupt, rather than after the client's
timeout_ms; the Client stays usable (the connection the call was using is
closed, never pooled again).  Calls on other threads, where Python runs no
signal handlers, wait their timeout out.

The library is found through $STRATA_LIBRARY, else the path this package
was built or installed with (_libpath.py), else the loader's search path.
"""
import atexit
import ctypes
import ctypes.util
import errno
import multiprocessing.context
import multiprocessing.sharedctypes
import operator
import os
import signal
import sys
import threading
import weakref

from strata import _tar

__all__ = ["Client", "Dataset", "Error", "NO_RETRY", "plan", "parse_url",
           "webdataset_samples"]

# ---- the library ------------------------------------------------------------


def _load():
    cands = []
    if os.environ.get("STRATA_LIBRARY"):
        cands.append(os.environ["STRATA_LIBRARY"])
    try:
        from strata import _libpath
        cands.append(_libpath.LIBRARY)
    except ImportError:
        pass
    found = ctypes.util.find_library("strata")
    if found:
        cands.append(found)
    cands.append("libstrata.so.0")
    errors = []
    for c in cands:
        try:
            return ctypes.CDLL(c)
        except OSError as e:
            errors.append("%s: %s" % (c, e))
    raise ImportError("strata: cannot load libstrata (" + "; ".join(errors)
                      + "); set STRATA_LIBRARY to its path")


_lib = _load()

_c_p = ctypes.c_void_p
_u64 = ctypes.c_uint64
_size = ctypes.c_size_t
_char_p = ctypes.c_char_p


class _Config(ctypes.Structure):
    _fields_ = [("endpoint", _c_p), ("access_key", _c_p),
                ("secret_key", _c_p), ("ca_file", _c_p),
                ("pool_size", ctypes.c_uint), ("timeout_ms", ctypes.c_uint)]


class _PutOpts(ctypes.Structure):
    _fields_ = [("content_type", _char_p), ("meta", _c_p),
                ("nmeta", _size), ("tags", _c_p), ("ntags", _size),
                ("has_size", ctypes.c_bool), ("size", _u64)]


class _Kv(ctypes.Structure):
    _fields_ = [("name", _char_p), ("value", _char_p)]


class _GetResult(ctypes.Structure):
    _fields_ = [("size", _u64), ("etag", ctypes.c_uint8 * 32),
                ("version", _u64), ("writer", ctypes.c_uint32),
                ("mtime_ms", _u64), ("offset", _u64), ("length", _u64)]


class _Chunk(ctypes.Structure):
    _fields_ = [("tier", ctypes.c_uint), ("raw_len", ctypes.c_uint32),
                ("stored_len", ctypes.c_uint32)]


class _Stat(ctypes.Structure):
    _fields_ = [("size", _u64), ("etag", ctypes.c_uint8 * 32),
                ("etag_hex", ctypes.c_char * 76), ("version", _u64),
                ("writer", ctypes.c_uint32), ("mtime_ms", _u64),
                ("content_type", _char_p), ("meta", ctypes.POINTER(_Kv)),
                ("nmeta", _size), ("tags", ctypes.POINTER(_Kv)),
                ("ntags", _size), ("chunk_size", ctypes.c_uint32),
                ("chunks", ctypes.POINTER(_Chunk)), ("nchunks", _size)]


class _ListOpts(ctypes.Structure):
    _fields_ = [("prefix", _char_p), ("delimiter", _char_p),
                ("start_after", _char_p), ("page_size", ctypes.c_uint)]


class _ListEntry(ctypes.Structure):
    _fields_ = [("key", _char_p), ("prefix", _char_p), ("size", _u64),
                ("etag", ctypes.c_uint8 * 32), ("version", _u64),
                ("mtime_ms", _u64)]


_ALLOC_FN = ctypes.CFUNCTYPE(_c_p, _c_p, _size)
_FREE_FN = ctypes.CFUNCTYPE(None, _c_p, _c_p, _size)


class _EpochOpts(ctypes.Structure):
    _fields_ = [("seed", _u64), ("epoch", _u64), ("rank", ctypes.c_uint),
                ("world_size", ctypes.c_uint), ("worker", ctypes.c_uint),
                ("num_workers", ctypes.c_uint), ("no_shuffle", ctypes.c_bool),
                ("uneven", ctypes.c_int), ("prefetch", ctypes.c_uint),
                ("prefetch_bytes", _u64), ("piece_size", _u64),
                ("retries", ctypes.c_uint), ("backoff_ms", ctypes.c_uint),
                ("hint_window", ctypes.c_uint), ("no_hint", ctypes.c_bool),
                ("alloc_fn", _ALLOC_FN), ("free_fn", _FREE_FN),
                ("alloc_arg", _c_p)]


class _Shard(ctypes.Structure):
    _fields_ = [("index", _size), ("seq", _size), ("key", _char_p),
                ("size", _u64), ("offset", _u64), ("length", _u64),
                ("last", ctypes.c_bool), ("data", _c_p),
                ("retries", ctypes.c_uint), ("fetch_ns", _u64)]


class _EpochStats(ctypes.Structure):
    _fields_ = [(n, _u64) for n in ("pieces", "bytes", "retries", "failed",
                                    "hints", "hint_keys", "wait_ns")]


def _proto(name, res, *args):
    f = getattr(_lib, name)
    f.restype = res
    f.argtypes = list(args)
    return f


_I = ctypes.c_int
_strerror = _proto("strata_strerror", _char_p, _I)
_error_message = _proto("strata_error_message", _char_p)
_config_from_env = _proto("strata_config_from_env", _I,
                          ctypes.POINTER(_Config), ctypes.c_char_p, _size)
_config_release = _proto("strata_config_release", None,
                         ctypes.POINTER(_Config))
_client_new = _proto("strata_client_new", _I, ctypes.POINTER(_Config),
                     ctypes.POINTER(_c_p))
_client_free = _proto("strata_client_free", None, _c_p)
_bucket_create = _proto("strata_bucket_create", _I, _c_p, _char_p)
_bucket_delete = _proto("strata_bucket_delete", _I, _c_p, _char_p)
_put_buf = _proto("strata_object_put_buf", _I, _c_p, _char_p, _char_p,
                  ctypes.POINTER(_PutOpts), _c_p, _size, _c_p)
_get_alloc = _proto("strata_object_get_alloc", _I, _c_p, _char_p, _char_p,
                    _u64, _u64, ctypes.POINTER(_c_p),
                    ctypes.POINTER(_GetResult))
# What strata_object_get_alloc() mallocs is freed with the process's free().
_free = ctypes.CDLL(None).free
_free.restype = None
_free.argtypes = [_c_p]
_stat = _proto("strata_object_stat", _I, _c_p, _char_p, _char_p,
               ctypes.POINTER(ctypes.POINTER(_Stat)))
_stat_free = _proto("strata_stat_free", None, ctypes.POINTER(_Stat))
_delete = _proto("strata_object_delete", _I, _c_p, _char_p, _char_p, _c_p)
_list_new = _proto("strata_list_new", _I, _c_p, _char_p,
                   ctypes.POINTER(_ListOpts), ctypes.POINTER(_c_p))
_list_next = _proto("strata_list_next", _I, _c_p,
                    ctypes.POINTER(ctypes.POINTER(_ListEntry)))
_list_free = _proto("strata_list_free", None, _c_p)
_hint = _proto("strata_hint", _I, _c_p, _char_p,
               ctypes.POINTER(_char_p), _size)
_ds_open = _proto("strata_dataset_open", _I, _c_p, _char_p, _char_p,
                  ctypes.POINTER(_c_p))
_ds_open_suffix = _proto("strata_dataset_open_suffix", _I, _c_p, _char_p,
                         _char_p, _char_p, ctypes.POINTER(_c_p))
_ds_count = _proto("strata_dataset_count", _size, _c_p)
_ds_key = _proto("strata_dataset_key", _char_p, _c_p, _size,
                 ctypes.POINTER(_u64))
_ds_etag = _proto("strata_dataset_etag", ctypes.POINTER(ctypes.c_uint8),
                  _c_p, _size)
_ds_free = _proto("strata_dataset_free", None, _c_p)
_ds_plan = _proto("strata_dataset_plan", _I, _size,
                  ctypes.POINTER(_EpochOpts), ctypes.POINTER(_size), _size,
                  ctypes.POINTER(_size))
_epoch_new = _proto("strata_epoch_new", _I, _c_p, _c_p,
                    ctypes.POINTER(_EpochOpts), ctypes.POINTER(_c_p))
_epoch_next = _proto("strata_epoch_next", _I, _c_p, ctypes.POINTER(_Shard))
_epoch_wait = _proto("strata_epoch_wait", _I, _c_p, ctypes.c_uint)
_epoch_buf_free = _proto("strata_epoch_buf_free", None, _c_p, _c_p, _size)
_epoch_stats = _proto("strata_epoch_stats", None, _c_p,
                      ctypes.POINTER(_EpochStats))
_epoch_free = _proto("strata_epoch_free", None, _c_p)
_INTR_FN = ctypes.CFUNCTYPE(ctypes.c_int)
_interrupt_set = _proto("strata_interrupt_set", None, _INTR_FN)

# ---- Ctrl-C -----------------------------------------------------------------
#
# A call blocked on a node that hangs ends on Ctrl-C, not after timeout_ms.
# libstrata asks the main thread's interrupt hook, each time a signal
# interrupted one of its waits there, whether to give up.  The hook is
# CPython's PyOS_InterruptOccurred() itself: true when the signal was SIGINT
# (it takes it: its handler is not run then).  The call returns -EINTR, its
# connection closed, and _interrupted() runs SIGINT's handler in its stead
# (KeyboardInterrupt).  No Python code runs in the hook: a handler pending
# there would run on entering it, and an exception raised in a ctypes
# callback is printed and lost.  Calls on other threads are not cut short
# (Python runs signal handlers on the main thread only).  Nothing is added
# to a call that no signal interrupts.
_EINTR = -errno.EINTR
try:
    _interrupt_occurred = ctypes.pythonapi.PyOS_InterruptOccurred
    _interrupt_occurred.restype = ctypes.c_int
    _interrupt_occurred.argtypes = []
    _sigint_hook = _INTR_FN(_interrupt_occurred)
except AttributeError:                  # not CPython
    _sigint_hook = None
_hooked = False


def _hook():
    """Set the interrupt hook when on the main thread (once)."""
    global _hooked
    if not _hooked and _sigint_hook is not None and \
            threading.current_thread() is threading.main_thread():
        _interrupt_set(_sigint_hook)
        _hooked = True


def _unhook():
    global _hooked
    if _hooked and threading.current_thread() is threading.main_thread():
        _interrupt_set(_INTR_FN())     # NULL: none
    _hooked = False


def _forked():
    global _hooked
    _hooked = False                     # the child's main thread: set anew


def _interrupted():
    """A call came back -EINTR: its hook took a SIGINT before Python ran
    the handler; run it now (KeyboardInterrupt).  A handler of the
    program's own may return: the caller then makes the call again."""
    h = signal.getsignal(signal.SIGINT)
    if callable(h):
        h(signal.SIGINT, sys._getframe(1))


def _call(f, *args):
    """f(*args), a libstrata call that may wait on the node; made again
    when Ctrl-C cut it short but SIGINT's handler did not raise."""
    rc = f(*args)
    while rc == _EINTR:
        _interrupted()
        rc = f(*args)
    return rc


_hook()
atexit.register(_unhook)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)

# include/strata/error.h
ENOBUCKET = -30001
ENOOBJECT = -30002
EBUCKETEXISTS = -30003

UNEVEN = {"share": 0, "drop": 1, "pad": 2}

# Dataset(retries=NO_RETRY): a failed fetch is not tried again
# (STRATA_NO_RETRY; retries=0 means libstrata's default, 10).
NO_RETRY = 0xFFFFFFFF

_UINT_MAX = 0xFFFFFFFF                  # C unsigned
_U64_MAX = 0xFFFFFFFFFFFFFFFF
_SIZE_MAX = (1 << 8 * ctypes.sizeof(_size)) - 1

# Dataset(samples="webdataset") reads shards larger than this in byte ranges
# of this size by default, and parses each tar as its pieces arrive, so a
# worker holds pieces, not whole shards, however large they are.  Smaller
# shards are read whole: on 2 shared cores, 8 or 16 MiB pieces of 32 MiB
# shards made the first batch come 2x sooner but the epoch no faster.
WEBDATASET_PIECE = 64 << 20


class Error(Exception):
    """A libstrata error: .code is the negative errno or STRATA_E* value;
    .what what failed ("" when not said); .node_message what the node said
    about it ("" when nothing).

    Picklable, so it crosses process boundaries whole.  torch's DataLoader
    does not pickle a worker's exception, though: it raises
    Error(text) in the main process, text being the worker's traceback;
    .code, .what and .node_message are then read back from its last
    "strata.Error: " line (.code None if it names no libstrata error).
    """

    def __init__(self, code, what="", node_message=""):
        if isinstance(code, str) and not what and not node_message:
            self._args = (code,)
            self.code, self.what, self.node_message = _parse_error(code)
            super().__init__(code)
            return
        code = _int(code, "code", -0x7FFFFFFF - 1, 0x7FFFFFFF)
        self._args = (code, what, node_message)
        self.code = code
        self.what = what
        self.node_message = node_message
        msg = _strerror(code).decode("utf-8", "replace")
        # The node's words after the code's text, unless they are the
        # same ("no such bucket" once, as the CLI says it).
        if node_message and node_message != msg:
            msg += " (%s)" % node_message
        super().__init__("%s: %s" % (what, msg) if what else msg)

    def __reduce__(self):
        return (type(self), self._args, self.__dict__)


_ERROR_LINE = "strata.Error: "
_texts = None


def _parse_error(text):
    """(code, what, node_message) of an Error's text, as Error.__init__
    formats it: "[what: ]strerror[ (node message)]", taken from the last
    "strata.Error: " line when text is a traceback; (None, text, "") when
    no libstrata error text is in it."""
    global _texts
    if _texts is None:                  # strata_strerror() -> code, once
        _texts = {}
        for code in list(range(-1, -4096, -1)) + \
                list(range(-30000, -30100, -1)):
            t = _strerror(code).decode("utf-8", "replace")
            if t != "unknown error":
                _texts.setdefault(t, code)
    line = text
    for ln in text.splitlines():
        if ln.startswith(_ERROR_LINE):
            line = ln[len(_ERROR_LINE):]
    best = (None, line, "")
    blen = 0
    for t, code in _texts.items():
        if len(t) <= blen:
            continue
        at = line.find(t)
        while at >= 0:
            rest = line[at + len(t):]
            if (at == 0 or line[at - 2:at] == ": ") and \
                    (not rest or rest.startswith(" (") and
                     rest.endswith(")")):
                best = (code, line[:max(at - 2, 0)], rest[2:-1])
                blen = len(t)
                break
            at = line.find(t, at + 1)
    return best


def _check(rc, what=""):
    if rc < 0:
        # Right after the call, on its thread: the node's words, if any.
        raise Error(rc, what, _error_message().decode("utf-8", "replace"))
    return rc


def _b(s, name, none_ok=False):
    """s (str or bytes) as UTF-8 bytes for C, None for None when allowed.
    ctypes would take an int for an address, and C reads a string up to
    its first NUL: both refused here."""
    if s is None and none_ok:
        return None
    if isinstance(s, str):
        try:
            b = s.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError("%s: not encodable as UTF-8 (%s)"
                             % (name, e.reason)) from None
    elif isinstance(s, bytes):
        b = s
    else:
        raise TypeError("%s: str or bytes%s expected, not %s"
                        % (name, " or None" if none_ok else "",
                           type(s).__name__))
    if b"\0" in b:
        raise ValueError("%s: contains a NUL character" % name)
    return b


def _int(v, name, lo, hi):
    """v as an int in lo..hi (the C type it becomes): ctypes would wrap
    -1 or 2**64 + 5 silently."""
    try:
        i = operator.index(v)
    except TypeError:
        raise TypeError("%s: an int expected, not %s"
                        % (name, type(v).__name__)) from None
    if not lo <= i <= hi:
        raise ValueError("%s: %d is out of range (%d to %d)"
                         % (name, i, lo, hi))
    return i


def parse_url(url):
    """"strata://bucket/prefix" -> ("bucket", "prefix")."""
    if not isinstance(url, str):
        raise TypeError("url: str expected, not %s" % type(url).__name__)
    if "\0" in url:
        raise ValueError("url: contains a NUL character")
    if not url.startswith("strata://"):
        raise ValueError("not a strata:// URL: %r" % url)
    rest = url[len("strata://"):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError("no bucket in %r" % url)
    return bucket, prefix


# ---- Client -----------------------------------------------------------------


class Client:
    """One connection pool to one node (libstrata's strata_client).

    Settings not given (None, or 0 for pool_size and timeout_ms) come from
    STRATA_ENDPOINT, STRATA_ACCESS_KEY, STRATA_SECRET_KEY, STRATA_CA and the
    strata config file, as for the CLI, else libstrata's defaults (4
    connections, 30000 ms).  ca is a path (str, bytes or os.PathLike);
    pool_size and timeout_ms are C unsigned ints.
    A Client must not be used across fork(): make one per process.
    It may be used from several threads at once.  Ctrl-C during a call on
    the main thread raises KeyboardInterrupt at once, even when the node
    hangs (a put or delete cut short may have been carried out or not);
    with a SIGINT handler of the program's own that returns, the call is
    made again once it has run.
    """

    def __init__(self, endpoint=None, access_key=None, secret_key=None,
                 ca=None, pool_size=0, timeout_ms=0):
        self._c = None
        self._pid = os.getpid()
        if isinstance(ca, os.PathLike):
            ca = os.fspath(ca)
        keep = [_b(x, n, none_ok=True) for x, n in
                ((endpoint, "endpoint"), (access_key, "access_key"),
                 (secret_key, "secret_key"), (ca, "ca"))]
        cfg = _Config(*[ctypes.cast(ctypes.c_char_p(k), _c_p) if k else None
                        for k in keep],
                      _int(pool_size, "pool_size", 0, _UINT_MAX),
                      _int(timeout_ms, "timeout_ms", 0, _UINT_MAX))
        err = ctypes.create_string_buffer(256)
        rc = _config_from_env(ctypes.byref(cfg), err, len(err))
        if rc:
            raise Error(rc, err.value.decode() or "configuration")
        try:
            if not cfg.endpoint:
                raise Error(-30014, "no endpoint (set STRATA_ENDPOINT)")
            _hook()
            h = _c_p()
            _check(_call(_client_new, ctypes.byref(cfg), ctypes.byref(h)),
                   "connecting")
            self._c = h
        finally:
            _config_release(ctypes.byref(cfg))

    def close(self):
        # A client inherited through fork() shares its TLS sessions with
        # the parent: closing them here would break the parent's.
        if self._c and self._pid == os.getpid():
            _client_free(self._c)
        self._c = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def handle(self):
        if not self._c:
            raise ValueError("client is closed")
        if self._pid != os.getpid():
            raise RuntimeError("strata.Client used after fork(); "
                               "make one per process")
        return self._c

    def create_bucket(self, bucket, exist_ok=False):
        rc = _call(_bucket_create, self.handle, _b(bucket, "bucket"))
        if rc == EBUCKETEXISTS and exist_ok:
            return
        _check(rc, bucket)

    def delete_bucket(self, bucket):
        _check(_call(_bucket_delete, self.handle, _b(bucket, "bucket")),
               bucket)

    def put(self, bucket, key, data, content_type=None):
        """Put an object from bytes-like data; returns its size."""
        b, k = _b(bucket, "bucket"), _b(key, "key")
        opts = _PutOpts(content_type=_b(content_type, "content_type",
                                        none_ok=True))
        try:
            mv = memoryview(data).cast("B")
        except TypeError:
            raise TypeError("data: a bytes-like object expected, not %s"
                            % type(data).__name__) from None
        if isinstance(data, bytes):     # no copy: c_char_p points into it
            buf = ctypes.c_char_p(data)
            addr = ctypes.cast(buf, _c_p)
        elif mv.readonly:
            buf = ctypes.c_char_p(bytes(mv))
            addr = ctypes.cast(buf, _c_p)
        else:
            arr = (ctypes.c_char * len(mv)).from_buffer(mv)
            addr = ctypes.cast(arr, _c_p)
        _check(_call(_put_buf, self.handle, b, k, ctypes.byref(opts), addr,
                     len(mv), None),
               "%s/%s" % (bucket, key))
        return len(mv)

    def get(self, bucket, key, offset=0, length=None):
        """An object's bytes, or length of them from offset (both C
        uint64_t): length None (the default) reads to the end; a range
        running past the end is cut there; an offset past the end is an
        Error (STRATA_ERANGE)."""
        b, k = _b(bucket, "bucket"), _b(key, "key")
        offset = _int(offset, "offset", 0, _U64_MAX)
        length = _U64_MAX if length is None else \
            _int(length, "length", 0, _U64_MAX)
        # Into one buffer libstrata allocates, not through a Python
        # callback: Ctrl-C's handler, run on entering one, raised there
        # and was printed and dropped by ctypes, and the callback's
        # undefined return value went on (a chunk silently missing) or
        # stopped the get with a nonsense error code.
        # The buffer is freed in a finally that the call is inside of: a
        # KeyboardInterrupt raised as soon as it returns (the SIGINT came
        # while it ran) leaks nothing.  (Not in a __del__: the handler
        # would run on entering it, and its exception be dropped.)
        h, res, p = self.handle, _GetResult(), _c_p()
        try:
            rc = _get_alloc(h, b, k, offset, length, ctypes.byref(p),
                            ctypes.byref(res))
            while rc == _EINTR:
                _interrupted()
                rc = _get_alloc(h, b, k, offset, length, ctypes.byref(p),
                                ctypes.byref(res))
            _check(rc, "%s/%s" % (bucket, key))
            return ctypes.string_at(p, res.length) if res.length else b""
        finally:
            _free(p)

    def stat(self, bucket, key):
        p = ctypes.POINTER(_Stat)()
        _check(_call(_stat, self.handle, _b(bucket, "bucket"),
                     _b(key, "key"), ctypes.byref(p)),
               "%s/%s" % (bucket, key))
        try:
            s = p.contents
            kv = lambda arr, n: {arr[i].name.decode(): arr[i].value.decode()
                                 for i in range(n)}
            return {
                "size": s.size, "etag": s.etag_hex.decode(),
                "version": s.version, "writer": s.writer,
                "mtime_ms": s.mtime_ms,
                "content_type": s.content_type.decode()
                if s.content_type else None,
                "meta": kv(s.meta, s.nmeta), "tags": kv(s.tags, s.ntags),
                "chunks": [(s.chunks[i].tier, s.chunks[i].raw_len,
                            s.chunks[i].stored_len)
                           for i in range(s.nchunks)],
            }
        finally:
            _stat_free(p)

    def delete(self, bucket, key, missing_ok=False):
        rc = _call(_delete, self.handle, _b(bucket, "bucket"), _b(key, "key"),
                   None)
        if rc == ENOOBJECT and missing_ok:
            return
        _check(rc, "%s/%s" % (bucket, key))

    def list(self, bucket, prefix=None, delimiter=None):
        """Yield dicts: {"key", "size", "mtime_ms"} or {"prefix"}."""
        b = _b(bucket, "bucket")        # checked now, not at the first next()
        opts = _ListOpts(prefix=_b(prefix, "prefix", none_ok=True),
                         delimiter=_b(delimiter, "delimiter", none_ok=True))
        return self._list(bucket, b, opts)

    def _list(self, bucket, b, opts):
        it = _c_p()
        _check(_call(_list_new, self.handle, b, ctypes.byref(opts),
                     ctypes.byref(it)), bucket)
        try:
            e = ctypes.POINTER(_ListEntry)()
            while _check(_call(_list_next, it, ctypes.byref(e)),
                         bucket) == 1:
                c = e.contents
                if c.key is not None:
                    yield {"key": c.key.decode(), "size": c.size,
                           "mtime_ms": c.mtime_ms}
                else:
                    yield {"prefix": c.prefix.decode()}
        finally:
            _list_free(it)

    def hint(self, bucket, keys):
        """Ask the node to prestage keys (a list or other iterable of
        keys, not one key) in that order."""
        b = _b(bucket, "bucket")
        if isinstance(keys, (str, bytes, bytearray, memoryview)):
            raise TypeError("keys: a list of keys expected, not one %s"
                            % type(keys).__name__)
        try:
            keys = list(keys)
        except TypeError:
            raise TypeError("keys: a list of keys expected, not %s"
                            % type(keys).__name__) from None
        arr = (_char_p * len(keys))(*[_b(k, "keys[%d]" % i)
                                      for i, k in enumerate(keys)])
        _check(_call(_hint, self.handle, b, arr, len(keys)), "hint")


# ---- Plans ------------------------------------------------------------------


def _uneven(uneven):
    if not isinstance(uneven, str) or uneven not in UNEVEN:
        raise ValueError("uneven: one of %s, not %r"
                         % (", ".join(UNEVEN), uneven))
    return UNEVEN[uneven]


def _epoch_opts(seed, epoch, rank, world_size, worker, num_workers, shuffle,
                uneven):
    # A negative seed is taken modulo 2**64 (hash() values are negative
    # half the time); everything else must fit its C field.
    seed = _int(seed, "seed", -(1 << 63), _U64_MAX) & _U64_MAX
    world_size = _int(world_size, "world_size", 1, _UINT_MAX)
    rank = _int(rank, "rank", 0, world_size - 1)
    num_workers = _int(num_workers, "num_workers", 1, _UINT_MAX)
    worker = _int(worker, "worker", 0, num_workers - 1)
    return _EpochOpts(seed=seed, epoch=_int(epoch, "epoch", 0, _U64_MAX),
                      rank=rank, world_size=world_size, worker=worker,
                      num_workers=num_workers, no_shuffle=not shuffle,
                      uneven=_uneven(uneven))


def _check_drop(nshards, world_size, uneven):
    # Every rank computes the same (nshards, world_size), so every rank
    # raises here together, rather than all of them "training" on nothing
    # (a warning from a DataLoader worker is easily lost).
    if uneven == "drop" and 0 < nshards < world_size:
        raise ValueError(
            'uneven="drop": %d shard(s) for world_size %d leaves every '
            "rank an empty share (drop keeps %d // %d = 0 per rank); use "
            'uneven="share" or "pad", fewer ranks or more shards'
            % (nshards, world_size, nshards, world_size))


def plan(nshards, seed=0, epoch=0, rank=0, world_size=1, worker=0,
         num_workers=1, shuffle=True, uneven="share"):
    """The shard indices one participant reads in one epoch.  seed is an
    int from -2**63 to 2**64 - 1 (negative ones taken modulo 2**64);
    0 <= rank < world_size, 0 <= worker < num_workers.  uneven="drop"
    with fewer shards than ranks (every share empty) is a ValueError."""
    nshards = _int(nshards, "nshards", 0, _SIZE_MAX)
    o = _epoch_opts(seed, epoch, rank, world_size, worker, num_workers,
                    shuffle, uneven)
    _check_drop(nshards, o.world_size, uneven)
    n = _size()
    rc = _ds_plan(nshards, ctypes.byref(o), None, 0, ctypes.byref(n))
    if rc not in (0, -105):             # -ENOBUFS: the count is set
        _check(rc, "plan")
    arr = (_size * max(n.value, 1))()
    _check(_ds_plan(nshards, ctypes.byref(o), arr, n.value, ctypes.byref(n)),
           "plan")
    return list(arr[:n.value])


# ---- WebDataset samples -----------------------------------------------------


def webdataset_samples(data, url=None):
    """Group a tar shard's members into WebDataset samples: dicts of
    extension -> bytes with "__key__" (the member path up to the first dot
    of its file name) and "__url__".  Members of one sample must be
    consecutive, as WebDataset writes them.  A damaged archive, or a
    sample with two members of one extension (or one named KEY.__key__ or
    KEY.__url__), raises ValueError("URL: tar: ..."), naming url when
    given."""
    return _samples(_tar.members(data), url)


def webdataset_samples_pieces(pieces, url=None):
    """As webdataset_samples(), over a tar shard that arrives as
    consecutive pieces (bytes-like; each may stop being valid once the next
    is asked for): samples come as soon as their bytes have."""
    return _samples(_tar.members_stream(pieces), url)


def _named(members, url):
    """members, with url in front of the tar reader's errors."""
    try:
        yield from members
    except ValueError as e:
        if url is None:
            raise
        raise ValueError("%s: %s" % (url, e)) from None


def _samples(members, url):
    cur = None
    for name, payload in _named(members, url):
        d, _, base = name.rpartition("/")
        stem, dot, ext = base.partition(".")
        if not dot:
            continue                    # no extension: not a sample field
        key = (d + "/" + stem) if d else stem
        if cur is None or cur["__key__"] != key:
            if cur is not None:
                yield cur
            cur = {"__key__": key, "__url__": url}
        if ext in cur:
            # A second KEY.EXT, or KEY.__key__ / KEY.__url__: as
            # WebDataset does, refused rather than one silently replacing
            # the other (or the sample's key).
            raise ValueError("%star: member %r: sample %r already has a "
                             "%r field" % ("%s: " % url if url else "",
                                           name, key, ext))
        cur[ext] = payload
    if cur is not None:
        yield cur


# ---- Dataset ----------------------------------------------------------------

try:
    import torch.utils.data as _tud
    _Base = _tud.IterableDataset
except Exception:                       # no torch: a plain iterable
    _tud = None
    _Base = object


def _dist_rank_world():
    """(rank, world size) of torch.distributed when it is initialized in
    this process, else None."""
    try:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except Exception:
        pass
    return None


# Datasets of this process, readied right before each fork() for the
# workers it may start (Dataset._starting): a DataLoader worker forked from
# a rank whose Dataset was made before init_process_group still reads that
# rank's share, and sees the epoch of the process that started it.
_datasets = weakref.WeakSet()


def _before_fork():
    try:
        # torch.distributed is never imported here, only asked if it is.
        rw = _dist_rank_world() if "torch.distributed" in sys.modules \
            else None
        for d in list(_datasets):
            d._starting(rw)
    except Exception:                   # never in the way of a fork
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork)


def _env_int(name, default):
    v = os.environ.get(name)
    if v is None:
        return default
    try:
        return int(v)
    except ValueError:
        raise ValueError("%s=%r in the environment: not an integer"
                         % (name, v)) from None


def _rank_world(seen=None):
    """torch.distributed's rank and world size, else seen (what the main
    process's torch.distributed said: DataLoader workers do not have it
    initialized), else RANK / WORLD_SIZE."""
    rw = _dist_rank_world() or seen
    if rw is not None:
        return rw
    rank = _env_int("RANK", 0)
    world = _env_int("WORLD_SIZE", 1)
    if world < 1 or not 0 <= rank < world:
        raise ValueError("RANK=%d WORLD_SIZE=%d: need 0 <= RANK < "
                         "WORLD_SIZE" % (rank, world))
    return rank, world


def _shared_u64(v):
    """A uint64 in shared memory, seen by the processes started after it
    (forked, or spawned with it pickled), or None where there is none."""
    try:
        return multiprocessing.sharedctypes.RawValue(ctypes.c_uint64, v)
    except Exception:
        return None


def _in_worker():
    return _tud is not None and _tud.get_worker_info() is not None


def _worker():
    if _tud is not None:
        info = _tud.get_worker_info()
        if info is not None:
            return info.id, info.num_workers
    return 0, 1


class Dataset(_Base):
    """The shards under strata://bucket/prefix, one epoch at a time.

    samples="shards" yields (key, bytes) per shard; samples="webdataset"
    yields each tar shard's samples as dicts (see webdataset_samples; a
    damaged shard raises ValueError("strata://bucket/key: tar: ...")).
    Rank and world size come from torch.distributed when it is initialized,
    else from RANK / WORLD_SIZE (rank= and world_size= override both);
    DataLoader workers split the rank's share among themselves.
    torch.distributed is not initialized in DataLoader workers: they take
    the rank and world size it gave in the process that started them, as
    it was when they were started (or, failing that, when the Dataset was
    constructed or set_epoch() last called there).  Call
    set_epoch(n) before each epoch (as with DistributedSampler), or pass
    epoch= once: the order is the same every epoch the epoch is not
    changed.  The epoch is kept in shared memory, so set_epoch() in the
    main process reaches DataLoader workers however they were started,
    persistent_workers=True included (other processes, such as ranks
    started by mp.spawn with the Dataset, and copies made with pickle or
    copy, have their own).
    uneven="share" (every shard exactly once; ranks may differ by one),
    "drop" or "pad" (equal counts per rank); "drop" with fewer shards than
    ranks, which would leave every rank nothing, is a ValueError.
    suffix (e.g. ".tar") keeps only the keys that end with it, so that
    other objects under the prefix (an index, a README) are not taken for
    shards; None or "" takes every object.
    A shard that cannot be read raises Error naming it: code
    strata.ENOOBJECT when it was deleted, -errno.ESTALE when it was
    overwritten after the listing (never bytes of another version).

    The listing (keys and sizes) is made once, at construction, in the
    constructing process.  DataLoader workers started by fork inherit it;
    workers started by spawn or forkserver get it pickled, list the prefix
    again (libstrata opens a dataset only by listing) and raise Error
    (code -ESTALE) if that listing differs from the constructed one (keys,
    sizes or etags: a shard rewritten at the same size counts),
    rather than read another set of shards: construct the Dataset again
    after the shards change.  Each worker opens its own connections.
    prefetch / prefetch_bytes bound the shards (pieces) fetched ahead per
    worker (0: 2 pieces, 256 MiB); retries / backoff_ms how long a
    restarting node is waited for (0: 10 retries from 100 ms, about 13 s
    when nothing answers; NO_RETRY: none), each attempt also bounded by
    the client's timeout_ms; the Error after the last one says how many.
    piece_size (bytes; default WEBDATASET_PIECE, 64 MiB, for
    samples="webdataset", else 0) reads larger shards as byte ranges of
    that size, their tars parsed as the pieces arrive, so a worker holds
    pieces rather than whole shards (and each worker's first shard of an
    epoch comes in growing pieces from 1 MiB, so its first samples come
    before the whole shard is in); 0 reads every shard whole (the only
    value samples="shards" takes: it yields whole shards).  seed is
    an int from -2**63 to 2**64 - 1 (negative ones, as hash() gives, taken
    modulo 2**64); the other numbers must fit their C fields (ValueError
    naming them otherwise).
    """

    def __init__(self, url, shuffle=True, seed=0, epoch=0,
                 samples="shards", rank=None, world_size=None,
                 uneven="share", prefetch=2, prefetch_bytes=0, retries=0,
                 backoff_ms=0, client_args=None, piece_size=None,
                 suffix=None):
        if samples not in ("shards", "webdataset"):
            raise ValueError('samples: "shards" or "webdataset", not %r'
                             % (samples,))
        _uneven(uneven)
        self.url = url
        self.bucket, self.prefix = parse_url(url)
        if suffix is not None and not isinstance(suffix, str):
            raise TypeError("suffix: a str or None, not %s"
                            % type(suffix).__name__)
        self.suffix = suffix or None
        if self.suffix is not None:
            _b(self.suffix, "suffix")
        self.shuffle = shuffle
        _int(seed, "seed", -(1 << 63), _U64_MAX)
        self.seed = seed
        self._epoch = _int(epoch, "epoch", 0, _U64_MAX)
        self._epoch_shared = _shared_u64(self._epoch)
        self._epoch_pid = os.getpid()
        self.samples = samples
        if world_size is not None:
            world_size = _int(world_size, "world_size", 1, _UINT_MAX)
        if rank is not None:
            rank = _int(rank, "rank", 0, (world_size or _UINT_MAX + 1) - 1)
        self.rank = rank
        self.world_size = world_size
        self.uneven = uneven
        self.prefetch = _int(prefetch, "prefetch", 0, _UINT_MAX)
        self.prefetch_bytes = _int(prefetch_bytes, "prefetch_bytes", 0,
                                   _U64_MAX)
        self.retries = _int(retries, "retries", 0, _UINT_MAX)
        self.backoff_ms = _int(backoff_ms, "backoff_ms", 0, _UINT_MAX)
        if piece_size is None:
            piece_size = WEBDATASET_PIECE if samples == "webdataset" else 0
        self.piece_size = _int(piece_size, "piece_size", 0, _U64_MAX)
        if samples == "shards" and self.piece_size:
            # Whole shards are handed over: pieces would bound nothing.
            raise ValueError('piece_size: %d given, but samples="shards" '
                             "yields whole shards; pieces are for "
                             'samples="webdataset" (or use 0)'
                             % self.piece_size)
        self.client_args = dict(client_args or {})
        self.last_stats = None
        self._client = None
        self._ds = None
        self._keys = self._sizes = self._etags = None
        self._dist = _dist_rank_world()
        _datasets.add(self)
        self._open()
        if world_size is not None:
            _check_drop(len(self._keys), world_size, uneven)

    def _get_client(self):
        if self._client is None or self._client._pid != os.getpid():
            args = dict(self.client_args)
            args.setdefault("pool_size", max(self.prefetch, 1) + 1)
            self._client = Client(**args)
        return self._client

    def _open(self):
        h = _c_p()
        _check(_call(
            _ds_open_suffix, self._get_client().handle,
            _b(self.bucket, "url"),
            _b(self.prefix, "url"),
            _b(self.suffix, "suffix") if self.suffix else None,
            ctypes.byref(h)), self.url)
        keys, sizes, etags, size = [], [], [], _u64()
        for i in range(_ds_count(h)):
            keys.append(_ds_key(h, i, ctypes.byref(size)).decode())
            sizes.append(size.value)
            etags.append(ctypes.string_at(_ds_etag(h, i), 32))
        now = (keys, sizes, b"".join(etags))   # one object, not one each
        if self._keys is not None and now != (self._keys, self._sizes,
                                              self._etags):
            _ds_free(h)
            raise Error(-errno.ESTALE, "%s: the shards changed since the "
                        "Dataset was constructed (%s); this process (a "
                        "spawned DataLoader worker?) had to list them "
                        "again and will not read another set: construct "
                        "the Dataset again" % (self.url, _listing_diff(
                            (self._keys, self._sizes, self._etags), now)))
        self._ds = h
        self._ds_pid = os.getpid()
        self._keys, self._sizes, self._etags = now

    def __getstate__(self):
        # Pickled for spawned workers: the C handles stay behind; the
        # listing goes along, to check the one made there against.  The
        # shared epoch goes to processes being started (DataLoader
        # workers); a copy pickled otherwise keeps its own.
        spawning = multiprocessing.context.get_spawning_popen() is not None
        if spawning:
            self._starting(_dist_rank_world())
        s = dict(self.__dict__, _client=None, _ds=None)
        if not spawning:
            s["_epoch_shared"] = None
        return s

    def _starting(self, rw):
        """This process is about to start others (fork, or spawn with
        self pickled): rw is torch.distributed's (rank, world size) here,
        or None.  A process shares its own epoch with its DataLoader
        workers, never the one it got from its own parent (a rank started
        by mp.spawn keeps its own); a copy made with copy or pickle gets
        one here too."""
        if rw is not None:
            self._dist = rw
        if (self._epoch_shared is None or self._epoch_pid != os.getpid()) \
                and not _in_worker():
            self._epoch_shared = _shared_u64(self._epoch)
            self._epoch_pid = os.getpid()

    def __setstate__(self, s):
        self.__dict__.update(s)
        _datasets.add(self)

    def __del__(self):
        try:
            if self._ds and self._ds_pid == os.getpid():
                _ds_free(self._ds)
                self._ds = None
        except Exception:
            pass

    @property
    def keys(self):
        """The shard keys, sorted, as listed."""
        return list(self._keys)

    # No __len__: DataLoader would take it for the number of items, which
    # for samples="webdataset" is not known before reading.
    @property
    def num_shards(self):
        """Shards in the dataset (all ranks together)."""
        return len(self._keys)

    @property
    def epoch(self):
        """The epoch the next iteration reads (set_epoch()); in a
        DataLoader worker, the one its process last set."""
        if self._epoch_shared is not None and \
                (self._epoch_pid == os.getpid() or _in_worker()):
            return self._epoch_shared.value
        return self._epoch

    @epoch.setter
    def epoch(self, epoch):
        self._epoch = _int(epoch, "epoch", 0, _U64_MAX)
        if self._epoch_shared is not None and \
                self._epoch_pid == os.getpid():
            self._epoch_shared.value = self._epoch

    def set_epoch(self, epoch):
        self.epoch = epoch
        self._dist = _dist_rank_world() or self._dist

    def _participant(self):
        rank, world = _rank_world(self._dist)
        if self.rank is not None:
            rank = self.rank
        if self.world_size is not None:
            world = self.world_size
        if not 0 <= rank < world:
            raise ValueError("rank: %d is not below world_size %d"
                             % (rank, world))
        _check_drop(len(self._keys), world, self.uneven)
        worker, workers = _worker()
        return rank, world, worker, workers

    def plan(self):
        """The shard keys this process reads this epoch, in order."""
        rank, world, worker, workers = self._participant()
        return [self._keys[i] for i in
                plan(len(self._keys), self.seed, self.epoch, rank, world,
                     worker, workers, self.shuffle, self.uneven)]

    def shards(self):
        """Yield (key, memoryview) per shard of this process's share; the
        view is valid until the next item is asked for."""
        for key, mv, _last in self._pieces(0):
            yield key, mv

    def _pieces(self, piece_size):
        """Yield (key, memoryview, last) per piece of this process's share:
        whole shards, or consecutive byte ranges of piece_size bytes, a
        shard's pieces in order; a view is valid until the next item is
        asked for."""
        if self._ds is None:
            self._open()
        rank, world, worker, workers = self._participant()
        o = _epoch_opts(self.seed, self.epoch, rank, world, worker, workers,
                        self.shuffle, self.uneven)
        o.prefetch = _int(self.prefetch, "prefetch", 0, _UINT_MAX)
        o.prefetch_bytes = _int(self.prefetch_bytes, "prefetch_bytes", 0,
                                _U64_MAX)
        o.piece_size = _int(piece_size, "piece_size", 0, _U64_MAX)
        o.retries = _int(self.retries, "retries", 0, _UINT_MAX)
        o.backoff_ms = _int(self.backoff_ms, "backoff_ms", 0, _UINT_MAX)
        c = self._get_client()
        e = _c_p()
        _check(_epoch_new(c.handle, self._ds, ctypes.byref(o),
                          ctypes.byref(e)), self.url)
        sh = _Shard()
        try:
            while True:
                # In short waits: signal handlers (Ctrl-C's
                # KeyboardInterrupt) run between them, not only once a
                # hung node's retries have run out.
                while not _epoch_wait(e, 100):
                    pass
                rc = _epoch_next(e, ctypes.byref(sh))
                if rc == 0:
                    break
                key = sh.key.decode() if sh.key else "?"
                what = "strata://%s/%s" % (self.bucket, key)
                if rc == -errno.ESTALE:     # strerror: "Stale file handle"
                    what += (": changed since the Dataset listed it "
                             "(construct the Dataset again)")
                elif rc < 0 and sh.retries:
                    what += " (given up after %d retries in %.1f s)" % (
                        sh.retries, sh.fetch_ns / 1e9)
                _check(rc, what)
                try:
                    if sh.length:
                        mv = memoryview((ctypes.c_char * sh.length)
                                        .from_address(sh.data)).cast("B")
                    else:
                        mv = memoryview(b"")
                    yield key, mv, bool(sh.last)
                finally:
                    mv = None
                    _epoch_buf_free(e, sh.data, sh.length)
        finally:
            st = _EpochStats()
            _epoch_stats(e, ctypes.byref(st))
            self.last_stats = {n: getattr(st, n) for n, _ in st._fields_}
            # Prompt on a hung node too (it cuts the fetches short), so
            # that Ctrl-C's KeyboardInterrupt is not held up here.
            _epoch_free(e)

    def __iter__(self):
        if self.samples == "shards":
            for key, mv in self.shards():
                yield key, bytes(mv)
            return
        it = self._pieces(self.piece_size)
        for key, mv, last in it:
            shard = _ShardPieces(it, mv, last)
            try:
                yield from webdataset_samples_pieces(
                    shard, "strata://%s/%s" % (self.bucket, key))
            except ValueError as e:
                if self.suffix is None and "not a tar archive?" in str(e):
                    raise ValueError(
                        '%s; an object that is not a shard under the '
                        'prefix? Dataset(..., suffix=".tar") takes only '
                        "the keys ending in .tar" % e) from None
                raise
            shard.drain()


def _listing_diff(then, now):
    """What differs between two listings (keys, sizes, etags), for
    people."""
    def by_key(keys, sizes, etags):     # etags: 32 bytes per key
        return {k: (s, etags[32 * i:32 * i + 32])
                for i, (k, s) in enumerate(zip(keys, sizes))}
    was, now = by_key(*then), by_key(*now)
    both = set(was) & set(now)
    added = sorted(set(now) - set(was))
    gone = sorted(set(was) - set(now))
    resized = sorted(k for k in both if was[k][0] != now[k][0])
    rewritten = sorted(k for k in both if was[k][0] == now[k][0] and
                       was[k][1] != now[k][1])
    say = ["%d shards then, %d now" % (len(was), len(now))]
    for what, ks in (("new", added), ("gone", gone), ("resized", resized),
                     ("rewritten", rewritten)):
        if ks:
            say.append("%s: %s%s" % (what, ", ".join(ks[:3]),
                                     ", ..." if len(ks) > 3 else ""))
    return "; ".join(say)


class _ShardPieces:
    """One shard's pieces out of Dataset._pieces(): the first, then more
    until the one marked last."""

    def __init__(self, it, first, last):
        self._it, self._first, self._last = it, first, last

    def __iter__(self):
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        while not self._last:
            _key, mv, self._last = next(self._it)
            yield mv

    def drain(self):
        """Skip what the tar reader left (past its end-of-archive)."""
        self._first = None
        for _mv in self:
            pass
