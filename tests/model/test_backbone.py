"""model.config on a pretrained model: settings that replace the checkpoint's own."""
import pytest

from tokentune.config import validate
from tokentune.errors import UserError
from tokentune.model.backbone import load_backbone, model_config


def test_model_config_replaces_a_pretrained_models_settings(compose):
    default = model_config(validate(compose("model=minilm")).model)
    assert default.hidden_dropout_prob == 0.1 and default.num_hidden_layers == 6  # MiniLM's own
    cfg = validate(compose("model=minilm", "+model.config.hidden_dropout_prob=0.25"))
    assert model_config(cfg.model).hidden_dropout_prob == 0.25
    model = load_backbone(cfg.model, cfg.task, pad_token_id=0, seed=0)
    assert model.bert.encoder.layer[0].output.dropout.p == 0.25 and model.dropout.p == 0.25


def test_a_setting_the_pretrained_config_lacks_is_one_line(compose):
    cfg = validate(compose("model=minilm", "+model.config.hidden_dropout=0.25"))
    with pytest.raises(UserError) as err:
        model_config(cfg.model)
    assert str(err.value).startswith("model.config.hidden_dropout: BertConfig (of ")
    assert str(err.value).endswith("has no setting 'hidden_dropout'; see its config.json for the names")
