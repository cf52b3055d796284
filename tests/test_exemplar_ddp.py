"""Exemplar under DDP: negatives gathered across ranks give the loss and gradients of one process holding the global batch."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from mtssl_nb.core import TaskBatch
from mtssl_nb.tasks.exemplar import Exemplar, triplet_loss

WORLD, N_PER_RANK, K, D = 2, 3, 2, 8


def embeddings():
    return F.normalize(torch.randn(WORLD * N_PER_RANK, K, D, generator=torch.Generator().manual_seed(0)), dim=-1)


def rank_main(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        task = Exemplar(views=K, dim=D)
        z = embeddings()[rank * N_PER_RANK:(rank + 1) * N_PER_RANK].clone().requires_grad_()
        tb = TaskBatch("exemplar", torch.zeros(N_PER_RANK, K, 3, 4, 4), torch.arange(N_PER_RANK), {})
        loss, metrics = task.loss(z, tb)
        loss.backward()
        local = Exemplar(views=K, dim=D, gather=False).loss(z.detach(), tb)[0]  # negatives from this rank only
        out[rank] = (float(loss), z.grad.clone(), float(local))
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gathered_negatives_match_one_process():
    out = mp.Manager().dict()
    mp.spawn(rank_main, args=(free_port(), out), nprocs=WORLD, join=True)
    z = embeddings().requires_grad_()
    # one process, the global batch: each rank's loss is the mean over its own anchors against every negative
    per_rank = [triplet_loss(z, 0.5, "semi-hard", slice(r * N_PER_RANK, (r + 1) * N_PER_RANK))[0] for r in range(WORLD)]
    sum(per_rank).backward()  # all_gather's backward sums every rank's gradient into the rows a rank made
    for r in range(WORLD):
        loss, grad, local = out[r]
        assert abs(loss - per_rank[r].item()) < 1e-6
        assert torch.allclose(grad, z.grad[r * N_PER_RANK:(r + 1) * N_PER_RANK], atol=1e-6)
        assert abs(local - loss) > 1e-4  # without gathering the negatives differ: the test can tell
    # and the global loss is the mean of the ranks' losses (equal batches)
    assert abs(sum(out[r][0] for r in range(WORLD)) / WORLD - float(triplet_loss(z.detach(), 0.5, "semi-hard")[0])) < 1e-6
