import torch
from companion import pde, pde_data

size, alpha = 64, 0.01
h, dt = 1 / size, 0.24 / size**2 / alpha
field = pde.exact_cnn("fisher", h=h, alpha=alpha)                 # 511 parameters, = FD right-hand side
net = pde.MethodOfLinesNetwork(field, dt=dt, substeps=3)          # U -> three Euler sub-steps
truth = pde_data.generate_trajectories("fisher", trajectories=4, steps=40, size=size, alpha=alpha)
errors = pde.rollout_metrics(pde.rollout(net, truth[:, 0], 40), truth)
print(errors["relative_error"][-1])                               # about 3e-3: the FD method of lines
