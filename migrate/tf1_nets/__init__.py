"""Reference TF1 graph builders (tf_slim layers) that parity runs as the original model."""
