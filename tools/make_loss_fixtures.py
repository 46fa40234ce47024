#!/usr/bin/python3
"""Writes tests/fixtures/losses.txt: reference values for the engine's losses.

The paper's four and, after them, the structure-transfer losses of issue 34:
similarity-preserving KD (torchdistill's SPLoss), PKT (the authors'
cosine_similarity_loss), decoupled KD (mdistiller's dkd_loss) and 1 - linear
CKA (Kornblith et al.'s feature form), each with its gradient.

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

# --- The structure-transfer losses of issue 34, each as its authors' code
# computes it (drawn after everything above, so that those values stay).


def sp(fs, ft):
    """Similarity-preserving KD (Tung & Mori 2019; torchdistill's SPLoss)."""
    gs = F.normalize(fs @ fs.t(), p=2, dim=1)
    gt = F.normalize(ft @ ft.t(), p=2, dim=1)
    return (gs - gt).pow(2).sum() / fs.shape[0] ** 2


def pkt(output_net, target_net, eps=0.0000001):
    """Passalis & Tefas's cosine_similarity_loss (probabilistic_kt, nn/pkt.py)."""
    output_net_norm = torch.sqrt(torch.sum(output_net ** 2, dim=1, keepdim=True))
    output_net = output_net / (output_net_norm + eps)
    output_net = torch.where(output_net != output_net,
                             torch.zeros_like(output_net), output_net)
    target_net_norm = torch.sqrt(torch.sum(target_net ** 2, dim=1, keepdim=True))
    target_net = target_net / (target_net_norm + eps)
    target_net = torch.where(target_net != target_net,
                             torch.zeros_like(target_net), target_net)
    model_similarity = torch.mm(output_net, output_net.transpose(0, 1))
    target_similarity = torch.mm(target_net, target_net.transpose(0, 1))
    model_similarity = (model_similarity + 1.0) / 2.0
    target_similarity = (target_similarity + 1.0) / 2.0
    model_similarity = model_similarity / torch.sum(model_similarity, dim=1, keepdim=True)
    target_similarity = target_similarity / torch.sum(target_similarity, dim=1, keepdim=True)
    return torch.mean(target_similarity * torch.log(
        (target_similarity + eps) / (model_similarity + eps)))


def dkd(logits_student, logits_teacher, target, alpha, beta, temperature):
    """mdistiller's dkd_loss (megvii-research/mdistiller, distillers/DKD.py)."""
    gt_mask = torch.zeros_like(logits_student).scatter_(1, target.unsqueeze(1), 1).bool()
    other_mask = torch.ones_like(logits_student).scatter_(1, target.unsqueeze(1), 0).bool()
    pred_student = F.softmax(logits_student / temperature, dim=1)
    pred_teacher = F.softmax(logits_teacher / temperature, dim=1)

    def cat_mask(t, mask1, mask2):
        t1 = (t * mask1).sum(dim=1, keepdims=True)
        t2 = (t * mask2).sum(1, keepdims=True)
        return torch.cat([t1, t2], dim=1)

    pred_student = cat_mask(pred_student, gt_mask, other_mask)
    pred_teacher = cat_mask(pred_teacher, gt_mask, other_mask)
    log_pred_student = torch.log(pred_student)
    tckd_loss = (F.kl_div(log_pred_student, pred_teacher, reduction="sum")
                 * (temperature ** 2) / target.shape[0])
    pred_teacher_part2 = F.softmax(logits_teacher / temperature - 1000.0 * gt_mask, dim=1)
    log_pred_student_part2 = F.log_softmax(logits_student / temperature - 1000.0 * gt_mask, dim=1)
    nckd_loss = (F.kl_div(log_pred_student_part2, pred_teacher_part2, reduction="sum")
                 * (temperature ** 2) / target.shape[0])
    return alpha * tckd_loss + beta * nckd_loss


def cka(x, y):
    """1 - linear CKA in Kornblith et al.'s feature form (eq. 5)."""
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    return 1 - (y.t() @ x).pow(2).sum() / (
        (x.t() @ x).pow(2).sum().sqrt() * (y.t() @ y).pow(2).sum().sqrt())


structure = {"sp": sp, "pkt": pkt, "cka": cka}
# Odd shapes: 5 rows, a student 1 wide, a teacher 11 wide.
out["odd_student"] = torch.randn(5, 1)
out["odd_teacher"] = torch.randn(5, 11) * 2
# Large offsets, as ViT features carry: every row + 1000 (student) and
# + 100 (teacher).
for name, fn in structure.items():
    out[name] = fn(s, t).reshape(1)
    out[name + "_grad"] = grad_of(lambda x: fn(x, t), s)
    out[name + "_odd"] = fn(out["odd_student"], out["odd_teacher"]).reshape(1)
    out[name + "_odd_grad"] = grad_of(lambda x: fn(x, out["odd_teacher"]),
                                      out["odd_student"])
    out[name + "_dup"] = fn(s_dup, t).reshape(1)
    out[name + "_offset"] = fn(s + 1000, t + 100).reshape(1)
for a, b_, tau in ((1.0, 8.0, 4.0), (0.0, 1.0, 1.0), (2.0, 0.5, 2.0)):
    key = "dkd_a%g_b%g_t%g" % (a, b_, tau)
    out[key] = dkd(sl, tl, labels, a, b_, tau).reshape(1)
    out[key + "_grad"] = grad_of(lambda x: dkd(x, tl, labels, a, b_, tau), sl)
# Logits with large offsets (+1000 on the student's, -500 on the teacher's):
# softmax does not move.
out["dkd_offset"] = dkd(sl + 1000, tl - 500, labels, 1.0, 8.0, 4.0).reshape(1)

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
