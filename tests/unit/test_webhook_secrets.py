"""Per-project webhook secrets: reading them with the policy, what a token may speak for,
rotation of the default secret, reloads and redaction."""

from __future__ import annotations

import hmac
import os
from pathlib import Path

import pytest

from bot import logs
from bot.policy import PolicyError, parse_policy
from bot.policy_secrets import Scope, WebhookKeys, read_secrets, scope_of
from bot.policy_watch import PolicyHolder
from bot.settings import SettingsError, load_settings
from tests.unit.test_settings import BASE

FIXTURE = (Path(__file__).parent.parent / "fixtures" / "approvers.yml").read_text()
ENTRIES = """
webhook_secrets:
  - project: fintech/wallet-*
    secret_file: wallet.secret
  - project: fintech/payments-api
    secret_env: PAY_OLD
  - project: fintech/payments-api
    secret_env: PAY_NEW
"""
ENV = {"PAY_OLD": "pay-old-secret", "PAY_NEW": "pay-new-secret"}


def keys_in(tmp_path: Path, wallet: str = "wallet-secret\n") -> WebhookKeys:
    (tmp_path / "wallet.secret").write_text(wallet)
    loaded = parse_policy(FIXTURE + ENTRIES, tmp_path / "approvers.yml", environ=ENV)
    return loaded.webhook_keys


def test_each_secret_speaks_for_its_own_projects(tmp_path: Path) -> None:
    keys = keys_in(tmp_path)
    defaults = ("default-old", "default-new")
    wallet = scope_of("wallet-secret", defaults, keys)
    assert wallet == Scope(("fintech/wallet-*",), default=False)
    assert wallet.allows("fintech/wallet-app", keys)
    assert not wallet.allows("fintech/payments-api", keys)
    for token in ("pay-old-secret", "pay-new-secret"):  # a rotation: both accepted
        scope = scope_of(token, defaults, keys)
        assert scope is not None
        assert scope.allows("fintech/payments-api", keys)
        assert not scope.allows("fintech/wallet-app", keys)
    for token in defaults:
        default = scope_of(token, defaults, keys)
        assert default == Scope((), default=True)
        assert default.allows("fintech/ledger-core", keys)  # no entry covers it
        assert not default.allows("fintech/payments-api", keys)
        assert not default.allows("FINTECH/Wallet-App", keys)  # globs ignore case
    for token in (None, "", "wallet-secret ", "pay-old"):
        assert scope_of(token, defaults, keys) is None


def test_every_secret_is_compared_whichever_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = keys_in(tmp_path)
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    for token in ("default", "wallet-secret", "pay-new-secret", "nothing"):
        compared.clear()
        scope_of(token, ("default",), keys)
        assert len(compared) == 4  # one default and three entries, every time
        assert {len(a) for pair in compared for a in pair} == {32}  # digests: equal lengths


def test_the_same_secret_in_two_entries_speaks_for_both(tmp_path: Path) -> None:
    text = ENTRIES.replace("secret_env: PAY_NEW", "secret_file: wallet.secret")
    (tmp_path / "wallet.secret").write_text("shared")
    keys = parse_policy(FIXTURE + text, tmp_path / "p.yml", environ=ENV).webhook_keys
    scope = scope_of("shared", ("default",), keys)
    assert scope == Scope(("fintech/wallet-*", "fintech/payments-api"), default=False)


def test_a_scope_travels_as_json_without_any_secret(tmp_path: Path) -> None:
    keys = keys_in(tmp_path)
    scope = scope_of("pay-old-secret", ("default",), keys)
    assert scope is not None
    data = scope.to_json()
    assert data == {"projects": ["fintech/payments-api"], "default": False}
    assert Scope.from_json(data) == scope
    assert Scope.from_json(None) is None
    assert Scope.from_json({"projects": "nope", "default": "yes"}) == Scope((), False)


def test_secrets_are_read_relative_to_the_policy_and_never_shown(tmp_path: Path) -> None:
    keys = keys_in(tmp_path, wallet="wallet-secret\r\n")
    assert keys.values() == ["wallet-secret", "pay-old-secret", "pay-new-secret"]
    assert keys.files == (tmp_path / "wallet.secret",)
    loaded = parse_policy(FIXTURE + ENTRIES, tmp_path / "approvers.yml", environ=ENV)
    shown = repr(loaded) + str(loaded.policy.model_dump())
    for value in keys.values():
        assert value not in shown


@pytest.mark.parametrize(
    ("entry", "environ", "reason"),
    [
        ("secret_file: missing.secret", {}, "cannot read"),
        ("secret_file: binary.secret", {}, "not UTF-8 text"),
        ("secret_file: blank.secret", {}, "the secret is empty"),
        ("secret_env: HOOK_SECRET", {}, "environment variable HOOK_SECRET is not set"),
        ("secret_env: HOOK_SECRET", {"HOOK_SECRET": " "}, "the secret is empty"),
    ],
)
def test_unusable_secrets_are_problems_with_their_line(
    tmp_path: Path, entry: str, environ: dict[str, str], reason: str
) -> None:
    (tmp_path / "binary.secret").write_bytes(b"\xff\xfe")
    (tmp_path / "blank.secret").write_text("\n")
    text = FIXTURE + f"webhook_secrets:\n  - project: fintech/x-*\n    {entry}\n"
    line = text.count("\n")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, tmp_path / "p.yml", environ=environ)
    [problem] = caught.value.problems
    assert problem.line == line
    assert reason in problem.reason
    assert problem.reason.startswith("webhook_secrets[0].secret_")


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("secret_file: a\n    secret_env: B", "set exactly one of secret_file and secret_env"),
        ("secret_file: ''", "must not be empty"),
        ("secrets: a", "unknown key 'secrets'"),
    ],
)
def test_malformed_entries_are_problems(tmp_path: Path, entry: str, reason: str) -> None:
    text = FIXTURE + f"webhook_secrets:\n  - project: fintech/x-*\n    {entry}\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, tmp_path / "p.yml", environ={})
    assert any(reason in p.reason for p in caught.value.problems), caught.value


def test_commands_that_need_no_secret_do_not_read_them(tmp_path: Path) -> None:
    text = FIXTURE + "webhook_secrets:\n  - project: fintech/x-*\n    secret_env: UNSET_HERE\n"
    loaded = parse_policy(text, tmp_path / "p.yml", environ={}, read_webhook_secrets=False)
    assert loaded.webhook_keys == WebhookKeys()


def test_read_secrets_skips_what_the_schema_reports() -> None:
    raw = [None, {"project": "a"}, {"project": "b", "secret_env": 5}, "text"]
    assert read_secrets(raw, Path(), {}) == (WebhookKeys(), [])


def test_the_default_secret_may_hold_old_and_new_values() -> None:
    settings = load_settings({**BASE, "GITLAB_WEBHOOK_SECRET": "old-secret, new-secret"})
    assert settings.webhook_secrets == ("old-secret", "new-secret")
    assert {"old-secret", "new-secret"} <= set(settings.secret_values())
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, "GITLAB_WEBHOOK_SECRET": "old-secret,"})
    assert "between commas" in str(caught.value)
    assert "old-secret" not in str(caught.value)


def test_a_changed_secret_file_is_in_force_after_the_next_check(tmp_path: Path) -> None:
    secret = tmp_path / "wallet.secret"
    secret.write_text("first-wallet-secret\n")
    policy = tmp_path / "approvers.yml"
    policy.write_text(
        FIXTURE + "webhook_secrets:\n  - project: fintech/w-*\n    secret_file: wallet.secret\n"
    )
    logs.clear_secrets()
    try:
        holder = PolicyHolder(str(policy))
        assert holder.current.webhook_keys.values() == ["first-wallet-secret"]
        version = holder.current.version
        secret.write_text("second-wallet-secret-longer\n")
        os.utime(secret, ns=(1, 1))  # a new signature even within one clock tick
        assert holder.check_for_changes() is not None
        assert holder.current.version == version  # the policy file itself did not change
        assert holder.current.webhook_keys.values() == ["second-wallet-secret-longer"]
        assert logs.redact("x first-wallet-secret second-wallet-secret-longer") == (
            "x [REDACTED] [REDACTED]"
        )
        secret.unlink()  # refused: the previous secrets stay in force
        assert holder.check_for_changes() is None
        assert holder.current.webhook_keys.values() == ["second-wallet-secret-longer"]
    finally:
        logs.clear_secrets()
