"""patchrisk core: model specs, feature schema, settings, data generation and drift statistics.

Every stage (KFP components, pipelines, the KServe predictor, monitoring, rollout) imports this
package; none of them re-declares a feature list.
"""

__version__ = "0.1.0"
