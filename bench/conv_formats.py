#!/usr/bin/python3
"""Which memory format a 3x3 convolution trains faster in on this machine:
NCHW or channels-last (NHWC), for the widths and map sides of a ResNet
student's stages. Forward and both backward products (input and weight
gradients), batch 128, as a training step runs them; prints GFLOP/s of the
median of 15 repetitions for each format and the faster one.

The engine's rule (worker/engine/models.h, PrefersChannelsLast) was read off
this table: on the CPU, NCHW where channels >= 128 * side. Debian's PyTorch
runs the same LibTorch (and oneDNN) the engine links."""
import argparse
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--repeats", type=int, default=15)
args = p.parse_args()
torch.set_num_threads(args.threads)


def rate(channels, side, memory_format):
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    conv.weight.data = conv.weight.data.contiguous(memory_format=memory_format)
    shape = (args.batch, channels, side, side)
    x = torch.randn(shape).contiguous(memory_format=memory_format).requires_grad_()
    grad = torch.randn(shape).contiguous(memory_format=memory_format)
    flops = 3 * 2 * args.batch * channels * channels * 9 * side * side

    def step():
        torch.autograd.grad(conv(x), [x, conv.weight], grad)

    for _ in range(3):
        step()
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    return flops / seconds[len(seconds) // 2] / 1e9


print("channels side  NCHW GFLOP/s  NHWC GFLOP/s  faster  rule (NCHW iff channels >= 128 x side)")
for channels in (64, 128, 256, 512, 1024):
    for side in (2, 4, 7):
        nchw = rate(channels, side, torch.contiguous_format)
        nhwc = rate(channels, side, torch.channels_last)
        faster = "NCHW" if nchw > nhwc else "NHWC"
        rule = "NCHW" if channels >= 128 * side else "NHWC"
        print("%8d %4d  %12.0f  %12.0f  %6s  %s%s" % (
            channels, side, nchw, nhwc, faster, rule,
            "" if rule == faster else "  (differs)"))
