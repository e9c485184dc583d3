import torch
import companion
from companion.structured import mass_preserving_network

net = mass_preserving_network((3, 10, 10, 15, 3), layers_per_block=3, hidden=50,
                              method=companion.RK4).double()    # any Runge-Kutta method keeps the sum
x = torch.rand(8, 3, dtype=torch.float64)
print(companion.linear_invariant_drift(net, x))                 # ~1e-16, for every parameter value

layer = companion.VolumePreservingLayer(4, h=0.5).double()       # det J = 1, closed-form inverse
z = torch.randn(8, 4, dtype=torch.float64)
print(companion.jacobian_determinant_error(layer, z), float((layer.inverse(layer(z)) - z).abs().max().detach()))
