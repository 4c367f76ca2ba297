"""Settings: secrets from `<NAME>_FILE`, the webhook signing key, problems without values."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bot.settings import (
    SECRET_SETTINGS,
    SettingsError,
    decode_signing_key,
    load_settings,
    url_password,
)

KEY = base64.b64encode(bytes(range(32))).decode()
BASE = {
    "GITLAB_URL": "https://gitlab.example.com",
    "GITLAB_TOKEN": "glpat-settings-test-token",
    "GITLAB_WEBHOOK_SECRET": "webhook-secret-value",
    "SLACK_BOT_TOKEN": "xoxb-settings-test",
    "SLACK_SIGNING_SECRET": "signing-secret-value",
}


def problems_of(env: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    return caught.value.problems


@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_every_secret_may_come_from_a_file(tmp_path: Path, name: str) -> None:
    value = f"whsec_{KEY}" if name == "GITLAB_WEBHOOK_SIGNING_KEY" else f"from-file-{name}"
    secret_file = tmp_path / name.lower()
    secret_file.write_text(value + "\n")  # as `echo value > file` and `kubectl` write it
    env = {k: v for k, v in BASE.items() if k != name}
    env[f"{name}_FILE"] = str(secret_file)
    settings = load_settings(env)
    held = getattr(settings, name)
    assert held is not None
    assert held.get_secret_value() == value
    assert value not in repr(settings)


def test_only_trailing_newlines_are_stripped(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text(" spaced token \r\n\n")
    env = {k: v for k, v in BASE.items() if k != "GITLAB_TOKEN"}
    settings = load_settings({**env, "GITLAB_TOKEN_FILE": str(secret_file)})
    assert settings.GITLAB_TOKEN.get_secret_value() == " spaced token "


def test_setting_both_the_value_and_the_file_is_an_error(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("file-value-xyz")
    problems = problems_of({**BASE, "GITLAB_TOKEN_FILE": str(secret_file)})
    assert problems == ["both GITLAB_TOKEN and GITLAB_TOKEN_FILE are set; set only one of them"]


def test_an_empty_value_next_to_a_file_counts_as_unset(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("file-value-xyz")
    env = {**BASE, "GITLAB_TOKEN": "", "GITLAB_TOKEN_FILE": str(secret_file)}
    assert load_settings(env).GITLAB_TOKEN.get_secret_value() == "file-value-xyz"


def test_an_unreadable_file_names_the_variable_and_path_only(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    env = {k: v for k, v in BASE.items() if k != "SLACK_BOT_TOKEN"}
    problems = problems_of({**env, "SLACK_BOT_TOKEN_FILE": str(missing)})
    assert problems == [
        f"cannot read SLACK_BOT_TOKEN_FILE file {missing}: No such file or directory"
    ]


def test_a_directory_or_binary_file_is_refused_without_its_content(tmp_path: Path) -> None:
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe secret-bytes-here")
    env = {k: v for k, v in BASE.items() if k not in ("GITLAB_TOKEN", "SLACK_SIGNING_SECRET")}
    problems = problems_of(
        {**env, "GITLAB_TOKEN_FILE": str(tmp_path), "SLACK_SIGNING_SECRET_FILE": str(binary)}
    )
    assert problems == [
        f"cannot read GITLAB_TOKEN_FILE file {tmp_path}: Is a directory",
        f"cannot read SLACK_SIGNING_SECRET_FILE file {binary}: not UTF-8 text",
    ]
    assert not any("secret-bytes" in p for p in problems)


def test_file_problems_come_with_the_other_problems(tmp_path: Path) -> None:
    env = {k: v for k, v in BASE.items() if k not in ("GITLAB_TOKEN", "GITLAB_URL")}
    problems = problems_of({**env, "GITLAB_TOKEN_FILE": str(tmp_path / "missing")})
    assert len(problems) == 2
    assert problems[0].startswith("cannot read GITLAB_TOKEN_FILE")
    assert problems[1] == "missing required setting GITLAB_URL"


def test_an_empty_secret_file_says_where_the_value_came_from(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    env = {k: v for k, v in BASE.items() if k != "GITLAB_WEBHOOK_SECRET"}
    problems = problems_of({**env, "GITLAB_WEBHOOK_SECRET_FILE": str(empty)})
    assert problems == [
        f"invalid setting GITLAB_WEBHOOK_SECRET (from GITLAB_WEBHOOK_SECRET_FILE file {empty}):"
        " must not be empty"
    ]


def test_the_signing_key_is_optional_and_empty_means_unset() -> None:
    assert load_settings(BASE).webhook_signing_key is None
    assert load_settings({**BASE, "GITLAB_WEBHOOK_SIGNING_KEY": ""}).webhook_signing_key is None


@pytest.mark.parametrize("value", [f"whsec_{KEY}", KEY])
def test_the_signing_key_is_the_decoded_base64(value: str) -> None:
    settings = load_settings({**BASE, "GITLAB_WEBHOOK_SIGNING_KEY": value})
    assert settings.webhook_signing_key == bytes(range(32))


@pytest.mark.parametrize("value", ["whsec_", "whsec_not base64!", "plain-words", "whsec_===="])
def test_a_malformed_signing_key_is_refused_without_showing_it(value: str) -> None:
    problems = problems_of({**BASE, "GITLAB_WEBHOOK_SIGNING_KEY": value})
    assert len(problems) == 1
    assert problems[0].startswith("invalid setting GITLAB_WEBHOOK_SIGNING_KEY: must be")
    assert value not in problems[0] or value == "whsec_"


def test_no_problem_line_ever_shows_a_secret_value() -> None:
    env = {**BASE, "MAX_BODY_BYTES": "-1", "GITLAB_WEBHOOK_SIGNING_KEY": "whsec_%%secret%%"}
    problems = problems_of(env)
    text = "\n".join(problems)
    for value in (*BASE.values(), "%%secret%%"):
        if value.startswith("https://"):
            continue
        assert value not in text


def test_secret_values_lists_every_secret_and_url_password() -> None:
    env = {
        **BASE,
        "GITLAB_WEBHOOK_SIGNING_KEY": f"whsec_{KEY}",
        "REDIS_URL": "redis://:redis%40pass@redis:6379/0",
        "DATABASE_URL": "postgresql://bot:db-password@db/bot",
    }
    values = load_settings(env).secret_values()
    for name in (
        "GITLAB_TOKEN",
        "GITLAB_WEBHOOK_SECRET",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
    ):
        assert BASE[name] in values
    assert f"whsec_{KEY}" in values
    assert KEY in values
    assert {"redis%40pass", "redis@pass", "db-password"} <= set(values)


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("redis://:pw@localhost:6379/0", "pw"),
        ("redis://user:pw@localhost/0", "pw"),
        ("redis://localhost:6379/0", None),
        ("postgresql://bot@db/x", None),
        ("sqlite:///var/approval-bot.db", None),
        ("not a url", None),
    ],
)
def test_url_password(url: str, password: str | None) -> None:
    assert url_password(url) == password


def test_decode_signing_key_rejects_empty() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        decode_signing_key("whsec_")
