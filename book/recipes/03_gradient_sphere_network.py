import torch
import companion

net = companion.gradient_sphere_network(1, 1, width=10, depth=3, hidden=16, h=0.5,
                                        activation="relu", learn_step=True)
x = torch.randn(512, 1)
y = x.abs() + torch.sin(x) + x**2
history = companion.fit(net, (x, y), epochs=20, lr=1e-2, batch_size=128, progress=False)

layer = companion.SpherePreservingLayer(4, method="cayley")  # "euler" raises ValueError
print(companion.norm_drift(layer, torch.randn(8, 4)))             # ~1e-7 in float32
print(companion.symmetry_error(companion.GradientLayer(4), torch.randn(8, 4)))
