"""Passwords never leave a URL: every form the backends take, and the errors about them."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.config import ConnectionSettings, load_settings
from conveyor.drivers.database.mysql_url import parse_url as parse_mysql
from conveyor.drivers.database.postgres import parse_url as parse_postgres
from conveyor.drivers.redis.connection import parse_url as parse_redis
from conveyor.errors import ConfigError
from conveyor.urls import hide_secrets, mask_url

SECRET = "Sup3r-s3cret"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (f"redis://user:{SECRET}@h:6379/0", "redis://user:***@h:6379/0"),
        (f"redis://:{SECRET}@h", "redis://:***@h"),
        (f"rediss://:{SECRET}@cache.example:6380/2", "rediss://:***@cache.example:6380/2"),
        (
            f"redis+sentinel://:{SECRET}@s1:26379,s2:26379/mymaster",
            "redis+sentinel://:***@s1:26379,s2:26379/mymaster",
        ),
        (f"unix://:{SECRET}@/run/redis.sock?db=1", "unix://:***@/run/redis.sock?db=1"),
        (f"unix:///run/redis.sock?password={SECRET}", "unix:///run/redis.sock?password=***"),
        (f"postgresql://app:{SECRET}@db/jobs", "postgresql://app:***@db/jobs"),
        (
            f"postgresql://app@db/jobs?sslmode=require&password={SECRET}",
            "postgresql://app@db/jobs?sslmode=require&password=***",
        ),
        (
            f"postgres:///jobs?host=/tmp&PASSWORD={SECRET}",
            "postgres:///jobs?host=/tmp&PASSWORD=***",
        ),
        (f"mysql://root:{SECRET}@127.0.0.1/test", "mysql://root:***@127.0.0.1/test"),
        (f"mariadb://u@h/db?password={SECRET}#x", "mariadb://u@h/db?password=***#x"),
        (f"redis://h/0?password={SECRET}&db=1", "redis://h/0?password=***&db=1"),
        (f"redis://u:{SECRET}%40x@h/0", "redis://u:***@h/0"),
        (f"redis://u:{SECRET}@x@h/0", "redis://u:***@h/0"),
        (f"postgresql://u:{SECRET}/x@h/db", "postgresql://u:***@h/db"),
        ("sqlite:///var/lib/app/conveyor.db", "sqlite:///var/lib/app/conveyor.db"),
        ("sqlite:///var/a:b@c.db", "sqlite:///var/a:b@c.db"),
        ("mysql://root@127.0.0.1/test", "mysql://root@127.0.0.1/test"),
        (f"u:{SECRET}@h", "u:***@h"),
    ],
)
def test_mask_url_hides_every_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert ConnectionSettings("x", url).masked_url() == masked


def test_hide_secrets_masks_the_password_wherever_a_library_quoted_it() -> None:
    url = "postgresql://u:a%20b@h/db?password=q%2Fz"
    text = f"bad {url}: 'a b' near 'q/z' and q%2Fz"
    assert (
        hide_secrets(text, url)
        == "bad postgresql://u:***@h/db?password=***: '***' near '***' and ***"
    )


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@h:6379/0?nope=1",
        f"redis://:{SECRET}@h:port/0",
        f"redis://:{SECRET}@h:6379/zero",
        f"redis://:{SECRET}@h:6379/0?socket_timeout=soon",
        f"redis://:{SECRET}@h:6379/0?retry_window=-1",
        f"redis+sentinel://:{SECRET}@h:26379",
        f"redis+cluster://:{SECRET}@h:7000/3",
        f"redis://:{SECRET}@a,b/0",
        f"redis://h/0?password={SECRET}&nope=1",
    ],
)
def test_redis_url_errors_do_not_show_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_redis(url)
    assert SECRET not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [f"mysql://root:{SECRET}@h:port/test", f"mariadb://root:{SECRET}@h:99999/test"],
)
def test_mysql_url_errors_do_not_show_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_mysql(url)
    assert SECRET not in str(caught.value)
    assert "***" in str(caught.value)


def test_postgres_url_errors_do_not_show_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_postgres("postgresql://app:Sup3r s3cret@db/jobs")
    assert "s3cret" not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["redis://user:s3cr?et@host/0", "redis://user:s3cr/et@host", "postgresql://u:pa#ss@h/db"],
)
def test_a_password_with_unencoded_delimiters_is_masked_whole_and_refused_by_the_config(
    url: str, tmp_path: Path
) -> None:
    password = url.partition("://")[2].rpartition("@")[0].partition(":")[2]
    assert password not in mask_url(url)
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, env={"CONVEYOR_CONNECTION": url})
    assert password not in str(info.value) and "percent-encode" in str(info.value)
    assert password[:4] not in str(info.value)


def test_a_bad_port_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        parse_redis("redis://user:pw@host:s3cr/0")
    assert "port 's3cr'" not in str(info.value)
