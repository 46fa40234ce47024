#!/usr/bin/python3
"""Writes tests/fixtures/losses.txt: reference values for the engine's losses.

Run once with Debian's python3-torch (`/usr/bin/python3 tools/make_loss_fixtures.py`);
the output is committed. Losses are computed here independently of the C++
engine: CE and KL with torch.nn.functional, RKD exactly as the authors'
reference code (lenscloth/RKD, metric/loss.py) does. Everything is float64.

Format: one tensor a line, `name dim0 dim1 ... : v0 v1 ...` (row-major).
"""
import os

import torch
import torch.nn.functional as F

torch.manual_seed(20191)
torch.set_default_dtype(torch.float64)


def pdist(e, squared=False, eps=1e-12):
    e_square = e.pow(2).sum(dim=1)
    prod = e @ e.t()
    res = (e_square.unsqueeze(1) + e_square.unsqueeze(0) - 2 * prod).clamp(min=eps)
    if not squared:
        res = res.sqrt()
    res = res.clone()
    res[range(len(e)), range(len(e))] = 0
    return res


def rkd_distance(student, teacher):
    with torch.no_grad():
        t_d = pdist(teacher, squared=False)
        mean_td = t_d[t_d > 0].mean()
        t_d = t_d / mean_td
    d = pdist(student, squared=False)
    mean_d = d[d > 0].mean()
    d = d / mean_d
    return F.smooth_l1_loss(d, t_d, reduction="mean")


def rkd_angle(student, teacher):
    with torch.no_grad():
        td = teacher.unsqueeze(0) - teacher.unsqueeze(1)
        norm_td = F.normalize(td, p=2, dim=2)
        t_angle = torch.bmm(norm_td, norm_td.transpose(1, 2)).view(-1)
    sd = student.unsqueeze(0) - student.unsqueeze(1)
    norm_sd = F.normalize(sd, p=2, dim=2)
    s_angle = torch.bmm(norm_sd, norm_sd.transpose(1, 2)).view(-1)
    return F.smooth_l1_loss(s_angle, t_angle, reduction="mean")


def ikd(student_logits, teacher_logits, tau, scale):
    kl = F.kl_div(F.log_softmax(student_logits / tau, dim=1),
                  F.softmax(teacher_logits / tau, dim=1), reduction="batchmean")
    return kl * tau * tau if scale else kl


def grad_of(fn, x):
    x = x.clone().requires_grad_(True)
    fn(x).backward()
    return x.grad


out = {}
n, classes, d_student, d_teacher = 6, 5, 7, 3
out["labels"] = torch.tensor([0, 3, 1, 4, 2, 3], dtype=torch.float64)
out["student_logits"] = torch.randn(n, classes) * 2
out["teacher_logits"] = torch.randn(n, classes) * 3
out["student_embedding"] = torch.randn(n, d_student)
# Two identical rows: a zero difference must stay zero in the angle term.
student_dup = torch.randn(n, d_student)
student_dup[4] = student_dup[1]
out["student_embedding_dup"] = student_dup
out["teacher_embedding"] = torch.randn(n, d_teacher) * 4
out["projection_weight"] = torch.randn(d_teacher, d_student) * 0.5
out["projection_bias"] = torch.randn(d_teacher)

labels = out["labels"].long()
sl, tl = out["student_logits"], out["teacher_logits"]
s, s_dup, t = out["student_embedding"], out["student_embedding_dup"], out["teacher_embedding"]
w, b = out["projection_weight"], out["projection_bias"]

out["ce"] = F.cross_entropy(sl, labels).reshape(1)
out["mse_projected"] = F.mse_loss(s @ w.t() + b, t).reshape(1)
out["mse_projected_grad_weight"] = grad_of(lambda x: F.mse_loss(s @ x.t() + b, t), w)
out["ikd_tau4_scaled"] = ikd(sl, tl, 4.0, True).reshape(1)
out["ikd_tau4_unscaled"] = ikd(sl, tl, 4.0, False).reshape(1)
out["ikd_tau1"] = ikd(sl, tl, 1.0, True).reshape(1)
out["ikd_tau4_grad"] = grad_of(lambda x: ikd(x, tl, 4.0, True), sl)
out["rkd_distance"] = rkd_distance(s, t).reshape(1)
out["rkd_distance_grad"] = grad_of(lambda x: rkd_distance(x, t), s)
out["rkd_angle"] = rkd_angle(s, t).reshape(1)
out["rkd_angle_grad"] = grad_of(lambda x: rkd_angle(x, t), s)
out["rkd_distance_dup"] = rkd_distance(s_dup, t).reshape(1)
out["rkd_angle_dup"] = rkd_angle(s_dup, t).reshape(1)

# The weighted objective DESIGN.md defines, on the projected student
# embedding g(f) = s W^T + b: w_ce CE + w_mse MSE + w_ikd IKD + w_rkd_d RKD_D
# + w_rkd_a RKD_A, and its gradient with respect to the student's logits.
ow = {"ce": 0.5, "mse": 2.0, "ikd": 1.5, "tau": 4.0, "rkd_d": 1.0, "rkd_a": 2.0}
out["objective_weights"] = torch.tensor(
    [ow["ce"], ow["mse"], ow["ikd"], ow["tau"], ow["rkd_d"], ow["rkd_a"]])


def objective(logits):
    p = s @ w.t() + b
    return (ow["ce"] * F.cross_entropy(logits, labels)
            + ow["mse"] * F.mse_loss(p, t)
            + ow["ikd"] * ikd(logits, tl, ow["tau"], True)
            + ow["rkd_d"] * rkd_distance(p, t)
            + ow["rkd_a"] * rkd_angle(p, t))


out["objective_total"] = objective(sl).reshape(1)
out["objective_grad_logits"] = grad_of(objective, sl)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                    "fixtures", "losses.txt")
with open(path, "w") as f:
    f.write("# Made by tools/make_loss_fixtures.py with PyTorch %s. Do not edit.\n"
            % torch.__version__)
    for name, value in out.items():
        dims = " ".join(str(d) for d in value.shape)
        values = " ".join(repr(float(v)) for v in value.reshape(-1).tolist())
        f.write("%s %s : %s\n" % (name, dims, values))
print("wrote", path)
