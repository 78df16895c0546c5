# Reference numbers for test/train/optimizer.test.ts from torch.optim (run with /usr/bin/python3,
# which has torch): three steps of AdamW and SGD on fixed parameters and gradients. The test holds
# the printed values; torch is not needed to run the tests.
import torch

torch.set_default_dtype(torch.float64)
p0 = [0.5, -1.0, 2.0, 0.0]
b0 = [1.0, 0.25]
grads = [
    ([0.1, -0.2, 0.3, 0.0], [0.5, -0.5]),
    ([-0.4, 0.1, 0.0, 1.0], [0.1, 0.2]),
    ([0.2, 0.2, -0.3, 0.5], [-1.0, 0.3]),
]

def run(make):
    w = torch.tensor(p0, requires_grad=True)  # a "matrix" (decayed)
    b = torch.tensor(b0, requires_grad=True)  # a 1-D tensor (not decayed)
    opt = make([{"params": [w]}, {"params": [b], "weight_decay": 0.0}])
    lrs = [0.1, 0.05, 0.02]
    for (gw, gb), lr in zip(grads, lrs):
        for g in opt.param_groups:
            g["lr"] = lr
        w.grad = torch.tensor(gw)
        b.grad = torch.tensor(gb)
        opt.step()
    return [round(x, 12) for x in w.tolist()], [round(x, 12) for x in b.tolist()]

print("adamw", run(lambda groups: torch.optim.AdamW(groups, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)))
print("sgd", run(lambda groups: torch.optim.SGD(groups, lr=0.1, momentum=0.9, weight_decay=0.1)))
print("nesterov", run(lambda groups: torch.optim.SGD(groups, lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True)))
