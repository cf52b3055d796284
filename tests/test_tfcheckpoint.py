"Round trips through a test-side bundle writer: several data blocks, restart intervals, shards and the dtypes a slim checkpoint holds."
import numpy as np
import pytest
from tfbundle import write_bundle

from mtssl_nb.tfcheckpoint import TFCheckpoint, TFCheckpointError, block_entries, read_block, read_footer, read_handle


def tensors():
    rng = np.random.default_rng(0)
    out = {f"resnet_v2_101/block1/unit_{u}/bottleneck_v2/conv{c}/weights": rng.normal(size=(1, 1, 4, 4)).astype(np.float32)
           for u in range(1, 8) for c in (1, 2, 3)}  # 21 names sharing long prefixes
    out.update({
        "global_step": np.array(98765, np.int64),
        "decoy/logits/biases": rng.normal(size=10).astype(np.float32),  # not a trunk variable
        "decoy/half": rng.normal(size=(2, 3)).astype(np.float16),
        "decoy/double": rng.normal(size=4),
        "decoy/ints": np.arange(-3, 3, dtype=np.int32),
        "decoy/bytes": np.arange(5, dtype=np.uint8),
        "decoy/flags": np.array([[True], [False]]),
        "decoy/empty": np.zeros((0, 3), np.float32),
        "decoy/words": np.array([b"a", b"", b"\xff" * 200], dtype=object),  # a length over 127: a two-byte varint
    })
    return out


def test_round_trip_many_blocks(tmp_path):
    want = tensors()
    n_blocks = write_bundle(tmp_path / "m.ckpt", want, num_shards=3, block_size=300, restart_interval=3)
    index = (tmp_path / "m.ckpt.index").read_bytes()
    _, handle = read_footer(index)
    data_handles = [read_handle(v) for _, v in block_entries(read_block(index, handle))]
    assert n_blocks == len(data_handles) >= 4  # the table really has several data blocks
    first = read_block(index, data_handles[0])
    assert int.from_bytes(first[-4:], "little") >= 2  # and several restart points in a block
    ckpt = TFCheckpoint(tmp_path / "m.ckpt")
    assert sorted(ckpt) == sorted(want) and ckpt.header.num_shards == 3
    for name, a in want.items():
        got = ckpt[name]
        assert got.shape == a.shape and got.dtype == a.dtype, name
        assert got.tolist() == a.tolist(), name
    assert ckpt["global_step"] == 98765 and ckpt.dtype("decoy/half") == "float16" and ckpt.dtype("decoy/words") == "string"


def test_round_trip_restart_every_entry(tmp_path):
    "restart_interval=1: every key stored whole; one huge block."
    want = tensors()
    assert write_bundle(tmp_path / "m", want, num_shards=1, block_size=10**6, restart_interval=1) == 1
    assert all(np.array_equal(TFCheckpoint(tmp_path / "m")[k], v) for k, v in want.items() if v.dtype != object)


def test_damage_is_found_and_named(tmp_path):
    write_bundle(tmp_path / "m.ckpt", tensors(), num_shards=2, block_size=300, restart_interval=3)
    data = tmp_path / "m.ckpt.data-00001-of-00002"
    raw = bytearray(data.read_bytes()); raw[7] ^= 0x10; data.write_bytes(bytes(raw))
    ckpt = TFCheckpoint(tmp_path / "m.ckpt")
    bad = [k for k in ckpt if ckpt[k, "entry"].shard_id == 1 and ckpt[k, "entry"].offset <= 7 < ckpt[k, "entry"].offset + ckpt[k, "entry"].size]
    with pytest.raises(TFCheckpointError, match="m.ckpt.data-00001-of-00002: tensor .* does not match its checksum"):
        ckpt[bad[0]]
    index = tmp_path / "m.ckpt.index"
    raw = bytearray(index.read_bytes()); raw[20] ^= 0x01; index.write_bytes(bytes(raw))
    with pytest.raises(TFCheckpointError, match="m.ckpt.index: the block at byte 0 does not match its checksum"):
        TFCheckpoint(tmp_path / "m.ckpt")
