import torch
import companion

(x_train, y_train), (x_test, y_test) = companion.digits(seed=0)
model = companion.lipschitz_classifier(64, 10, width=64, depth=6)       # 1-Lipschitz for every weight
companion.fit(model, (x_train, y_train), epochs=30, lr=1e-2, loss=companion.hinge_loss(1.0), schedule="onecycle")
bound = companion.network_lipschitz_bound(model)                         # count every preprocessing map
print(companion.robustness_report(model, x_test, y_test, epsilon=0.5, lipschitz=bound, steps=100, restarts=1))
radii = companion.certified_radius(model(x_test), lipschitz=bound)      # per-image guarantee
