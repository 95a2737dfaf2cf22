"""The training catalog's example job: a small model on generated data, trained data-parallel across every rank.

Each rank fits its share of a random linear regression with DistributedDataParallel (NCCL on a GPU, Gloo on a CPU),
so the gradients are all-reduced over the fabric at every step. Rank 0 of every node prints one JSON line per step,
{"step": N, "loss": X, "rank": R}, the format train_status.yml reads.
"""

import argparse
import json
import os
import time

import torch
import torch.distributed as dist


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--step-seconds", type=float, default=0.1, help="a pause per step, to watch a run")
    parser.add_argument("--features", type=int, default=64)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
    generator = torch.Generator().manual_seed(0)  # every rank draws the same data and takes its own share
    inputs = torch.randn(4096, args.features, generator=generator)
    noise = 0.01 * torch.randn(4096, 1, generator=generator)
    targets = inputs @ torch.randn(args.features, 1, generator=generator) + noise
    inputs, targets = inputs[rank::world].to(device), targets[rank::world].to(device)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(args.features, 1).to(device))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(1, args.steps + 1):
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if int(os.environ.get("LOCAL_RANK", 0)) == 0:
            print(json.dumps({"step": step, "loss": round(loss.item(), 6), "rank": rank}), flush=True)
        time.sleep(args.step_seconds)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
