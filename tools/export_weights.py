#!/usr/bin/python3
"""Writes a torchvision ResNet's weights in the form the engine loads by name.

The engine (worker/engine/weights.h) reads a file that torch.save wrote from a
plain dict {parameter name: tensor}. Run this where the weights are:

  # ImageNet weights you already have (a torchvision .pth state dict):
  tools/export_weights.py --arch resnet50 --weights resnet50-0676ba61.pth --out r50.pt
  # A randomly initialised model (how the tests check the format):
  tools/export_weights.py --arch resnet18 --seed 3 --out r18.pt \\
      --digests r18.sha256 --reference r18.reference.pt

--digests writes `name sha256-of-the-tensor's-bytes` a line; --reference
writes {"input": x, "logits": model(x)} in eval mode for a fixed input, so a
test can check the engine computes what torchvision computes.
"""
import argparse
import hashlib

import torch
import torchvision


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", required=True, choices=["resnet18", "resnet34", "resnet50"])
    p.add_argument("--weights", help="a torchvision state dict (.pth); default: random")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--digests")
    p.add_argument("--reference")
    p.add_argument("--image-size", type=int, default=64)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    model = getattr(torchvision.models, args.arch)(num_classes=args.num_classes)
    if args.weights:
        model.load_state_dict(torch.load(args.weights, map_location="cpu"))
    else:
        # Non-trivial batch-norm statistics, so the test sees them arrive too.
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(7)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, args.out)
    if args.digests:
        with open(args.digests, "w") as f:
            for name, t in state.items():
                f.write("%s %s\n" % (name, hashlib.sha256(t.numpy().tobytes()).hexdigest()))
    if args.reference:
        model.eval()
        x = torch.randn(2, 3, args.image_size, args.image_size)
        with torch.no_grad():
            logits = model(x)
        torch.save({"input": x, "logits": logits}, args.reference)


if __name__ == "__main__":
    main()
