"""Settings: a config file with CONVEYOR_* on top; bad input gives one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.config import ConnectionSettings, load_settings
from conveyor.envelope import DEFAULT_MAX_PAYLOAD
from conveyor.errors import ConfigError

FULL = """
default = "main"
app = ["myapp.jobs", "myapp.more"]
max_payload = 4096

[connections.main]
url = "sqlite:///data/queue.db"
retry_after = 5
queue = "emails"
"""


def test_without_a_file_the_default_is_sqlite_in_the_project(tmp_path: Path) -> None:
    s = load_settings(tmp_path, env={})
    assert s.default == "database"
    assert s.connection().url == f"sqlite:///{tmp_path.resolve() / 'conveyor.db'}"
    assert s.connection("sync").url == "sync://"
    assert (s.source, s.max_payload, s.app) == ("built-in defaults", DEFAULT_MAX_PAYLOAD, ())


def test_conveyor_toml_is_read_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text(FULL)
    sub = tmp_path / "src" / "pkg"
    sub.mkdir(parents=True)
    s = load_settings(sub, env={})
    main = s.connection()
    assert s.default == "main" and s.source == str(tmp_path.resolve() / "conveyor.toml")
    assert main.url == f"sqlite:///{tmp_path.resolve() / 'data' / 'queue.db'}"
    assert (main.retry_after, main.queue) == (5.0, "emails")
    assert s.app == ("myapp.jobs", "myapp.more")
    assert s.max_payload == 4096
    assert s.root == str(tmp_path.resolve())


def test_pyproject_tool_conveyor_is_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.conveyor]\napp = "shop.jobs"\n'
        '[tool.conveyor.connections.fast]\nurl = "sync://"\n'
    )
    s = load_settings(tmp_path, env={})
    assert s.app == ("shop.jobs",)
    assert s.connection("fast").url == "sync://"
    assert s.source.endswith("pyproject.toml")


def test_pyproject_without_the_table_is_skipped_for_a_parent_config(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text('app = ["outer"]\n')
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "pyproject.toml").write_text('[project]\nname = "inner"\n')
    assert load_settings(inner, env={}).app == ("outer",)


def test_conveyor_toml_wins_over_pyproject_in_the_same_folder(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text('app = ["from_toml"]\n')
    (tmp_path / "pyproject.toml").write_text('[tool.conveyor]\napp = ["from_pyproject"]\n')
    assert load_settings(tmp_path, env={}).app == ("from_toml",)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text(FULL)
    env = {
        "CONVEYOR_APP": "a.jobs, b.jobs",
        "CONVEYOR_MAX_PAYLOAD": "999",
        "CONVEYOR_MAIN_RETRY_AFTER": "2.5",
        "CONVEYOR_MAIN_QUEUE": "other",
        "CONVEYOR_DATABASE_URL": "sqlite:///elsewhere.db",
    }
    s = load_settings(tmp_path, env=env)
    assert s.app == ("a.jobs", "b.jobs")
    assert s.max_payload == 999
    assert (s.connection().retry_after, s.connection().queue) == (2.5, "other")
    assert s.connection("main").url.endswith("data/queue.db"), "only the named keys change"
    assert s.connection("database").url == f"sqlite:///{tmp_path.resolve() / 'elsewhere.db'}"


def test_conveyor_connection_as_a_name(tmp_path: Path) -> None:
    s = load_settings(tmp_path, env={"CONVEYOR_CONNECTION": "sync"})
    assert s.default == "sync" and s.connection().scheme == "sync"


def test_conveyor_connection_as_a_url(tmp_path: Path) -> None:
    url = "postgresql://app:s3cret@db.internal:5432/jobs"
    s = load_settings(tmp_path, env={"CONVEYOR_CONNECTION": url})
    assert s.default == "CONVEYOR_CONNECTION"
    assert s.connection().url == url
    assert s.connection().masked_url() == "postgresql://app:***@db.internal:5432/jobs"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("mysql://root@127.0.0.1/test", "mysql://root@127.0.0.1/test"),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
    ],
)
def test_masked_url(url: str, masked: str) -> None:
    assert ConnectionSettings("x", url).masked_url() == masked


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("defualt = 'x'\n", "'defualt'"),
        ("default = 'nope'\n", "'nope'"),
        ("app = 5\n", "'app'"),
        ("max_payload = 'big'\n", "max_payload"),
        ("connections = 'x'\n", "'connections'"),
        ("[connections.q]\nurl = 'sqlite:///a.db'\nlease = 3\n", "'lease'"),
        ("[connections.q]\nretry_after = 3\n", "connections.q.url"),
        ("[connections.q]\nurl = 'amqp://host'\n", "'amqp'"),
        (
            "[connections.q]\nurl = 'sqlite:///a.db'\nretry_after = 'soon'\n",
            "connections.q.retry_after",
        ),
        (
            "[connections.q]\nurl = 'sqlite:///a.db'\nretry_after = -1\n",
            "connections.q.retry_after",
        ),
        ("[connections.q]\nurl = 'sqlite:///a.db'\nblock_for = 'x'\n", "connections.q.block_for"),
        ("[connections.q]\nurl = 'sqlite:///a.db'\nretry_after = nan\n", "q.retry_after"),
        ("[connections.q]\nurl = 'sqlite:///a.db'\nretry_after = inf\n", "q.retry_after"),
        ("[connections.q]\nurl = 'sqlite:///a.db'\nretry_after = true\n", "q.retry_after"),
        ("[connections.q]\nurl = 'sqlite:///a.db'\nblock_for = -inf\n", "q.block_for"),
        ("[connections.q]\nurl = 'sqlite:///a.db'\nblock_for = nan\n", "q.block_for"),
        ("max_payload = -1\n", "max_payload"),
        ("max_payload = 0\n", "max_payload"),
        ("max_payload = 1500.5\n", "max_payload"),
        ("max_payload = 2048.0\n", "max_payload"),
        ("max_payload = true\n", "max_payload"),
        ("max_payload = inf\n", "max_payload"),
        ("[connections]\nq = 'sqlite:///a.db'\n", "connections.q"),
        ("default = [unclosed\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_error_naming_key_and_file(
    tmp_path: Path, text: str, key: str
) -> None:
    path = tmp_path / "conveyor.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, env={})
    message = str(info.value)
    assert str(path.resolve()) in message
    assert key in message
    assert "\n" not in message.strip() or key == "not valid TOML"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CONVEYOR_CONNECTION": "nope"}, "CONVEYOR_CONNECTION"),
        ({"CONVEYOR_CONNECTION": "amqp://host"}, "CONVEYOR_CONNECTION"),
        ({"CONVEYOR_MAX_PAYLOAD": "lots"}, "CONVEYOR_MAX_PAYLOAD"),
        ({"CONVEYOR_DATABASE_RETRY_AFTER": "soon"}, "CONVEYOR_DATABASE_RETRY_AFTER"),
        ({"CONVEYOR_DATABASE_RETRY_AFTER": "nan"}, "CONVEYOR_DATABASE_RETRY_AFTER"),
        ({"CONVEYOR_DATABASE_RETRY_AFTER": "inf"}, "CONVEYOR_DATABASE_RETRY_AFTER"),
        ({"CONVEYOR_DATABASE_BLOCK_FOR": "-Infinity"}, "CONVEYOR_DATABASE_BLOCK_FOR"),
        ({"CONVEYOR_DATABASE_URL": "nowhere"}, "CONVEYOR_DATABASE_URL"),
        ({"CONVEYOR_DATABASE_RETRYAFTER": "3"}, "CONVEYOR_DATABASE_RETRYAFTER"),
        ({"CONVEYOR_MAX_PAYLOAD": "-5"}, "CONVEYOR_MAX_PAYLOAD"),
        ({"CONVEYOR_MAX_PAYLOAD": "1.5"}, "CONVEYOR_MAX_PAYLOAD"),
        ({"CONVEYOR_MAX_PAYLOAD": "²"}, "CONVEYOR_MAX_PAYLOAD"),
        ({"CONVEYOR_MAX_PAYLOAD": "9" * 5000}, "CONVEYOR_MAX_PAYLOAD"),
    ],
)
def test_bad_environment_names_the_variable(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, env=env)
    assert named in str(info.value)


def test_unknown_connection_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, env={}).connection("redis")
    assert "'redis'" in str(info.value) and "database, sync" in str(info.value)


def test_top_level_variables_win_over_a_connection_named_like_their_prefix(
    tmp_path: Path,
) -> None:
    (tmp_path / "conveyor.toml").write_text(
        "[connections.max]\nurl = 'sqlite:///max.db'\n"
        "[connections.a]\nurl = 'sqlite:///a.db'\n"
        "[connections.a_b]\nurl = 'sqlite:///ab.db'\n"
    )
    env = {
        "CONVEYOR_MAX_PAYLOAD": "4096",
        "CONVEYOR_MAX_RETRY_AFTER": "7",
        "CONVEYOR_A_B_QUEUE": "emails",
        "CONVEYOR_A_QUEUE": "other",
    }
    s = load_settings(tmp_path, env=env)
    assert s.max_payload == 4096
    assert s.connection("max").retry_after == 7.0
    assert (s.connection("a_b").queue, s.connection("a").queue) == ("emails", "other")


def test_max_payload_accepts_whole_positive_numbers(tmp_path: Path) -> None:
    assert load_settings(tmp_path, env={"CONVEYOR_MAX_PAYLOAD": " 2048 "}).max_payload == 2048
    (tmp_path / "conveyor.toml").write_text("max_payload = 4096\n")
    assert load_settings(tmp_path, env={}).max_payload == 4096


def test_a_variable_belongs_to_the_longest_connection_name_it_starts_with(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text(
        '[connections.a]\nurl = "sqlite:///a.db"\n\n[connections.a_b]\nurl = "sqlite:///b.db"\n'
    )
    with pytest.raises(ConfigError, match="connection 'a_b'"):
        load_settings(tmp_path, env={"CONVEYOR_A_B_NOPE": "1"})
