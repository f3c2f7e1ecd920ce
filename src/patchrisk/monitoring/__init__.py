"""Monitoring: the prediction log sink (sink/), drift analysis and retraining triggers (drift/)."""
