"""The huggingface_hub internals tokentune/compat/huggingface_hub.py relies on: its shared client
comes from set_client_factory, and a connection error raised as OfflineModeIsEnabled is neither
retried nor hidden. A failure names the API and the installed version."""
import logging

import huggingface_hub
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError

from tokentune.compat.huggingface_hub import fail_at_first_connection_error

FIX = "update tokentune/compat/huggingface_hub.py"


def test_a_refused_connection_fails_the_download_at_once(tmp_path, monkeypatch, caplog):
    """Port 9 of this machine refuses every connection (breakage: the factory left out: five
    "Retrying in Ns" warnings, 23 s of back-off)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    fail_at_first_connection_error()
    transport = huggingface_hub.get_session()._transport
    assert type(transport).__name__ == "FailFast", f"huggingface_hub {huggingface_hub.__version__}: {FIX}"
    with caplog.at_level(logging.INFO, logger="huggingface_hub"), pytest.raises(LocalEntryNotFoundError):
        huggingface_hub.hf_hub_download("tokentune-tests/absent", "config.json", endpoint="http://127.0.0.1:9",
                                        cache_dir=tmp_path)
    assert not [r for r in caplog.records if "Retry" in r.getMessage()], f"huggingface_hub {huggingface_hub.__version__}: {FIX}"
