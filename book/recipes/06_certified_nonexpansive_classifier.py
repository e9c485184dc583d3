import torch
import companion

(x_train, y_train), (x_test, y_test) = companion.digits(seed=0)
# 1-Lipschitz for any weights
model = companion.lipschitz_classifier(64, 10, width=64, depth=6)
companion.fit(model, (x_train, y_train), epochs=30, lr=1e-2,
              loss=companion.hinge_loss(1.0), schedule="onecycle")
bound = companion.network_lipschitz_bound(model)  # count every preprocessing map
report = companion.robustness_report(
    model, x_test, y_test, epsilon=0.5, lipschitz=bound, bounds=(0.0, 1.0)
)  # APGD; pixels stay in [0, 1]
print(report)
with torch.no_grad():
    radii = companion.certified_radius(model(x_test), lipschitz=bound)  # one per digit
attempts, found = companion.certificate_check(model, x_test, y_test, lipschitz=bound)
print(f"{found} adversarial examples inside {attempts} certified radii")
