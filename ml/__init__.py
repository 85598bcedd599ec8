"""HematoVision ML core: data, training, evaluation and the serving Predictor (no Django)."""
