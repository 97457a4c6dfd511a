# SPDX-License-Identifier: Apache-2.0
"""One timed epoch of a PyTorch DataLoader over WebDataset shards, read
either from local files or from a Strata node (tests/bench/dataset.sh runs
it).  Both sources go through the same code: the same shard order and
split among workers (strata.plan), the same tar parser
(strata.webdataset_samples), the same DataLoader settings; only where the
shard bytes come from differs (open().read() vs strata.Dataset).

usage: dataset_loader.py local DIR | strata URL
           --workers N --batch B --seed S --epoch E [--device cuda]
           [--prefetch N] [--piece-size BYTES]
Prints one JSON line: samples, bytes, seconds, first_batch_s (from the
DataLoader's start to its first batch: worker start-up and the first
shard's bytes), samples_per_s, mb_per_s.

With --device (e.g. cuda), each batch is what a training step receives:
the workers pack its samples' payloads into one uint8 tensor, the
DataLoader pins it (pin_memory=True) and the loop copies it to the device
(non_blocking), synchronizing once at the end of the epoch.
"""
import argparse
import json
import os
import sys
import time

import strata
import torch.utils.data as tud


class LocalShards(tud.IterableDataset):
    """Tar files in a directory, split and ordered as strata.Dataset."""

    def __init__(self, d, seed, epoch):
        self.dir = d
        self.files = sorted(f for f in os.listdir(d) if f.endswith(".tar"))
        self.seed, self.epoch = seed, epoch

    def __iter__(self):
        info = tud.get_worker_info()
        wk, nw = (info.id, info.num_workers) if info else (0, 1)
        for i in strata.plan(len(self.files), self.seed, self.epoch,
                             worker=wk, num_workers=nw):
            with open(os.path.join(self.dir, self.files[i]), "rb") as f:
                data = f.read()
            yield from strata.webdataset_samples(data, self.files[i])


def payload(sample):
    return sum(len(v) for k, v in sample.items() if not k.startswith("__"))


def packed(samples):
    """collate_fn for --device: keys, and every payload in one tensor."""
    import torch
    keys = [s["__key__"] for s in samples]
    blob = b"".join(v for s in samples for k, v in sorted(s.items())
                    if not k.startswith("__"))
    return keys, torch.frombuffer(bytearray(blob), dtype=torch.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source", choices=["local", "strata"])
    ap.add_argument("where")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epoch", type=int, default=0)
    ap.add_argument("--prefetch", type=int, default=2)
    ap.add_argument("--piece-size", type=int, default=None,
                    help="strata.Dataset's piece_size (default: its own)")
    ap.add_argument("--device", default=None,
                    help="copy each batch to this torch device (e.g. cuda)")
    a = ap.parse_args()

    if a.source == "local":
        ds = LocalShards(a.where, a.seed, a.epoch)
    else:
        ds = strata.Dataset(a.where, seed=a.seed, epoch=a.epoch,
                            samples="webdataset", rank=0, world_size=1,
                            prefetch=a.prefetch, piece_size=a.piece_size)
    # Lists of bytes per field: default_collate keeps bytes as they are.
    if a.device:
        import torch
        dev = torch.device(a.device)
        loader = tud.DataLoader(ds, num_workers=a.workers,
                                batch_size=a.batch, collate_fn=packed,
                                pin_memory=dev.type == "cuda")
    else:
        loader = tud.DataLoader(ds, num_workers=a.workers,
                                batch_size=a.batch)
    samples = nbytes = 0
    first = None
    keys = set()
    t0 = time.perf_counter()
    for batch in loader:
        if first is None:
            first = time.perf_counter() - t0
        if a.device:
            bkeys, blob = batch
            blob = blob.to(dev, non_blocking=True)
            nbytes += blob.numel()
        else:
            bkeys = batch["__key__"]
            for k, v in batch.items():
                if not k.startswith("__"):
                    nbytes += sum(len(x) for x in v)
        samples += len(bkeys)
        keys.update(bkeys)
    if a.device and dev.type == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    if len(keys) != samples:
        print("dataset_loader: %d samples but %d distinct keys" %
              (samples, len(keys)), file=sys.stderr)
        return 1
    print(json.dumps({"source": a.source, "device": a.device or "none",
                      "samples": samples,
                      "bytes": nbytes, "seconds": round(secs, 4),
                      "first_batch_s": round(first or 0, 4),
                      "samples_per_s": round(samples / secs, 1),
                      "mb_per_s": round(nbytes / secs / 1e6, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
