"""Node settings: TOML loading, defaults, errors naming the key, the printed default config."""
from __future__ import annotations

import dataclasses
import tomllib

import pytest

from ring.errors import ConfigurationError
from ring.runtime import config
from ring.runtime.config import NodeSettings


def test_default_config_is_valid_toml_with_every_key_and_a_comment():
    text = config.dump_default()
    values = tomllib.loads(text)
    assert config.from_dict(values) == NodeSettings()
    names = [f.name for f in dataclasses.fields(NodeSettings)]
    assert list(values) == names
    lines = text.splitlines()
    for name in names:
        i = next(i for i, line in enumerate(lines) if line.startswith(f"{name} = "))
        assert lines[i - 1].startswith("# ") and len(lines[i - 1]) > 4


def test_defaults_follow_the_brief():
    s = NodeSettings()
    assert (s.cluster_name, s.port, s.metrics_port, s.num_tokens, s.max_frame_bytes) == (
        "dynatable", 9100, 0, 16, 16 * 1024 * 1024)
    assert (s.write_request_timeout_ms, s.read_request_timeout_ms, s.range_request_timeout_ms) == (2000, 5000, 10000)
    assert s.endpoint() == "127.0.0.1:9100" and s.seeds == [] and s.cluster_secret == ""
    # the loop gets the GIL back from a flush within 0.5 ms; no trace unless asked (docs/operations.md)
    assert (s.gil_switch_interval_ms, s.event_trace) == (0.5, False)


def test_load_resolves_data_directory_against_the_file(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text('port = 9200\nseeds = ["127.0.0.1:9100"]\ndata_directory = "n1"\nphi_convict_threshold = 10\n')
    s = config.load(str(path))
    assert s.port == 9200 and s.seeds == ["127.0.0.1:9100"] and s.data_directory == str(tmp_path / "n1")
    assert s.phi_convict_threshold == 10.0 and isinstance(s.phi_convict_threshold, float)


def test_dump_round_trips(tmp_path):
    s = NodeSettings(port=9300, seeds=["a:1", "b:2"], cluster_secret='q"uote', data_directory=str(tmp_path))
    path = tmp_path / "n.toml"
    path.write_text(config.dump(s))
    assert config.load(str(path)) == s


@pytest.mark.parametrize("text,match", [
    ("prot = 1", "unknown config key 'prot'; did you mean 'port'?"),
    ("port = '9100'", "config key 'port' must be a int"),
    ("seeds = 'a:1'", "config key 'seeds' must be a list of strings"),
    ("commitlog_sync = 'sometimes'", "commitlog_sync must be periodic, batch or group"),
    ("num_tokens = 0", "config key 'num_tokens' must be positive"),
    ("port = [", "is not valid TOML"),
    ("gil_switch_interval_ms = 0", "gil_switch_interval_ms must be in"),
])
def test_bad_config_names_the_problem(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigurationError, match=match):
        config.load(str(path))


def test_missing_file():
    with pytest.raises(ConfigurationError, match="cannot read config"):
        config.load("/nonexistent/node.toml")


def test_store_options_are_known_to_the_store():
    from engine.store import DEFAULT_OPTIONS
    assert set(NodeSettings().store_options()) <= set(DEFAULT_OPTIONS)


def test_to_node_config_fills_what_the_node_knows():
    node = pytest.importorskip("ring.node")
    s = NodeSettings(port=9300, seeds=["127.0.0.1:9100"], num_tokens=4)
    cfg = config.to_node_config(s, "ab" * 16)
    assert isinstance(cfg, node.NodeConfig)
    assert (cfg.endpoint, cfg.host_id, cfg.seeds, cfg.num_tokens) == ("127.0.0.1:9300", "ab" * 16, s.seeds, 4)


def test_print_default_config(capsys):
    from ring.runtime import asyncio_tcp
    assert asyncio_tcp.main(["--print-default-config"]) == 0
    assert capsys.readouterr().out == config.dump_default()


def test_event_loop_setting_picks_the_loop_it_names():
    import asyncio


    async def loop_module():
        return type(asyncio.get_running_loop()).__module__

    assert config.NodeSettings().event_loop == "auto"
    name, run = config.event_loop_runner("asyncio")
    assert name == "asyncio" and run(loop_module()).startswith("asyncio")
    try:
        import uvloop  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigurationError, match="uvloop is not installed"):
            config.event_loop_runner("uvloop")
        assert config.event_loop_runner("auto")[0] == "asyncio"
    else:
        for choice in ("auto", "uvloop"):
            name, run = config.event_loop_runner(choice)
            assert name == "uvloop" and run(loop_module()).startswith("uvloop")
    with pytest.raises(ConfigurationError, match="event_loop must be one of"):
        config.from_dict({"event_loop": "trio"})
