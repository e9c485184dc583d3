from companion import pde

size, alpha = 64, 0.01
h, dt = 1 / size, 0.24 / size**2 / alpha
# 511 parameters whose output equals the finite-difference right-hand side
field = pde.exact_cnn("fisher", h=h, alpha=alpha)
# U -> three Euler sub-steps of size dt / 3
net = pde.MethodOfLinesNetwork(field, dt=dt, substeps=3)
truth = pde.data.generate_trajectories("fisher", trajectories=4, steps=40,
                                       size=size, alpha=alpha)
prediction = pde.rollout(net, truth[:, 0], 40)
errors = pde.rollout_metrics(prediction, truth)
print(errors["relative_error"][-1])  # about 3e-3: the FD method of lines
