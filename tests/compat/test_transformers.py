"""The transformers internals tokentune/compat/transformers.py reads: still there, still meaning
what tokentune takes them to mean. A failure names the API and the installed version."""
import pytest
import transformers
import yaml
from transformers import AutoConfig, AutoModelForSequenceClassification

from conftest import CONF
from tokentune.compat.transformers import attn_implementation, no_split_modules
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


# DebertaV2 declares no _no_split_modules (transformers 5.23): model.compile compiles it whole,
# with a log line (tests/model/test_compile.py); a family that gains or loses the list shows here
UNDECLARED = {"deberta"}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_no_split_modules_names_the_transformer_blocks(family):
    model = tiny_model(family)
    blocks = model.base_model.get_submodule(FAMILIES[family].blocks)
    kept_whole = no_split_modules(model)
    if family in UNDECLARED:
        assert not kept_whole, f"transformers {transformers.__version__}: {type(model).__name__} now " \
                               f"declares _no_split_modules {sorted(kept_whole)}: drop {family} from UNDECLARED"
        return
    assert {type(b).__name__ for b in blocks} <= kept_whole, (
        f"transformers {transformers.__version__}: {type(model).__name__}._no_split_modules is "
        f"{sorted(kept_whole)}, without the {family} blocks; model.compile would compile the model "
        f"whole; {FIX}")
