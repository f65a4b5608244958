"""How a tenant configures its e-mail: the settings, and what the notifier reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from dotmac.ticketing.consumers.notify.directory import SettingsTenantDirectory
from dotmac.ticketing.consumers.notify.rules import (
    ConfigTenantDirectory,
    MailPreferences,
)
from dotmac.ticketing.domain.tenant_config import parse
from dotmac.ticketing.domain.tenant_config_aggregate import default_settings_document
from dotmac.ticketing.schemas.tenant_config import TenantSettingsDocument


def stored(document: dict[str, Any]) -> dict[str, Any]:
    return TenantSettingsDocument.model_validate(document).document()


def test_the_defaults_are_english_a_thirty_second_window_and_no_reply_address() -> None:
    assert stored({})["notifications"] == {"locale": "en", "email_coalesce_seconds": 30}
    assert default_settings_document()["notifications"] == stored({})["notifications"]
    assert MailPreferences.from_config(parse(stored({}))) == MailPreferences(
        locale="en", timezone="UTC", reply_to=None, coalesce_seconds=30
    )


def test_a_locale_is_checked_and_stored_in_one_spelling() -> None:
    document = stored({"notifications": {"locale": "en-gb"}})
    assert document["notifications"]["locale"] == "en_GB"
    with pytest.raises(ValidationError) as refused:
        stored({"notifications": {"locale": "klingon-xx"}})
    assert refused.value.errors()[0]["loc"] == ("notifications", "locale")


@pytest.mark.parametrize(
    "notifications",
    [
        {"email_coalesce_seconds": -1},
        {"email_coalesce_seconds": 3601},
        {"email_coalesce_seconds": "30"},
        {"reply_to": "not an address"},
        {"unknown": 1},
    ],
)
def test_bad_mail_settings_are_refused(notifications: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        stored({"notifications": notifications})


def test_the_notifier_reads_the_zone_locale_window_and_names_from_the_settings() -> (
    None
):
    document = stored(
        {
            "business_hours": {
                "timezone": "Europe/Berlin",
                "week": {"mon": ["08:00", "18:00"]},
            },
            "notifications": {
                "locale": "de",
                "reply_to": "replies@acme.test",
                "email_coalesce_seconds": 0,
            },
            "teams": [
                {"name": "Support", "agents": [{"id": "a-1", "name": "Grace Hopper"}]}
            ],
        }
    )
    directory = SettingsTenantDirectory(lambda tenant: (1, document))
    asyncio.run(directory.refresh("acme"))
    assert directory.preferences("acme") == MailPreferences(
        locale="de",
        timezone="Europe/Berlin",
        reply_to="replies@acme.test",
        coalesce_seconds=0,
    )
    agent = directory.agent("acme", "a-1")
    assert agent is not None and agent.name == "Grace Hopper"


def test_a_config_tenant_has_its_own_preferences_and_others_the_defaults() -> None:
    directory = ConfigTenantDirectory(
        {"tenants": {"acme": {"notifications": {"email_coalesce_seconds": 5}}}}
    )
    assert directory.preferences("acme").coalesce_seconds == 5
    assert directory.preferences("other") == MailPreferences()
