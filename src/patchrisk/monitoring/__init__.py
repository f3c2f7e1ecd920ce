"""Monitoring of served models: prediction logs, drift analysis and retraining triggers."""
