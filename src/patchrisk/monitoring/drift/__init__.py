"""Drift monitoring job: reference vs a window of logged predictions, decisions, triggers, alerts.

Modules, in the order the job uses them: ``config`` (YAML policy), ``reference`` (the champion's
stored statistics), ``window`` (chunked reading of logged predictions), ``statistics``
(incremental histograms and sketches), ``decision`` (per-feature verdicts), ``performance``
(labels), ``evidently_report`` (HTML), ``trigger`` (retraining policy and state), ``launcher``
(KFP API or local runs), ``alerts`` and ``job`` (the whole run).
"""
