"""The transformers internals tokentune/compat/transformers.py reads: still there, still meaning
what tokentune takes them to mean. A failure names the API and the installed version."""
import pytest
import transformers
import yaml
from transformers import AutoConfig, AutoModelForSequenceClassification

from conftest import CONF
from tokentune.compat.transformers import attn_implementation
from tokentune.model.families import FAMILIES

FIX = "update tokentune/compat/transformers.py"


def tiny_yaml(family: str) -> dict:
    return yaml.safe_load((CONF / "model" / f"{family}_tiny.yaml").read_text())


def tiny_model(family: str, attn: str | None = None):
    spec = tiny_yaml(family)
    config = AutoConfig.for_model(FAMILIES[family].model_type, **spec["config"])
    return AutoModelForSequenceClassification.from_config(
        config, attn_implementation=attn or spec.get("attn_implementation", "sdpa"))


# both implementations, except where the family's model fixes one (DeBERTa has no sdpa)
@pytest.mark.parametrize("family, attn", [
    (f, a) for f in sorted(FAMILIES)
    for a in ([tiny_yaml(f)["attn_implementation"]] if "attn_implementation" in tiny_yaml(f) else ["sdpa", "eager"])])
def test_the_attention_implementation_is_the_one_the_model_was_built_with(family, attn):
    model = tiny_model(family, attn)
    try:
        got = attn_implementation(model)
    except AttributeError as err:
        pytest.fail(f"transformers {transformers.__version__}: PretrainedConfig._attn_implementation "
                    f"is gone ({err}); {FIX}")
    assert got == attn, (f"transformers {transformers.__version__}: config._attn_implementation is "
                         f"{got!r} for a model built with attn_implementation={attn!r}; {FIX}")

