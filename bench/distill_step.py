#!/usr/bin/python3
"""The distillation step of Table 1's row H in PyTorch's Python API, as
bench/distill_step.cc times it in the engine: a ResNet-18 student
(torchvision's BasicBlock, small stem, width 16) learning from a frozen ViT
teacher (patch 7, depth 4, 4 heads) with CE, embedding MSE through a linear
projection, instance KD at T = 4 and RKD distance and angle as the authors'
reference code (lenscloth/RKD) computes them; batch 128 of 1 x 28 x 28, SGD.
Written as a researcher would with PyTorch as it comes."""
import argparse
import contextlib
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock, conv1x1

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import step_timing  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--teacher", choices=["online", "cached"], default="online")
p.add_argument("--teacher_width", type=int, default=96)
p.add_argument("--student_width", type=int, default=16)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--device", default="cpu")
p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--size", type=int, default=28, help="image side (64+: ImageNet stem)")
p.add_argument("--channels", type=int, default=1)
p.add_argument("--classes", type=int, default=10)
p.add_argument("--teacher_patch", type=int, default=7)
p.add_argument("--teacher_depth", type=int, default=4)
p.add_argument("--teacher_heads", type=int, default=4)
p.add_argument("--lockstep", type=int, default=0,
               help="step once per line read, print its seconds (bench/lockstep.py)")
args = p.parse_args()


class Block(nn.Module):
    def __init__(self, width, heads, hidden):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        b, t, w = x.shape
        d = w // self.heads
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), -1)
        x = x + self.proj((attention @ v).transpose(1, 2).reshape(b, t, w))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Vit(nn.Module):
    def __init__(self, width, patch=7, depth=4, heads=4, size=28, classes=10, channels=1):
        super().__init__()
        self.patch_embed = nn.Conv2d(channels, width, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, heads, 4 * width) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, classes)

    def forward(self, images):
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        embedding = self.norm(x)[:, 0]
        return self.head(embedding), embedding


class Student(nn.Module):
    """torchvision's ResNet-18 at width w with the small-image stem (or, for
    64 px and more, torchvision's ImageNet stem)."""

    def __init__(self, w, teacher_width, classes=10, channels=1, size=28):
        super().__init__()
        imagenet = size >= 64
        self.conv1 = (nn.Conv2d(channels, w, 7, 2, 3, bias=False) if imagenet
                      else nn.Conv2d(channels, w, 3, 1, 1, bias=False))
        self.pool = nn.MaxPool2d(3, 2, 1) if imagenet else nn.Identity()
        self.bn1 = nn.BatchNorm2d(w)
        layers, inplanes = [], w
        for planes, stride in ((w, 1), (2 * w, 2), (4 * w, 2), (8 * w, 2)):
            blocks = []
            for i in range(2):
                s = stride if i == 0 else 1
                down = None
                if s != 1 or inplanes != planes:
                    down = nn.Sequential(conv1x1(inplanes, planes, s), nn.BatchNorm2d(planes))
                blocks.append(BasicBlock(inplanes, planes, s, down))
                inplanes = planes
            layers.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(inplanes, classes)
        self.projection = nn.Linear(inplanes, teacher_width)

    def forward(self, images):
        x = self.layers(self.pool(F.relu(self.bn1(self.conv1(images)))))
        f = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(f), f


# RKD as lenscloth/RKD's metric/loss.py computes it.
def pdist(e, eps=1e-12):
    e_square = e.pow(2).sum(dim=1)
    prod = e @ e.t()
    res = (e_square.unsqueeze(1) + e_square.unsqueeze(0) - 2 * prod).clamp(min=eps).sqrt()
    res = res.clone()
    res[range(len(e)), range(len(e))] = 0
    return res


def rkd_distance(student, teacher):
    with torch.no_grad():
        t_d = pdist(teacher)
        t_d = t_d / t_d[t_d > 0].mean()
    d = pdist(student)
    d = d / d[d > 0].mean()
    return F.smooth_l1_loss(d, t_d)


def rkd_angle(student, teacher):
    with torch.no_grad():
        td = teacher.unsqueeze(0) - teacher.unsqueeze(1)
        norm_td = F.normalize(td, p=2, dim=2)
        t_angle = torch.bmm(norm_td, norm_td.transpose(1, 2)).view(-1)
    sd = student.unsqueeze(0) - student.unsqueeze(1)
    norm_sd = F.normalize(sd, p=2, dim=2)
    s_angle = torch.bmm(norm_sd, norm_sd.transpose(1, 2)).view(-1)
    return F.smooth_l1_loss(s_angle, t_angle)


def ikd(student_logits, teacher_logits, tau=4.0):
    return F.kl_div(F.log_softmax(student_logits / tau, dim=1),
                    F.softmax(teacher_logits / tau, dim=1), reduction="batchmean") * tau * tau


torch.set_num_threads(args.threads)
torch.manual_seed(0)
device = torch.device(args.device)
teacher = Vit(args.teacher_width, args.teacher_patch, args.teacher_depth,
              args.teacher_heads, args.size, args.classes, args.channels).to(device).eval()
teacher.requires_grad_(False)
student = Student(args.student_width, args.teacher_width, args.classes,
                  args.channels, args.size).to(device).train()
optimizer = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
images = torch.randn(args.batch, args.channels, args.size, args.size, device=device)
labels = torch.randint(args.classes, (args.batch,), device=device)
dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
if hasattr(torch.amp, "GradScaler"):  # PyTorch >= 2.3
    scaler = torch.amp.GradScaler(device.type, enabled=args.precision == "fp16")
else:
    scaler = torch.cuda.amp.GradScaler(enabled=args.precision == "fp16")
if args.teacher == "cached":
    with torch.no_grad():
        outputs = [teacher(images) for _ in range(8)]
    pool_logits = torch.cat([l.cpu() for l, _ in outputs])
    pool_embedding = torch.cat([e.cpu() for _, e in outputs])


def step():
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
        if args.teacher == "online":
            with torch.no_grad():
                t_logits, t_embedding = teacher(images)
        else:
            idx = torch.randperm(pool_logits.shape[0])[:args.batch]
            t_logits = pool_logits[idx].to(device)
            t_embedding = pool_embedding[idx].to(device)
        logits, embedding = student(images)
        projected = student.projection(embedding)
    logits, projected = logits.float(), projected.float()
    t_logits, t_embedding = t_logits.float(), t_embedding.float()
    loss = (F.cross_entropy(logits, labels) + F.mse_loss(projected, t_embedding)
            + ikd(logits, t_logits) + rkd_distance(projected, t_embedding)
            + 2 * rkd_angle(projected, t_embedding))
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    if device.type == "cuda":
        torch.cuda.synchronize()


step_timing.run(step, args.batch, args,
                "distill step teacher %s width %d precision %s"
                % (args.teacher, args.teacher_width, args.precision))
