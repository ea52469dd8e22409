"""The MoCo v2 queue: FIFO over the oldest rows, wrapping around the end."""

from __future__ import annotations

import torch

from ftsweep.pretrain.moco import MoCoQueue


def test_moco_queue_overwrites_oldest_rows_and_wraps():
    q = MoCoQueue(5, 2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(q.keys.norm(dim=1), torch.ones(5))
    initial = q.keys.clone()
    a = torch.arange(6, dtype=torch.float32).view(3, 2)
    q.enqueue(a)
    assert q.ptr == 3
    assert torch.equal(q.keys[:3], a) and torch.equal(q.keys[3:], initial[3:])
    b = 10 + torch.arange(6, dtype=torch.float32).view(3, 2)
    q.enqueue(b)
    assert q.ptr == 1
    assert torch.equal(q.keys[3], b[0]) and torch.equal(q.keys[4], b[1]) and torch.equal(q.keys[0], b[2])
    assert torch.equal(q.keys[1:3], a[1:])
    c = 100 + torch.arange(14, dtype=torch.float32).view(7, 2)  # more keys than slots: last 5 stay
    q.enqueue(c)
    assert sorted(map(tuple, q.keys.tolist())) == sorted(map(tuple, c[-5:].tolist()))
