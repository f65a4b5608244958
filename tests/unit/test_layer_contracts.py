"""The schemas' contract names every domain module outside the vocabulary.

import-linter forbids by list; a domain module added later must land on
one side or the other, or this test says which one is missing.
"""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import dotmac.ticketing.domain as domain

#: What the schemas may read from the domain (docs/architecture.md).
VOCABULARY = {"calendar", "defaults", "enums", "errors", "limits"}
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_every_domain_module_is_vocabulary_or_forbidden_to_the_schemas() -> None:
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"][
        "contracts"
    ]
    (schemas,) = [
        c for c in contracts if c.get("source_modules") == ["dotmac.ticketing.schemas"]
    ]
    forbidden = {m.rsplit(".", 1)[-1] for m in schemas["forbidden_modules"]}
    modules = {info.name for info in pkgutil.iter_modules(domain.__path__)}
    assert modules - VOCABULARY - forbidden == set(), "add them to the contract"
    assert forbidden & VOCABULARY == set()
    assert forbidden <= modules, "the contract names modules that do not exist"
