#!/usr/bin/python3
"""Writes a synthetic image tree in CUB-200-2011's layout: random JPEGs (each
class its own colour under noise, so that a model can learn something) and
the index files the engine reads (images.txt, image_class_labels.txt,
train_test_split.txt, classes.txt, bounding_boxes.txt). Nothing is
downloaded. For the CUB recipe's test (tests/e2e_cub_recipe_test.sh) and the
224-px figures on a GPU (bench/gpu.sh).

Usage: make_cub_tree.py OUT [--classes 200] [--per-class 4] [--size 224]
                            [--seed 1]
Every other image of a class is a training image, as CUB splits about half.
"""
import argparse
import os
import random

from PIL import Image


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--classes", type=int, default=200)
    p.add_argument("--per-class", type=int, default=4)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(os.path.join(a.out, "images"), exist_ok=True)
    images, labels, split, classes, boxes = [], [], [], [], []
    image_id = 0
    for c in range(1, a.classes + 1):
        folder = "%03d.Synthetic_bird_%d" % (c, c)
        classes.append("%d %s" % (c, folder))
        os.makedirs(os.path.join(a.out, "images", folder), exist_ok=True)
        base = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        for i in range(a.per_class):
            image_id += 1
            name = "%s/Synthetic_bird_%d_%04d.jpg" % (folder, c, i + 1)
            noise = bytes(
                max(0, min(255, base[k % 3] + rng.randrange(-60, 61)))
                for k in range(a.size * a.size * 3))
            Image.frombytes("RGB", (a.size, a.size), noise).save(
                os.path.join(a.out, "images", name), quality=90)
            images.append("%d %s" % (image_id, name))
            labels.append("%d %d" % (image_id, c))
            split.append("%d %d" % (image_id, 1 if i % 2 == 0 else 0))
            boxes.append("%d 0.0 0.0 %d.0 %d.0" % (image_id, a.size, a.size))
    for name, lines in (("images.txt", images),
                        ("image_class_labels.txt", labels),
                        ("train_test_split.txt", split),
                        ("classes.txt", classes),
                        ("bounding_boxes.txt", boxes)):
        with open(os.path.join(a.out, name), "w") as f:
            f.write("\n".join(lines) + "\n")
    print("%s: %d images of %d classes at %d px" % (a.out, image_id,
                                                    a.classes, a.size))


main()
