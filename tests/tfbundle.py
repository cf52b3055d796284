"""A test-side writer of TensorFlow V2 checkpoints (tensor bundles), for round trips through `mtssl_nb.tfcheckpoint`.

Written from the format as `nbs/07_tfcheckpoint` documents it, with the knobs TensorFlow's own writer
fixes: a small `block_size` and `restart_interval` give tables of several data blocks and many restart
points, which a checkpoint of a few tensors from TensorFlow never has.
"""
from pathlib import Path

import google_crc32c
import numpy as np

MAGIC = 0xDB4775248B80FB57
DTYPE_ENUM = {"float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int16": 5, "int8": 6, "complex64": 8, "int64": 9,
              "bool": 10, "uint16": 17, "complex128": 18, "float16": 19, "uint32": 22, "uint64": 23}


def mask(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n: return bytes(out)


def field(number, value):
    "One protobuf field: an int as a varint, bytes as a length-delimited field."
    if isinstance(value, bytes): return varint(number << 3 | 2) + varint(len(value)) + value
    return varint(number << 3) + varint(value)


def fixed32(number, value):
    return varint(number << 3 | 5) + value.to_bytes(4, "little")


def block(entries, restart_interval):
    "A table block: prefix-compressed entries, restart points every `restart_interval` entries, their count."
    out, restarts, prev = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval == 0: restarts.append(len(out))
        else:
            while shared < min(len(key), len(prev)) and key[shared] == prev[shared]: shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        prev = key
    for r in restarts or [0]: out += r.to_bytes(4, "little")
    return bytes(out + len(restarts or [0]).to_bytes(4, "little"))


def write_table(path, items, block_size=4096, restart_interval=16):
    "Write sorted `(key, value)` items as a table file; returns the number of data blocks."
    data, index, pending = bytearray(), [], []

    def flush(entries):
        contents = block(entries, restart_interval)
        handle = varint(len(data)) + varint(len(contents))
        data.extend(contents + b"\0" + mask(google_crc32c.value(contents + b"\0")).to_bytes(4, "little"))
        return handle

    for key, value in items:
        pending.append((key, value))
        if sum(len(k) + len(v) for k, v in pending) >= block_size:
            index.append((pending[-1][0], flush(pending))); pending = []
    if pending: index.append((pending[-1][0], flush(pending)))
    meta = flush([])
    idx = flush(index)
    footer = (meta + idx).ljust(40, b"\0") + MAGIC.to_bytes(8, "little")
    Path(path).write_bytes(bytes(data) + footer)
    return len(index)


def tensor_bytes(a):
    "The stored bytes of an array and their masked checksum (strings as TensorFlow writes them)."
    if a.dtype == object:
        items = [bytes(x) for x in a.reshape(-1)]
        crc = google_crc32c.value(b"".join(len(x).to_bytes(4, "little") for x in items))
        stored = mask(crc).to_bytes(4, "little")
        crc = google_crc32c.extend(crc, stored + b"".join(items))
        return b"".join(varint(len(x)) for x in items) + stored + b"".join(items), mask(crc)
    raw = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
    return raw, mask(google_crc32c.value(raw))


def write_bundle(prefix, tensors, num_shards=2, block_size=4096, restart_interval=16):
    "Write `{name: array}` as PREFIX.index + PREFIX.data-*; tensors are dealt to the shards in turn. Returns the data-block count."
    prefix = Path(prefix)
    shards = [bytearray() for _ in range(num_shards)]
    items = [(b"", field(1, num_shards) + field(2, 0) + field(3, field(1, 1)))]
    for i, name in enumerate(sorted(tensors)):
        a = np.asarray(tensors[name])
        raw, crc = tensor_bytes(a)
        s = i % num_shards
        dtype = 7 if a.dtype == object else DTYPE_ENUM[a.dtype.name]
        shape = b"".join(field(2, field(1, d)) for d in a.shape)
        entry = field(1, dtype) + field(2, shape) + field(3, s) + field(4, len(shards[s])) + field(5, len(raw)) + fixed32(6, crc)
        shards[s] += raw
        items.append((name.encode(), entry))
    for s, raw in enumerate(shards):
        Path(f"{prefix}.data-{s:05d}-of-{num_shards:05d}").write_bytes(bytes(raw))
    return write_table(f"{prefix}.index", items, block_size, restart_interval)
