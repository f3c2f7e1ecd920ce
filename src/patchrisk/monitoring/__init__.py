"""Production monitoring: the prediction log sink, the shared prediction-log format, drift checks."""
