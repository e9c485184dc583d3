import torch
from companion.presnov import decompose, skew_matrix

def field(x):  # any autograd-differentiable map (batch, dim) -> (batch, dim)
    return torch.sin(x).roll(1, -1) + x**2

x = torch.randn(100, 3, dtype=torch.float64)
V, grad_V, X_S = decompose(field, x, nodes=16)  # V(0) = 0, x . X_S = 0
S = skew_matrix(x, X_S)                         # X_S = S(x) x with S skew
print(float((x * X_S).sum(-1).abs().max()))
