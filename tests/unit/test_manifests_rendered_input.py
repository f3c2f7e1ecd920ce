"""`patchrisk manifests check --rendered` on files it is handed: a document whose apiVersion, kind or
metadata has the wrong type is a finding naming the document and field (it was a TypeError traceback,
exit 1 read as "findings"), and a file that is no UTF-8 text is named, exit 2 (it cannot be checked)."""

from __future__ import annotations

import pytest

from patchrisk.manifests_check import ManifestsCheckError, check_rendered
from tests.cli_support import run_patchrisk
from tests.conftest import REPO

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: web, image: nginx:1.27}]}\n"


@pytest.mark.parametrize(("document", "field", "problem"), [
    ("apiVersion: v1\nkind: [Pod]\n", "kind", "kind must be text, got a list"),
    ("apiVersion: 5\nkind: Pod\n", "apiVersion", "apiVersion must be text, got an int"),
    ("apiVersion: v1\nkind: {Pod: 1}\n", "kind", "kind must be text, got a dict"),
    ("apiVersion: v1\nkind: Pod\nmetadata: 7\n", "metadata", "metadata must be a mapping, got an int"),
])
def test_a_document_with_a_field_of_the_wrong_type_is_a_finding_naming_it(tmp_path, document, field, problem):
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(f"{POD}---\n{document}")
    report = check_rendered(rendered, repo_root=REPO)
    [finding] = report.findings
    assert (finding.source, finding.obj, finding.field, finding.rule) == \
        ("rendered.yaml", "document 2", field, "k8s-schema")
    assert finding.message == f"not a Kubernetes object ({problem})"


def test_a_file_that_is_no_utf8_text_is_named_and_cannot_be_checked(tmp_path, capsys, monkeypatch):
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(POD, encoding="utf-16")
    with pytest.raises(ManifestsCheckError, match=rf"^--rendered {rendered}: not UTF-8 text"):
        check_rendered(rendered, repo_root=REPO)
    ran = run_patchrisk(["manifests", "check", "--repo", REPO, "--rendered", rendered], capsys, monkeypatch)
    assert ran.exit_code == 2
    assert ran.stderr.startswith(f"error: --rendered {rendered}: not UTF-8 text")
