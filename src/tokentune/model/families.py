"""Everything tokentune knows about a model family, in one registry: `FAMILIES`.

Every module that treats BERT and GPT-2 differently asks `get_family(cfg.model.family)` for the
difference; none branches on a family's name. A new family is one entry here and one
conf/model/<name>.yaml (plus <name>_tiny.yaml, a random-init model that tests/families/ trains).

Class names are strings, resolved by the modules that use them: this module is imported while
Hydra composes (`--cfg job`), so it must not import torch or transformers.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tokentune.errors import ConfigError

POOLS = ("first", "last")


@dataclass(frozen=True)
class Family:
    name: str  # model.family
    # transformers' `config.model_type`: picks the config class of a random-init model
    # (AutoConfig.for_model) and is checked on every model loaded (MiniLM checkpoints say "bert")
    model_type: str
    causal: bool  # a decoder: each token attends to those before it (packed masks follow)

    # -- classification and regression --------------------------------------------------------
    pool: str  # "first" ([CLS]) or "last" (the last non-padding token): the token the head reads
    cls_head: str  # attribute of the *ForSequenceClassification model holding the head
    # The modules from the final hidden states to the logits, as attribute paths from the
    # *ForSequenceClassification model, each applied in turn to the pooled tokens (given as
    # one-token sequences). None: the head is not a chain of modules, so no data.packing.
    packed_head: tuple[str, ...] | None
    lm_head: str | None  # attribute of the *ForCausalLM model; None: no causal_lm tasks

    # -- tokenizers ---------------------------------------------------------------------------
    input_names: tuple[str, ...]  # what the model's forward takes from a tokenizer
    # the role (e.g. "eos_token") whose token pads when the backbone's tokenizer has none;
    # None: such a tokenizer is refused
    pad_with: str | None
    # A vocabulary tokentune builds (tokenizer=bpe8k ...): its special tokens by role, in id order,
    # the roles it cannot do without, and the parts a TokenizerConfig leaves null
    special_tokens: Mapping[str, str]
    required_roles: tuple[str, ...]
    unk_only_if_needed: bool  # True: a byte-level vocabulary (it covers every input) gets no unk token
    pre_tokenizer: str  # a vocab.spec PRE_TOKENIZERS name (byte_bpe always uses byte_level)
    post_processor: str | None  # a vocab.spec POST_PROCESSORS name; None: no template

    # -- fine-tuning methods and sharding -----------------------------------------------------
    lora_targets: tuple[str, ...]  # finetune.target_modules when null
    fan_in_fan_out: bool  # projections stored (in, out), as transformers' Conv1D
    blocks: str  # path from `model.base_model` to the list of transformer blocks
    # path, inside one block, of the last module before each residual add: adapters wrap it
    attention_site: str
    ffn_site: str
    fsdp_units: tuple[str, ...]  # classes FSDP shards as units (transformers' _no_split_modules)

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"family {self.name}: pool {self.pool!r} is not one of {POOLS}")

    @property
    def task_kinds(self) -> tuple[str, ...]:
        return ("classification", "regression") + (("causal_lm",) if self.lm_head else ())


FAMILIES: dict[str, Family] = {
    "bert": Family(
        name="bert",
        model_type="bert",
        causal=False,
        pool="first",
        cls_head="classifier",
        packed_head=("base_model.pooler", "dropout", "classifier"),  # dense + tanh, dropout, linear
        lm_head=None,
        input_names=("input_ids", "token_type_ids", "attention_mask"),
        pad_with=None,
        special_tokens={"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]",
                        "sep_token": "[SEP]", "mask_token": "[MASK]"},
        required_roles=("pad_token", "cls_token", "sep_token"),
        unk_only_if_needed=False,
        pre_tokenizer="bert",
        post_processor="bert",  # [CLS] a [SEP] b [SEP]
        lora_targets=("query", "value"),
        fan_in_fan_out=False,
        blocks="encoder.layer",
        attention_site="attention.output.dropout",
        ffn_site="output.dropout",
        fsdp_units=("transformers.models.bert.modeling_bert.BertEmbeddings",
                    "transformers.models.bert.modeling_bert.BertLayer"),
    ),
    "gpt2": Family(
        name="gpt2",
        model_type="gpt2",
        causal=True,
        pool="last",
        cls_head="score",
        packed_head=("score",),
        lm_head="lm_head",
        input_names=("input_ids", "attention_mask"),
        pad_with="eos_token",  # GPT-2 ships without a pad token; <|endoftext|> pads, on the right
        special_tokens={"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                        "pad_token": "<|pad|>", "unk_token": "<|unk|>"},
        required_roles=("eos_token", "pad_token"),
        unk_only_if_needed=True,
        pre_tokenizer="byte_level",
        post_processor=None,
        lora_targets=("c_attn",),
        fan_in_fan_out=True,
        blocks="h",
        attention_site="attn.resid_dropout",
        ffn_site="mlp.dropout",
        fsdp_units=("transformers.models.gpt2.modeling_gpt2.GPT2Block",),
    ),
}
# every family's task heads: never a LoRA target, and what the parameter report counts as head
HEAD_NAMES = frozenset(name for f in FAMILIES.values() for name in (f.cls_head, f.lm_head) if name)


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ConfigError("model.family", f"'{name}' is not one of {tuple(FAMILIES)} "
                          "(the entries of tokentune/model/families.py)")
    return FAMILIES[name]
