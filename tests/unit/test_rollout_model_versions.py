"""`rollout start --model-version`: a registered version is digits only, compared as a number, and the
dry run answers as the real run does. '01' passed the dry run's "already the champion" check as text
(and said "would commit"); ' 1' and a fullwidth '１' passed it too, then the real run was refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.rollout.actions import start
from patchrisk.rollout.state import Ref, registered_version


def _ctx(champion: str = "1"):
    journal = SimpleNamespace(phase="promoted", canary=None, champion=Ref(version=champion, uri="s3://m/v1/"))
    return SimpleNamespace(journal=journal, environment="staging")


@pytest.mark.parametrize("given", ["01", "1", "001"])
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
def test_the_champion_written_with_leading_zeros_is_the_champion(given, dry_run):
    with pytest.raises(PatchriskError, match=r"^v1 is already the champion in staging$"):
        start(_ctx("1"), given, dry_run=dry_run)


@pytest.mark.parametrize("given", [" 1", "1 ", "１", "v2", "2.0", "", "0", "-1", "²"])
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
def test_a_version_that_is_no_version_number_is_refused_naming_the_option(given, dry_run):
    with pytest.raises(PatchriskError, match=rf"^--model-version {given!r}: not a registered version number"):
        start(_ctx("1"), given, dry_run=dry_run)


def test_a_version_number_is_written_without_leading_zeros():
    assert registered_version("0042") == "42" and registered_version(7) == "7"
