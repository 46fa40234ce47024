#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/NAME/).

  spec_yaml_fuzzer: the example sweeps and a few single specs, as YAML.
  spec_proto_fuzzer: the same, as the wire bytes a gRPC client would send.
  scheduler_fuzzer: sessions (fuzz/proto/distill/fuzz/fuzz_session.proto)
    built from the example sweep files, issue 22's reproduction (a
    TRAIN_TEACHER run with lr 1e-310, and the same value as a ListRuns
    filter and a grid axis), a worker's whole lease (report, heartbeat,
    complete, fail, release), annotations, filters, retries and expiry.
  pages_fuzzer: requests on the pages' port (the first byte picks tokens
    on/off and TLS) for every page, the login form, cookies, pipelining,
    and malformed heads and bodies.

Files are named by the SHA-1 of their bytes, as libFuzzer names its own.
Run with Debian's python3 (python3-protobuf, python3-yaml, protoc):
/usr/bin/python3 tools/make_fuzz_corpus.py
"""

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = tempfile.mkdtemp(prefix="distill-corpus.")
protos = sorted(
    os.path.relpath(p, os.path.join(ROOT, "proto"))
    for p in glob.glob(os.path.join(ROOT, "proto/distill/v1/*.proto")))
subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "-I",
                os.path.join(ROOT, "fuzz/proto"), "--python_out", GEN] +
               protos + ["distill/fuzz/fuzz_session.proto"], check=True)
sys.path.insert(0, GEN)

from google.protobuf import json_format  # noqa: E402
from distill.fuzz import fuzz_session_pb2 as fz  # noqa: E402
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
    "kind: TRAIN_TEACHER\ndataset: {name: fashion-mnist}\n"
    "teacher: {vit: {preset: small-28}}\nepochs: 1\nbatch_size: 32\n"
    "requirements: {device_kind: cuda, min_device_memory_gib: 40, "
    "labels: [pool=a100, site=b]}\n",
    # Issue 22's reproduction: a subnormal rate.
    "kind: TRAIN_TEACHER\ndataset: {name: fashion-mnist, train_limit: 256, "
    "test_limit: 128}\nteacher: {vit: {preset: small-28}}\n"
    "optimizer: {kind: SGD, lr: 1e-310}\nepochs: 1\nbatch_size: 64\n",
]


def write(corpus, data):
    directory = os.path.join(ROOT, "fuzz/corpus", corpus)
    os.makedirs(directory, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)
    return name


def scalar_text(value):
    """A YAML scalar as the spec file loader reads it into a string field."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def sweep_dict(data):
    """A sweep file's YAML as a SweepSpec."""
    for axis in data.get("grid", []):
        axis["values"] = [scalar_text(v) for v in axis["values"]]
    for axis in data.get("random", {}).get("axes", []):
        if "choices" in axis:
            axis["choices"] = [scalar_text(v) for v in axis["choices"]]
    return json_format.ParseDict(data, spec_pb2.SweepSpec())


def sweep_file(name):
    with open(os.path.join(ROOT, "examples", name)) as f:
        return sweep_dict(yaml.safe_load(f))


def spec_corpora():
    names = []
    for path in sorted(glob.glob(os.path.join(ROOT, "examples/*.yaml"))):
        text = open(path, "rb").read()
        names.append(write("spec_yaml_fuzzer", text))
        write("spec_proto_fuzzer",
              sweep_dict(yaml.safe_load(text)).SerializeToString())
    for text in SINGLE:
        names.append(write("spec_yaml_fuzzer", text.encode()))
        spec = json_format.ParseDict(yaml.safe_load(text),
                                     spec_pb2.ExperimentSpec())
        write("spec_proto_fuzzer", spec.SerializeToString())
    return names


def teacher_spec(lr):
    spec = spec_pb2.ExperimentSpec()
    json_format.ParseDict(
        {"kind": "TRAIN_TEACHER",
         "dataset": {"name": "fashion-mnist", "train_limit": 256,
                     "test_limit": 128},
         "teacher": {"vit": {"preset": "small-28"}},
         "optimizer": {"kind": "SGD"}, "epochs": 1, "batch_size": 64}, spec)
    spec.optimizer.lr = lr
    return spec


def session(*ops):
    s = fz.Session()
    for op in ops:
        s.ops.append(op)
    return s.SerializeToString()


def op(**fields):
    o = fz.Op()
    as_leased = fields.pop("as_leased", False)
    for key, value in fields.items():
        if isinstance(value, int) and not isinstance(value, bool):
            setattr(o, key, value)
        else:
            getattr(o, key).CopyFrom(value)
    o.as_leased = as_leased
    return o


def msg(cls, **fields):
    return json_format.ParseDict(fields, cls())


def worker_lease_session(first):
    """A run through its whole lease: report, heartbeat, then `first`."""
    from distill.v1 import worker_service_pb2 as ws
    from distill.v1 import experiment_service_pb2 as es
    points = [{"key": k, "epoch": e, "step": 10 * e, "value": 0.5 + 0.1 * e}
              for e in (1, 2) for k in ("train/loss", "eval/top1")]
    return session(
        op(submit_run=teacher_spec(0.01)),
        op(lease=msg(ws.RegisterWorkerRequest, hostname="gpu1", device="cpu")),
        op(report_metrics=msg(ws.ReportMetricsRequest, points=points,
                              provenance={"data_files": "3"}),
           as_leased=True),
        op(heartbeat=ws.HeartbeatRequest(), as_leased=True),
        first,
        op(watch_run=1),
        op(run_metrics=msg(es.GetRunMetricsRequest, run_id=1, page_size=2)),
        op(list_runs=msg(es.ListRunsRequest, sort="-eval/top1",
                         where=["kind=TRAIN_TEACHER"])),
    )


def scheduler_corpus():
    from distill.v1 import worker_service_pb2 as ws
    from distill.v1 import experiment_service_pb2 as es
    names = []
    # Issue 22's reproduction, as submitted, as a filter and as an axis.
    names.append(write("scheduler_fuzzer",
                       session(op(submit_run=teacher_spec(1e-310)))))
    names.append(write("scheduler_fuzzer", session(
        op(submit_run=teacher_spec(0.01)),
        op(list_runs=msg(es.ListRunsRequest, where=["optimizer.lr=1e-310"])))))
    grid = sweep_file("kd-temperature-grid.yaml")
    axis = grid.grid.add()
    axis.path = "optimizer.lr"
    axis.values.append("1e-310")
    names.append(write("scheduler_fuzzer", session(op(submit_sweep=grid))))
    # The examples, and what is done to a sweep.
    for example in ("table1-fashion-mnist.yaml", "kd-temperature-grid.yaml",
                    "cub-200-2011.yaml"):
        sweep = sweep_file(example)
        names.append(write("scheduler_fuzzer", session(
            op(submit_sweep=sweep),
            op(lease=msg(ws.RegisterWorkerRequest, hostname="gpu1")),
            op(complete_run=msg(ws.CompleteRunRequest,
                                checkpoint_sha256="0" * 64,
                                results={"eval/top1": 0.7}), as_leased=True),
            op(annotate=msg(es.AnnotateRequest, run_id=2, note="a <note>",
                            set_tags={"keep": "yes"})),
            op(list_runs=msg(es.ListRunsRequest, tag=["keep=yes"],
                             note_contains="note", member="A*",
                             where=["losses.ikd.temperature=4"])),
            op(sweep_results=msg(es.GetSweepResultsRequest, sweep=sweep.name)),
            op(cancel_sweep=msg(es.SweepRequest, sweep="1")),
            op(retry_sweep=msg(es.SweepRequest, sweep=sweep.name)))))
    # A worker's lease ending each way, and a lease expiring.
    for last in (
            op(complete_run=msg(ws.CompleteRunRequest,
                                checkpoint_sha256="0" * 64,
                                results={"eval/top1": 0.7}), as_leased=True),
            op(fail_run=msg(ws.FailRunRequest, message="NaN loss"),
               as_leased=True),
            op(release_run=msg(ws.ReleaseRunRequest, reason="SIGTERM"),
               as_leased=True),
            op(advance_clock_ms=120000),
            op(cancel_run=msg(es.CancelRunRequest, id=1))):
        names.append(write("scheduler_fuzzer", worker_lease_session(last)))
    # Placement (issue 31): runs that need a device, memory and labels;
    # workers offering some of it; the queue's heads, a watch's reason.
    needs_gpu = teacher_spec(0.01)
    needs_gpu.requirements.device_kind = "cuda"
    needs_gpu.requirements.min_device_memory_gib = 40
    needs_gpu.requirements.labels.append("pool=large")
    needs_label = teacher_spec(0.02)
    needs_label.requirements.labels.extend(["site=b", "pool=small"])
    names.append(write("scheduler_fuzzer", session(
        op(submit_run=needs_gpu),
        op(submit_run=needs_label),
        op(submit_run=teacher_spec(0.03)),
        op(lease=msg(ws.RegisterWorkerRequest, hostname="cpu1", device="cpu",
                     labels=["pool=small", "site=b"],
                     device_memory_bytes=1 << 34, cpu_cores=8)),
        op(lease=msg(ws.RegisterWorkerRequest, hostname="gpu1",
                     device="cuda:0", labels=["pool=large"],
                     device_memory_bytes=80 << 30,
                     accelerator="NVIDIA H100")),
        op(watch_run=1),
        op(list_runs=msg(es.ListRunsRequest, owner="anonymous")))))
    # Fair share and preemption: an owner's policy, a priority sweep that
    # waits behind a run that held its worker long enough, the clock on.
    from distill.v1 import admin_service_pb2 as ad
    urgent = sweep_file("table1-fashion-mnist.yaml")
    urgent.priority = 10
    names.append(write("scheduler_fuzzer", session(
        op(set_owner_policy=msg(ad.SetOwnerPolicyRequest, owner="anonymous",
                                shares=2, max_running=1)),
        op(submit_run=teacher_spec(0.01)),
        op(lease=msg(ws.RegisterWorkerRequest, hostname="gpu1")),
        op(submit_sweep=urgent),
        op(advance_clock_ms=11 * 60 * 1000),
        op(heartbeat=ws.HeartbeatRequest(), as_leased=True),
        op(release_run=msg(ws.ReleaseRunRequest, reason="preempted"),
           as_leased=True),
        op(set_owner_policy=msg(ad.SetOwnerPolicyRequest, owner="x" * 300,
                                shares=0)),
        op(advance_clock_ms=1000))))
    # Extremes of numbers a spec may hold.
    spec = teacher_spec(0.01)
    spec.optimizer.momentum = -0.0
    spec.optimizer.weight_decay = 1.7976931348623157e308
    names.append(write("scheduler_fuzzer", session(op(submit_run=spec))))
    return names


def pages_corpus():
    secret = ("distill_fuzzviewerfuzzviewerfuzzviewerfuzzviewerfuzzviewer"
              "fuzzview")
    host = "Host: 127.0.0.1\r\n"
    requests = {
        0: ["GET / HTTP/1.1\r\n" + host + "\r\n",
            "GET /sweeps/1 HTTP/1.1\r\n" + host + "\r\n",
            "GET /sweeps/fuzz%20%3Cb%3E HTTP/1.1\r\n" + host + "\r\n",
            "GET /runs/1 HTTP/1.1\r\n" + host + "\r\n",
            "GET /runs/99999999999999999999999 HTTP/1.1\r\n" + host + "\r\n",
            "HEAD /runs/2 HTTP/1.0\r\n\r\n",
            "GET /login HTTP/1.1\r\n" + host + "\r\n",
            "POST /sweeps/1 HTTP/1.1\r\n" + host +
            "Content-Length: 3\r\n\r\nabc",
            "GET / HTTP/1.1\r\n" + host + "\r\nGET /runs/1 HTTP/1.1\r\n" +
            host + "Connection: close\r\n\r\n",
            "GET /%zz HTTP/1.1\r\n" + host + "\r\n",
            "POST /login HTTP/1.1\r\n" + host +
            "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET / HTTP/1.1\r\n X-Folded: yes\r\n" + host + "\r\n"],
        1: ["GET / HTTP/1.1\r\n" + host + "\r\n",
            "GET /sweeps/1 HTTP/1.1\r\n" + host + "Authorization: Bearer " +
            secret + "\r\n\r\n",
            "GET /runs/1 HTTP/1.1\r\n" + host + "Cookie: a=b; distill_token=" +
            secret + "\r\n\r\n",
            "POST /login HTTP/1.1\r\n" + host +
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: %d\r\n\r\ntoken=%s" % (len(secret) + 6, secret),
            "GET / HTTP/1.1\r\n" + host + "Authorization: Bearer " + secret +
            "w\r\n\r\n"],
    }
    names = []
    for mode, texts in requests.items():
        for text in texts:
            names.append(write("pages_fuzzer", bytes([mode]) + text.encode()))
            names.append(write("pages_fuzzer",
                               bytes([mode | 2]) + text.encode()))  # TLS.
    return names


if __name__ == "__main__":
    try:
        print("spec_yaml_fuzzer, spec_proto_fuzzer:", len(spec_corpora()),
              "seeds each")
        print("scheduler_fuzzer:", len(scheduler_corpus()), "seeds")
        print("pages_fuzzer:", len(pages_corpus()), "seeds")
    finally:
        shutil.rmtree(GEN, ignore_errors=True)
