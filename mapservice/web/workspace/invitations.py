"""Inviting someone, for the pages and the API alike: the core creates the account and the one-time link; the
link goes by e-mail when an SMTP server is configured, otherwise back to the administrator to pass on."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Mapping

from flask import url_for

from ... import mail
from ...accounts import store
from ...accounts.store import AccountSpec
from ...accounts.values import Actor, Scope
from ...errors import InvalidParameter
from ...settings import Settings

SCOPE_FIELDS = {"academies": "academie", "departements": "departement", "platforms": "platform", "sites": "site"}


def scope_values(lists: Mapping[str, Iterable]) -> tuple[Scope, ...]:
    """{"departements": ["35"], "sites": [12]} -> scopes; identifiers of platforms and sites are numbers."""
    scopes = []
    for field, kind in SCOPE_FIELDS.items():
        values = lists.get(field) or ()
        if isinstance(values, str):
            values = values.replace(",", " ").split()
        for value in values:
            if kind in ("platform", "site"):
                if not str(value).isdigit():
                    raise InvalidParameter(f"« {str(value)[:20]} » n'est pas un identifiant.", parameter=field)
                value = int(value)
            scopes.append(Scope(**{kind: str(value) if kind in ("academie", "departement") else value}))
    return tuple(scopes)


def public_url(settings: Settings, endpoint: str, **values) -> str:
    base = settings.workspace.public_url
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def invite(conn, actor: Actor, spec: AccountSpec, settings: Settings) -> tuple[int, str | None]:
    """(account id, the link when it was not e-mailed)."""
    days = settings.workspace.invitation_days
    account_id, secret = store.invite(conn, actor, spec, dt.timedelta(days=days))
    link = public_url(settings, "workspace.activate", jeton=secret)
    if mail.configured(settings.mail):
        mail.invitation(settings.mail, store.account(conn, account_id)["email"], link, days)
        return account_id, None
    return account_id, link
