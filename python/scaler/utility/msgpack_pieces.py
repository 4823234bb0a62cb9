"""msgpack headers written by hand, for frames joined from pre-encoded pieces.

The client's Task frames and the processor's results are built from bytes encoded once plus a few
headers; these give the headers exactly as ``msgpack.Packer(use_bin_type=True)`` writes them.
"""

BIN8 = [b"\xc4" + bytes((n,)) for n in range(256)]  # bin 8 headers, by length
FIXARRAY = [bytes((0x90 | n,)) for n in range(16)]


def bin_header(n: int) -> bytes:
    """The msgpack bin header for n bytes."""
    if n < 256:
        return BIN8[n]
    if n < 65536:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


def array_header(n: int) -> bytes:
    """The msgpack array header for n elements."""
    if n < 16:
        return FIXARRAY[n]
    if n < 65536:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")
