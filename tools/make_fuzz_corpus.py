#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/NAME/).

spec_yaml_fuzzer: the example sweeps and a few single specs, as YAML.
spec_proto_fuzzer: the same, as the wire bytes a gRPC client would send.
Run from the repository root with Debian's python3 (python3-protobuf,
python3-yaml, protoc): /usr/bin/python3 tools/make_fuzz_corpus.py
"""

import glob
import hashlib
import os
import subprocess
import sys
import tempfile

import yaml
from google.protobuf import json_format

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = tempfile.mkdtemp()
subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out",
                GEN, "distill/v1/spec.proto"], check=True)
sys.path.insert(0, GEN)
from distill.v1 import spec_pb2  # noqa: E402

SINGLE = [
    "kind: TRAIN_TEACHER\ndataset: {name: fashion-mnist, train_limit: 64}\n"
    "teacher: {vit: {preset: small-28}}\nepochs: 1\nbatch_size: 32\n",
    "kind: DISTILL\ndataset: {name: fashion-mnist}\nteacher: {run_id: 1}\n"
    "losses: {ce: 1, ikd: {weight: 1, temperature: 4}}\nepochs: 2\n"
    "batch_size: 64\n",
    "kind: DISTILL\ndataset: {name: cub-200-2011, image_size: 224, "
    "crop_to_boxes: true}\nteacher: {torchscript: vit.pt}\n"
    "student: {arch: resnet50, stem: IMAGENET, pretrained: r50.pt}\n"
    "losses: {rkd: {distance_weight: 1, angle_weight: 2}}\n"
    "optimizer: {kind: ADAMW, lr: 0.001}\nepochs: 1\nbatch_size: 8\n",
    "kind: EVALUATE\ndataset: {name: cifar-10}\nstudent_run_id: 3\n"
    "teacher: {run_id: 2}\nevaluation: {tsne_points: 100, knn_bank: 1000}\n",
]


def write(directory, data):
    os.makedirs(directory, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    yaml_dir = os.path.join(ROOT, "fuzz/corpus/spec_yaml_fuzzer")
    proto_dir = os.path.join(ROOT, "fuzz/corpus/spec_proto_fuzzer")
    for path in sorted(glob.glob(os.path.join(ROOT, "examples/*.yaml"))):
        text = open(path, "rb").read()
        write(yaml_dir, text)
        sweep = json_format.ParseDict(yaml.safe_load(text), spec_pb2.SweepSpec())
        write(proto_dir, sweep.SerializeToString())
    for text in SINGLE:
        write(yaml_dir, text.encode())
        spec = json_format.ParseDict(yaml.safe_load(text),
                                     spec_pb2.ExperimentSpec())
        write(proto_dir, spec.SerializeToString())


if __name__ == "__main__":
    main()
