#!/usr/bin/python3
"""The student's training step in PyTorch's Python API, as bench/student_step.cc
times it in the engine: torchvision's ResNet-18 with the small-image stem
(3x3 stride-1 convolution, no max-pool), 1 x 28 x 28 input, batch 128,
cross-entropy, SGD. Prints images per second."""
import argparse
import time

import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup", type=int, default=3)
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
model = torchvision.models.resnet18(num_classes=10)
model.conv1 = torch.nn.Conv2d(1, 64, 3, 1, 1, bias=False)
model.maxpool = torch.nn.Identity()
model.train()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
images = torch.randn(128, 1, 28, 28)
labels = torch.randint(10, (128,))


def step():
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()


for _ in range(args.warmup):
    step()
start = time.perf_counter()
for _ in range(args.steps):
    step()
seconds = time.perf_counter() - start
print("pytorch images/s %.1f threads %d" % (128 * args.steps / seconds, args.threads))
