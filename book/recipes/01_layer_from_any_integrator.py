import torch
import companion as C

field = C.MLPField(8, 32)                                 # F(x) = B tanh(Ax + b)
layer = C.FlowLayer(field, h=0.1, n_steps=2, method=C.RK4)  # two RK4 steps of size 0.05
# lift to width 8, six Heun layers, project to 10 outputs
net = C.resnet(2, 10, width=8, depth=6, T=1.0, method=C.HEUN)
y = net(torch.randn(32, 2))
