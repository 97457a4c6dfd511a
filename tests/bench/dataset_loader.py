# SPDX-License-Identifier: Apache-2.0
"""One timed epoch of a PyTorch DataLoader over WebDataset shards, read
either from local files or from a Strata node (tests/bench/dataset.sh runs
it).  Both sources go through the same code: the same shard order and
split among workers (strata.plan), the same tar parser
(strata.webdataset_samples), the same DataLoader settings; only where the
shard bytes come from differs (open().read() vs strata.Dataset).

usage: dataset_loader.py local DIR | strata URL
           --workers N --batch B --seed S --epoch E
Prints one JSON line: samples, bytes, seconds, samples_per_s, mb_per_s.
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source", choices=["local", "strata"])
    ap.add_argument("where")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epoch", type=int, default=0)
    ap.add_argument("--prefetch", type=int, default=2)
    a = ap.parse_args()

    if a.source == "local":
        ds = LocalShards(a.where, a.seed, a.epoch)
    else:
        ds = strata.Dataset(a.where, seed=a.seed, epoch=a.epoch,
                            samples="webdataset", rank=0, world_size=1,
                            prefetch=a.prefetch)
    # Lists of bytes per field: default_collate keeps bytes as they are.
    loader = tud.DataLoader(ds, num_workers=a.workers, batch_size=a.batch)
    samples = nbytes = 0
    keys = set()
    t0 = time.perf_counter()
    for batch in loader:
        n = len(batch["__key__"])
        samples += n
        keys.update(batch["__key__"])
        for k, v in batch.items():
            if not k.startswith("__"):
                nbytes += sum(len(x) for x in v)
    secs = time.perf_counter() - t0
    if len(keys) != samples:
        print("dataset_loader: %d samples but %d distinct keys" %
              (samples, len(keys)), file=sys.stderr)
        return 1
    print(json.dumps({"source": a.source, "samples": samples,
                      "bytes": nbytes, "seconds": round(secs, 4),
                      "samples_per_s": round(samples / secs, 1),
                      "mb_per_s": round(nbytes / secs / 1e6, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
