"""Package layout: the shared core lives in src/patchrisk; the KFP components, pipelines and the
KServe predictor keep their own top-level folders but install with it, so every stage imports
one copy of specs and schema. (pyproject.toml holds everything else.)"""

from setuptools import find_packages, setup

ROOTS = {
    "patchrisk": "src/patchrisk",
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
