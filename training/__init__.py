"""Training subpackage: models, data, losses, training, evaluation and export (needs torch)."""
