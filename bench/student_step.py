#!/usr/bin/python3
"""The student's training step in PyTorch's Python API, as bench/student_step.cc
times it in the engine: torchvision's ResNet-18 with the small-image stem
(3x3 stride-1 convolution, no max-pool), 1 x 28 x 28 input, batch 128,
cross-entropy, SGD. Prints images per second of the median step (and the
mean)."""
import argparse
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import step_timing  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--device", default="cpu")
p.add_argument("--lockstep", type=int, default=0,
               help="step once per line read, print its seconds (bench/lockstep.py)")
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
model = torchvision.models.resnet18(num_classes=10)
model.conv1 = torch.nn.Conv2d(1, 64, 3, 1, 1, bias=False)
model.maxpool = torch.nn.Identity()
device = torch.device(args.device)
model.to(device).train()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
images = torch.randn(128, 1, 28, 28, device=device)
labels = torch.randint(10, (128,), device=device)


def step():
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()


step_timing.run(step, 128, args,
                "step threads %d" % args.threads)
