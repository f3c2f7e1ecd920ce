"""``patchrisk manifests check``: render the kustomize overlays and check them before any cluster
sees them - Kubernetes and KServe schemas, checkov, hadolint, and KServe rules schemas cannot
express. Each module does one of those jobs; ``runner`` ties them together."""

from patchrisk.manifests_check.errors import ManifestsCheckError
from patchrisk.manifests_check.findings import Finding, Report
from patchrisk.manifests_check.runner import check_overlays, check_rendered

__all__ = ["Finding", "ManifestsCheckError", "Report", "check_overlays", "check_rendered"]
