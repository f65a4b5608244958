"""The reference pages of docs/reference/ are what the code generates.

They are written by ``ticketing docs`` from the deployment settings, the
tenant settings models and the analysts' views; a page edited by hand, or
code changed without regenerating, fails here with the command to run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dotmac.ticketing.entry.cli import app
from dotmac.ticketing.entry.reference_docs import (
    PAGES,
    REFERENCE_DIR,
    ReferencePage,
    analytics_views_reference,
    anchor,
    constraints,
    document_models,
    settings_reference,
    stale_pages,
    tenant_settings_reference,
    write_pages,
)
from dotmac.ticketing.projections.analytics_views import VIEWS
from dotmac.ticketing.schemas.tenant_config import TenantSettingsDocument
from dotmac.ticketing.service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run `PYTHONPATH=src ticketing docs` and commit docs/reference/"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_the_committed_page_is_what_the_code_generates(page: ReferencePage) -> None:
    path = ROOT / REFERENCE_DIR / page.name
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: {REGENERATE}"
    committed = path.read_text(encoding="utf-8")
    assert committed == page.render(), (
        f"{path.relative_to(ROOT)} differs from the code: {REGENERATE}"
    )


def test_every_setting_has_its_variable_and_a_description_on_the_page() -> None:
    page = settings_reference()
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} needs a Field(description=...)"
        assert f"| `{field.validation_alias}` |" in page


def test_every_tenant_settings_section_and_field_is_described() -> None:
    page = tenant_settings_reference()
    for name, model in document_models(TenantSettingsDocument).items():
        assert model.__doc__, f"{name} needs a docstring"
        assert f"\n## {name}\n" in page
        for field_name, field in model.model_fields.items():
            schema = model.model_json_schema()["properties"][field_name]
            described = field.description or schema.get("description")
            assert described, f"{name}.{field_name} needs a Field(description=...)"


def test_each_section_says_where_it_sits_in_the_document() -> None:
    page = tenant_settings_reference()
    assert "## Agent\n\nAt `teams[].agents[]`." in page
    assert "At `integrations.<key>.auth`." in page
    # Defaults come from the models, default factories included.
    assert (
        "| `by_category` | map of one of `technical_support`, `billing`, `account`,"
        " `service_request`, `complaint`, `general` to string |"
        ' `{"technical_support": "technical_support", "billing": "billing"}` |'
    ) in page
    assert "| `critical` | [SLATarget](#slatarget) |" in page


def test_every_analytics_view_and_column_is_on_the_page() -> None:
    page = analytics_views_reference()
    for view in VIEWS:
        assert f"## `analytics.{view.name}`\n\n{view.comment}\n" in page
        for column, type_, _ in view.columns:
            assert f"| `{column}` | {type_} |" in page


def test_schema_limits_are_put_in_words() -> None:
    defs: dict[str, dict[str, object]] = {}
    assert constraints({"exclusiveMinimum": 0, "maximum": 60}, defs) == [
        "> 0",
        "≤ 60",
    ]
    assert constraints(
        {"type": "array", "maxItems": 5, "items": {"minLength": 1, "maxLength": 50}},
        defs,
    ) == ["at most 5 items", "each 1–50 characters"]
    assert constraints(
        {"anyOf": [{"type": "string", "pattern": "^a$"}, {"type": "null"}]}, defs
    ) == ["matches `^a$`"]


def test_anchors_are_the_ones_github_gives_headings() -> None:
    assert anchor("SLATarget") == "slatarget"
    assert anchor("`analytics.ticket_facts`") == "analyticsticket_facts"
    assert anchor("Readiness: `GET /ready`") == "readiness-get-ready"


def test_the_command_writes_the_pages_and_checks_them(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "reference"

    written = runner.invoke(app, ["docs", "--output", str(out)])
    assert written.exit_code == 0, written.output
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in PAGES)
    assert stale_pages(out) == []
    assert runner.invoke(app, ["docs", "--output", str(out), "--check"]).exit_code == 0

    (out / "settings.md").write_text("edited by hand\n", encoding="utf-8")
    checked = runner.invoke(app, ["docs", "--output", str(out), "--check"])
    assert checked.exit_code == 1
    assert "settings.md: differs from the code; run `ticketing docs`" in checked.output
    assert (out / "settings.md").read_text(encoding="utf-8") == "edited by hand\n"

    assert write_pages(out) == [out / "settings.md"]
    assert stale_pages(out) == []
