"""jgraph's built-in scorers. Importing this package registers them by name:

operators   none, translation, diagonal, complex_diagonal, linear, affine, rotate, quate
comparators dot, cos, l2, squared_l2
losses      ranking, logistic, softmax, logsigmoid (each but softmax also self-adversarial)
regularizers n3

A new scorer is one module here (or anywhere listed in the config's `plugins`) that registers into
`jgraph.core.scorer`'s registries, plus a yaml under conf/.
"""

from models import comparators, losses, operators, regularizers, rotations  # noqa: F401  (registration)
