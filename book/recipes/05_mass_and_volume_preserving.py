import torch

import companion
from companion.structured import mass_preserving_network, positive_mass_network

x = torch.rand(8, 3, dtype=torch.float64)
x = x / x.sum(-1, keepdim=True)  # concentrations: >= 0, summing to 1

# Mass: any Runge-Kutta method keeps the sum, for every parameter value.
net = mass_preserving_network((3, 10, 10, 15, 3), hidden=25, method=companion.RK4)
net = net.double()
print(companion.linear_invariant_drift(net, x))  # ~1e-16

# Mass and sign: the exponential exit step keeps both, for every step size.
positive = positive_mass_network((3, 3, 3), layers_per_block=6, h=5.0).double()
with torch.no_grad():
    y = x
    for _ in range(100):
        y = positive(y)
print(bool((y >= 0).all()), float((y.sum(-1) - 1).abs().max()))  # True ~1e-15

# Volume in any dimension, odd included: one shear per block, det J = 1.
layer = companion.VolumePreservingLayer(3, blocks=(1, 1, 1), hidden=16, h=0.5).double()
z = torch.randn(8, 3, dtype=torch.float64)
print(companion.jacobian_determinant_error(layer, z))  # ~1e-16
with torch.no_grad():
    print(float((layer.inverse(layer(z)) - z).abs().max()))  # exact inverse
