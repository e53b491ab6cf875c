"""Settings persist, and a damaged file gives the defaults with a message."""

from codeact_desktop.agent.loop import AgentSettings
from codeact_desktop.settings import Settings


def test_roundtrip_and_apply(tmp_path):
    path = tmp_path / "settings.json"
    Settings(n_ctx=4096, max_actions=3, require_approval=True, theme="dark", temperature=0.2).save(path)
    loaded, message = Settings.load(path)
    assert message == "" and loaded.n_ctx == 4096 and loaded.require_approval and loaded.theme == "dark"
    agent = loaded.apply_to(AgentSettings())
    assert agent.max_actions == 3 and agent.temperature == 0.2
    assert loaded.backend_options() == {"n_ctx": 4096, "n_gpu_layers": None, "n_threads": None,
                                        "kv_cache_ram": 1024 << 20, "kv_cache_disk": 4096 << 20,
                                        "kv_type": "auto", "flash_attention": True}


def test_damaged_or_wrong_values_fall_back(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    settings, message = Settings.load(path)
    assert settings == Settings() and "could not be read" in message
    path.write_text('{"n_ctx": "big", "theme": "purple", "max_actions": 4, "unknown": 1, "kv_cache_type": "q2"}')
    settings, message = Settings.load(path)
    assert settings.max_actions == 4 and settings.n_ctx == 8192 and settings.theme == "system"
    assert settings.kv_cache_type == "auto"
    assert "n_ctx" in message and "theme" in message and "kv_cache_type" in message
