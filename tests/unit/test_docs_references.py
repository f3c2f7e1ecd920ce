"""The files the docs send readers to exist: a test, module or manifest moved without its mention
sends a platform engineer looking for a check that is somewhere else (docs/security.md named two
tests under tests/unit/ that live in tests/integration/)."""

import re

from tests.conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "manifests" / "README.md"]
# A repository path in backticks: a known top-level folder, then a file name with an extension.
REFERENCE = re.compile(r"`((?:tests|src|serving|pipelines|components|manifests|infra|bench|docs)/[\w./-]+\.\w+)`")


def test_every_repository_file_the_docs_name_exists():
    missing = [f"{doc.relative_to(REPO)}: {path}" for doc in DOCS
               for path in REFERENCE.findall(doc.read_text()) if not (REPO / path).exists()]
    assert not missing, "\n".join(missing)
