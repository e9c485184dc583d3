import torch
import companion
from companion import lipschitz

(x_train, y_train), (x_test, y_test) = companion.digits(seed=0)
torch.manual_seed(0)
# centred pixels (a translation: L = 1), five gradient steps on an overcomplete
# potential (90 ridge functions in R^64) and a normalised readout: 1-Lipschitz
# for any weights
model = companion.lipschitz_classifier(
    64, 10, width=64, depth=5, hidden=90, h=0.5, lift=False,
    preprocessing=lipschitz.Standardize(x_train.mean(0), 1.0))
companion.fit(model, (x_train, y_train), epochs=30, lr=0.1, batch_size=64,
              loss=companion.offset_cross_entropy(1.1, temperature=0.1),
              schedule="onecycle")
deployed = lipschitz.export(model)  # plain layers, the same function
bound = companion.network_lipschitz_bound(deployed)  # recomputed from its weights
for eps in (0.25, 0.5, 0.8):
    certified = lipschitz.certified_accuracy(deployed, x_test, y_test,
                                             lipschitz=bound, epsilon=eps)
    print(f"certified at {eps}: {certified:.1%}")
report = companion.robustness_report(
    deployed, x_test, y_test, epsilon=0.5, lipschitz=bound, bounds=(0.0, 1.0)
)  # APGD; pixels stay in [0, 1]
print(report)
attempts, found = companion.certificate_check(deployed, x_test, y_test, lipschitz=bound)
print(f"{found} adversarial examples inside {attempts} certified radii")
