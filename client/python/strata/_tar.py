# SPDX-License-Identifier: Apache-2.0
"""A small tar reader over an in-memory buffer, for WebDataset shards.

tarfile would need a file object (io.BytesIO copies a memoryview whole);
this walks the 512-byte headers in place and copies out only the members'
bytes.  It reads ustar, GNU long names ('L') and pax path records ('x'),
checks every header's checksum, and skips what is not a regular file.  A
damaged or truncated archive raises ValueError, never yields garbage.
"""

_BLOCK = 512
_ZERO = bytes(_BLOCK)


def _octal(field, what):
    s = bytes(field).rstrip(b"\0 ").lstrip(b" ")
    if not s:
        return 0
    if field[0] & 0x80:                 # GNU base-256 for large sizes
        v = field[0] & 0x7F
        for b in bytes(field[1:]):
            v = (v << 8) | b
        return v
    try:
        return int(s, 8)
    except ValueError:
        raise ValueError("tar: bad %s field %r" % (what, s)) from None


def _cstr(field):
    return bytes(field).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_path(data, at):
    """The path record of a pax extended header (its header at byte at),
    or None.  Records are "LENGTH KEY=VALUE\\n", LENGTH counting the whole
    record in decimal."""
    i = 0
    path = None
    while i < len(data):
        if not any(data[i:]):           # NUL padding after the last record
            break
        sp = data.find(b" ", i, i + 21)
        if sp < 0 or not data[i:sp].isdigit():
            raise ValueError("tar: bad pax record at byte %d of the pax "
                             "header at byte %d: no decimal length before %r"
                             % (i, at, bytes(data[i:i + 20])))
        n = int(data[i:sp])
        if n < sp + 3 - i or i + n > len(data) or data[i + n - 1] != 0x0A:
            raise ValueError("tar: bad pax record at byte %d of the pax "
                             "header at byte %d: length %d does not end a "
                             "record in %d bytes" % (i, at, n, len(data) - i))
        k, eq, v = data[sp + 1:i + n - 1].partition(b"=")
        if not eq:
            raise ValueError("tar: bad pax record at byte %d of the pax "
                             "header at byte %d: no '=' in %r"
                             % (i, at, bytes(data[sp + 1:i + n - 1][:40])))
        if k == b"path":
            path = v.decode("utf-8", "surrogateescape")
        i += n
    return path


def members(buf):
    """Yield (name, bytes) for each regular file of the tar in buf."""
    return members_stream((buf,))


def members_stream(pieces):
    """As members(), over a tar that arrives as consecutive pieces (any
    sizes, e.g. the byte ranges libstrata's epoch reader delivers; a piece
    may stop being valid once the next is asked for), so the first members
    come before the whole archive has.  Members within one piece are sliced
    from it as members() does; one that spans pieces is put together."""
    it = iter(pieces)
    mv = memoryview(b"")
    n = off = pos = 0                   # piece, its length, where we are,
    long_name = None                    # and its offset in the stream

    def more():
        nonlocal mv, n, off, pos
        for p in it:
            m = memoryview(p).cast("B")
            if len(m):
                pos += n
                mv, n, off = m, len(m), 0
                return True
        return False

    def take(k):                        # k bytes across pieces (or fewer)
        nonlocal off
        out = bytearray(mv[off:n])
        off = n
        while len(out) < k and more():
            need = min(k - len(out), n)
            out += mv[:need]
            off = need
        return bytes(out)

    def skip(k):
        nonlocal off
        while off + k > n:
            k -= n - off
            off = n
            if not more():
                return False
        off += k
        return True

    while True:
        at = pos + off
        if off + _BLOCK <= n:
            h = bytes(mv[off:off + _BLOCK])
            off += _BLOCK
        else:
            h = take(_BLOCK)
            if len(h) < _BLOCK:
                rest = any(h) or any(mv[off:n])
                while not rest and more():
                    rest = any(mv)
                    off = n
                if rest:
                    raise ValueError("tar: truncated header at byte %d" % at)
                return
        if h == _ZERO:                  # end-of-archive blocks
            return
        try:
            want = _octal(h[148:156], "checksum")
        except ValueError:              # not a number: as bad as a wrong one
            want = -1
        got = sum(h) - sum(h[148:156]) + 8 * 32
        if want != got:
            raise ValueError("tar: header checksum mismatch at byte %d%s"
                             % (at, " (not a tar archive?)" if at == 0
                                else ""))
        size = _octal(h[124:136], "size")
        kind = h[156:157]
        name = _cstr(h[0:100])
        if h[257:262] == b"ustar" and h[345]:
            name = _cstr(h[345:500]) + "/" + name
        pad = (size + _BLOCK - 1) // _BLOCK * _BLOCK - size
        keep = kind in (b"L", b"x", b"0", b"\0", b"7")
        if keep and off + size <= n:
            data = bytes(mv[off:off + size])
            off += size
        elif keep:
            data = take(size)
            if len(data) < size:
                raise ValueError("tar: member %r runs past the end" % name)
        elif not skip(size):
            raise ValueError("tar: member %r runs past the end" % name)
        if off + pad <= n:
            off += pad
        else:
            skip(pad)                   # an archive may end in padding
        if kind == b"L":
            long_name = _cstr(data)
            continue
        if kind == b"x":
            p = _pax_path(data, at)
            if p is not None:
                long_name = p
            continue
        if long_name is not None:
            name, long_name = long_name, None
        if keep:
            yield name, data
