"""TF-GNN link prediction for donor -> nonprofit matching.

TF-GNN 1.0.3 only works with Keras 2, so legacy Keras (tf_keras) must be selected before anything
imports TensorFlow. Nothing heavy is imported here: the API loads artifacts without TensorFlow.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
