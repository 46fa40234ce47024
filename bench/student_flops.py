#!/usr/bin/python3
"""The FLOPs of one training step of the ResNet-18 student at 28 px, batch
128, counted by PyTorch's own profiler (torch.profiler, with_flops) on a
Python replica of the student (torchvision's BasicBlock, the small-image
stem, width w): three times the forward pass, less the stem's input
gradient, which no step computes. bench/distill_step.cc's StudentStepFlops
must print the same numbers (21.9153 and 349.9394 GFLOP for widths 16 and
64)."""
import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile
from torchvision.models.resnet import BasicBlock, ResNet


class Student(ResNet):
    def __init__(self, width):
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=10)
        self.inplanes = width
        self.conv1 = nn.Conv2d(1, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(BasicBlock, width, 2)
        self.layer2 = self._make_layer(BasicBlock, 2 * width, 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, 4 * width, 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, 8 * width, 2, stride=2)
        self.fc = nn.Linear(8 * width, 10)


for width in (16, 64):
    model, images = Student(width), torch.randn(128, 1, 28, 28)
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as p:
        with torch.no_grad():
            model(images)
    forward = sum(e.flops for e in p.key_averages())
    stem_input_gradient = 2 * 128 * width * 9 * 28 * 28
    print("width %d: forward %.4f GFLOP, training step %.4f GFLOP" %
          (width, forward / 1e9, (3 * forward - stem_input_gradient) / 1e9))
