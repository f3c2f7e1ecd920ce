"""Package layout: the shared core lives in src/patchrisk, the command line and the local loop that
drives it (`make run`) in src/patchrisk_cli and src/patchrisk_demo; the KFP components, pipelines
and the KServe predictor keep their own top-level folders but install with it, so every stage
imports one copy of specs and schema. (pyproject.toml holds everything else.)"""

from setuptools import find_packages, setup

ROOTS = {
    "patchrisk": "src/patchrisk",
    "patchrisk_cli": "src/patchrisk_cli",
    "patchrisk_demo": "src/patchrisk_demo",
    "patchrisk_components": "components",
    "patchrisk_pipelines": "pipelines",
    "patchrisk_serving": "serving",
}

packages = []
package_dir = {}
for name, path in ROOTS.items():
    packages.append(name)
    package_dir[name] = path
    for sub in find_packages(path):
        packages.append(f"{name}.{sub}")

setup(packages=packages, package_dir=package_dir)
