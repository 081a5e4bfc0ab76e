"""A bad setting's error names the setting and its limit, not only "invalid value"."""

from __future__ import annotations

import pytest

from memoryd.core.errors import ConfigurationError
from memoryd.settings import load_settings


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ({"plugin_timeout": 0}, "'plugin_timeout' must be > 0"),
        ({"port": "abc"}, "settings.port"),
    ],
)
def test_an_invalid_setting_is_named_with_its_limit(flags: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(flags=flags, env={})
    assert named in str(caught.value)
