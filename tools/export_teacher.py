#!/usr/bin/python3
"""Wraps a ViT backbone and a linear head into a TorchScript teacher.

The engine loads any TorchScript file whose forward(images) returns
(logits, embedding) (worker/engine/teacher.h). Run this where the weights
are (the engine never downloads anything):

  # DINO ViT-S/16 from PyTorch Hub (needs the hub cache or the network):
  tools/export_teacher.py --dino dino_vits16 --image-size 224 --num-classes 200 \\
      --out dino_vits16.pt
  # A torchvision ViT with weights you have:
  tools/export_teacher.py --torchvision vit_b_16 --weights vit_b_16.pth \\
      --image-size 224 --num-classes 200 --out vit_b_16.pt
  # A small randomly initialised torchvision VisionTransformer (the tests):
  tools/export_teacher.py --random-vit --image-size 28 --in-channels 1 \\
      --patch-size 7 --layers 2 --heads 2 --hidden 32 --num-classes 10 --out t.pt

The head is random unless --head names a file holding {"weight", "bias"};
a TRAIN_TEACHER run with teacher.torchscript fits a real one on the frozen
embedding. The file records the input shape it was traced for
(`input_shape`), so a wrong image size is a clear error, not a crash.
"""
import argparse
import warnings

import torch
import torchvision


class TorchvisionVitBackbone(torch.nn.Module):
    """A torchvision VisionTransformer up to the final CLS token."""

    def __init__(self, vit):
        super().__init__()
        self.vit = vit

    def forward(self, x):
        x = self.vit._process_input(x)
        cls = self.vit.class_token.expand(x.shape[0], -1, -1)
        x = self.vit.encoder(torch.cat([cls, x], dim=1))
        return x[:, 0]


class Teacher(torch.nn.Module):
    """forward(images) -> (logits, embedding)."""

    def __init__(self, backbone, head, input_shape, backbone_channels):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.register_buffer("input_shape", torch.tensor(input_shape))
        self.repeat_channels = backbone_channels // input_shape[0]

    def forward(self, images):
        if self.repeat_channels > 1:
            images = images.repeat(1, self.repeat_channels, 1, 1)
        embedding = self.backbone(images)
        return self.head(embedding), embedding


def main():
    p = argparse.ArgumentParser()
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--dino", help="a PyTorch Hub DINO model, e.g. dino_vits16")
    source.add_argument("--torchvision", help="a torchvision ViT, e.g. vit_b_16")
    source.add_argument("--random-vit", action="store_true")
    p.add_argument("--weights", help="a state dict for --torchvision")
    p.add_argument("--head", help='a file holding {"weight", "bias"} of the linear head')
    p.add_argument("--num-classes", type=int, required=True)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--patch-size", type=int, default=16)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    torch.manual_seed(args.seed)
    if args.dino:
        backbone = torch.hub.load("facebookresearch/dino:main", args.dino)
        width = backbone.embed_dim
    elif args.torchvision:
        vit = getattr(torchvision.models, args.torchvision)()
        if args.weights:
            vit.load_state_dict(torch.load(args.weights, map_location="cpu"))
        backbone, width = TorchvisionVitBackbone(vit), vit.hidden_dim
    else:
        vit = torchvision.models.VisionTransformer(
            image_size=args.image_size, patch_size=args.patch_size, num_layers=args.layers,
            num_heads=args.heads, hidden_dim=args.hidden, mlp_dim=2 * args.hidden,
            num_classes=args.num_classes)
        backbone, width = TorchvisionVitBackbone(vit), args.hidden
    head = torch.nn.Linear(width, args.num_classes)
    if args.head:
        head.load_state_dict(torch.load(args.head, map_location="cpu"))
    teacher = Teacher(backbone, head, [args.in_channels, args.image_size, args.image_size], 3)
    teacher.eval()
    example = torch.randn(2, args.in_channels, args.image_size, args.image_size)
    with torch.no_grad():
        traced = torch.jit.trace(teacher, example)
    traced.save(args.out)
    print("wrote %s: embedding width %d, %d classes" % (args.out, width, args.num_classes))


if __name__ == "__main__":
    main()
