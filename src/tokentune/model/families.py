"""Everything tokentune knows about a model family, in one registry: `FAMILIES`.

Every module that treats BERT and GPT-2 differently asks `get_family(cfg.model.family)` for the
difference; none branches on a family's name. A new family is one entry here and one
conf/model/<name>.yaml (plus <name>_tiny.yaml, a random-init model that tests/families/ trains).

Class names are strings, resolved by the modules that use them: this module is imported while
Hydra composes (`--cfg job`), so it must not import torch or transformers.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from tokentune.errors import ConfigError

POOLS = ("first", "last")


@dataclass(frozen=True)
class ResidualAdd:
    """Where a block adds a sublayer's output back to the residual stream: the module inside the
    block that is handed that residual (as its positional argument `arg`: a post-norm block's output
    module takes it beside the sublayer's output, a pre-norm block's norm reads it), and the layer
    norm after the add (None in a pre-norm block, whose stream goes on unnormalized)."""

    module: str
    arg: int
    norm: str | None = None


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
    # where each of those outputs rejoins the stream (an adapter with original_ln_before reads it there)
    attention_add: ResidualAdd
    ffn_add: ResidualAdd
    fsdp_units: tuple[str, ...]  # classes FSDP shards as units (transformers' _no_split_modules)

    # -- what the model's forward takes (defaults: BERT's and GPT-2's) ---------------------------
    # True: the 4D (rows, 1, width, width) mask tokentune builds (padded batches get it ready-made,
    # packed ones need it). False: only the tokenizer's 2D mask (DeBERTa multiplies its embeddings
    # by the mask; ModernBERT's sliding-window layers are lost in a ready-made one), so padded
    # batches pass the 2D mask and packed_head must be None
    block_mask: bool = True
    # True: prefix tuning (peft's virtual tokens, fed to every layer as a key/value cache).
    # False: the attention takes no cache, and finetune=prefix is refused (its check_family)
    prefix: bool = True
    # True: a sequence's positions count from pad_token_id + 1, as RoBERTa numbers them from its
    # input_ids; packed rows, which give positions explicitly, add that offset
    position_offset: bool = False
    # modules between the encoder and cls_head that the PEFT methods train in full with the head:
    # those a pretrained checkpoint does not hold (deberta-v3's pooler), which frozen would stay random
    head_extras: tuple[str, ...] = ()
    # finetune=ia3: the modules whose output (or, for ia3_feedforward, input) IA3 rescales, as
    # peft's TRANSFORMERS_MODELS_TO_IA3_*_MAPPING names them for the model type; () refuses ia3
    ia3_targets: tuple[str, ...] = ()
    ia3_feedforward: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"family {self.name}: pool {self.pool!r} is not one of {POOLS}")
        if self.packed_head is not None and not self.block_mask:
            raise ValueError(f"family {self.name}: packing needs block_mask (a 4D mask); set packed_head=None")

    @property
    def task_kinds(self) -> tuple[str, ...]:
        from tokentune.task import KINDS  # tokentune.task's kinds take a Family: imported when asked

        return tuple(name for name, kind in KINDS.items() if kind.supported_by(self))


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
        ia3_targets=("key", "value", "output.dense"),
        ia3_feedforward=("output.dense",),
        fan_in_fan_out=False,
        blocks="encoder.layer",
        attention_site="attention.output.dropout",
        ffn_site="output.dropout",
        attention_add=ResidualAdd("attention.output", 1, norm="attention.output.LayerNorm"),
        ffn_add=ResidualAdd("output", 1, norm="output.LayerNorm"),
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
        ia3_targets=("c_attn", "mlp.c_proj"),
        ia3_feedforward=("mlp.c_proj",),
        fan_in_fan_out=True,
        blocks="h",
        attention_site="attn.resid_dropout",
        ffn_site="mlp.dropout",
        attention_add=ResidualAdd("ln_1", 0),
        ffn_add=ResidualAdd("ln_2", 0),
        fsdp_units=("transformers.models.gpt2.modeling_gpt2.GPT2Block",),
    ),
    "roberta": Family(
        name="roberta",
        model_type="roberta",
        causal=False,
        pool="first",  # <s>
        cls_head="classifier",  # RobertaClassificationHead: dropout, dense + tanh, dropout, out_proj on <s>
        packed_head=("classifier",),  # it reads the first token of what it is given: the pooled one
        lm_head=None,
        input_names=("input_ids", "attention_mask"),  # no token types (type_vocab_size 1)
        pad_with=None,
        # roberta-base's ids 0-3 (<mask> is its last id); <s> and </s> double as [CLS] and [SEP]
        special_tokens={"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>",
                        "unk_token": "<unk>", "mask_token": "<mask>", "cls_token": "<s>",
                        "sep_token": "</s>"},
        required_roles=("pad_token", "cls_token", "sep_token"),
        unk_only_if_needed=True,
        pre_tokenizer="byte_level",
        # <s> a </s> b </s> (roberta-base's own pair template doubles the middle </s>)
        post_processor="bert",
        lora_targets=("query", "value"),
        ia3_targets=("key", "value", "output.dense"),
        ia3_feedforward=("output.dense",),
        fan_in_fan_out=False,
        blocks="encoder.layer",
        attention_site="attention.output.dropout",
        ffn_site="output.dropout",
        attention_add=ResidualAdd("attention.output", 1, norm="attention.output.LayerNorm"),
        ffn_add=ResidualAdd("output", 1, norm="output.LayerNorm"),
        fsdp_units=("transformers.models.roberta.modeling_roberta.RobertaEmbeddings",
                    "transformers.models.roberta.modeling_roberta.RobertaLayer"),
        position_offset=True,
    ),
    "llama": Family(  # Llama-style decoders (SmolLM2 is model_type llama)
        name="llama",
        model_type="llama",
        causal=True,
        pool="last",
        cls_head="score",
        packed_head=("score",),  # a per-token linear layer; RoPE takes packed position_ids as they are
        lm_head="lm_head",
        input_names=("input_ids", "attention_mask"),
        pad_with="eos_token",  # Llama tokenizers ship without a pad token; eos pads, on the right
        # SmolLM2's byte-level BPE: <|endoftext|> begins and ends
        special_tokens={"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                        "pad_token": "<|pad|>", "unk_token": "<|unk|>"},
        required_roles=("eos_token", "pad_token"),
        unk_only_if_needed=True,
        pre_tokenizer="byte_level",
        post_processor=None,
        lora_targets=("q_proj", "v_proj"),
        ia3_targets=("k_proj", "v_proj", "down_proj"),
        ia3_feedforward=("down_proj",),
        fan_in_fan_out=False,
        blocks="layers",
        # no dropout module before the residual adds: the projections that feed them
        attention_site="self_attn.o_proj",
        ffn_site="mlp.down_proj",
        attention_add=ResidualAdd("input_layernorm", 0),
        ffn_add=ResidualAdd("post_attention_layernorm", 0),
        fsdp_units=("transformers.models.llama.modeling_llama.LlamaDecoderLayer",),
    ),
    "deberta": Family(  # DeBERTa-v2 and -v3 (microsoft/deberta-v3-base is model_type deberta-v2)
        name="deberta",
        model_type="deberta-v2",
        causal=False,
        pool="first",  # ContextPooler reads [CLS]
        # the pooler (dense + GELU) comes before it; deberta-v3 checkpoints hold no pooler weights
        cls_head="classifier",
        # No packing: DebertaV2Embeddings multiplies the embeddings by the attention mask, which
        # must be the 2D one (a 4D mask does not broadcast there); relative positions alone would pack
        packed_head=None,
        lm_head=None,
        # deberta-v3's tokenizer gives token types; v3 has none (type_vocab_size 0) and ignores them
        input_names=("input_ids", "token_type_ids", "attention_mask"),
        pad_with=None,
        # deberta-v3-base's ids 0-3 ([MASK] is its last id)
        special_tokens={"pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                        "unk_token": "[UNK]", "mask_token": "[MASK]"},
        required_roles=("pad_token", "cls_token", "sep_token"),
        unk_only_if_needed=False,
        # split on whitespace and punctuation: new tokens map onto any base vocabulary's pieces (a
        # metaspace vocabulary's bare ▁ has no source in a base without one, as the tests' MiniLM)
        pre_tokenizer="bert",
        post_processor="bert",  # [CLS] a [SEP] b [SEP]
        lora_targets=("query_proj", "value_proj"),
        ia3_targets=("key_proj", "value_proj", "output.dense"),
        ia3_feedforward=("output.dense",),
        fan_in_fan_out=False,
        blocks="encoder.layer",
        attention_site="attention.output.dropout",
        ffn_site="output.dropout",
        attention_add=ResidualAdd("attention.output", 1, norm="attention.output.LayerNorm"),
        ffn_add=ResidualAdd("output", 1, norm="output.LayerNorm"),
        fsdp_units=("transformers.models.deberta_v2.modeling_deberta_v2.DebertaV2Embeddings",
                    "transformers.models.deberta_v2.modeling_deberta_v2.DebertaV2Layer"),
        block_mask=False,
        prefix=False,  # DisentangledSelfAttention takes no key/value cache
        head_extras=("pooler",),  # ContextPooler: dense + GELU, not in deberta-v3 checkpoints
    ),
    "modernbert": Family(
        name="modernbert",
        model_type="modernbert",
        causal=False,
        # [CLS] with classifier_pooling "cls" (modernbert_tiny.yaml); answerdotai/ModernBERT-base's
        # config says "mean", which it keeps unless +model.config.classifier_pooling=cls (pool only
        # matters to packing, refused here)
        pool="first",
        cls_head="classifier",  # after `head` (dense + GELU + norm, pretrained with the MLM head) and `drop`
        # No packing: a ready-made 4D mask replaces the sliding-window masks of the local
        # attention layers (two in three), which would then attend globally
        packed_head=None,
        lm_head=None,
        input_names=("input_ids", "attention_mask"),  # no token types
        pad_with=None,
        # ModernBERT-base's order (its ids 50280-50284, after the BPE vocabulary)
        special_tokens={"unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                        "pad_token": "[PAD]", "mask_token": "[MASK]"},
        required_roles=("pad_token", "cls_token", "sep_token"),
        unk_only_if_needed=True,
        pre_tokenizer="byte_level",  # its GPT-NeoX-style byte-level BPE
        post_processor="bert",  # [CLS] a [SEP] b [SEP]
        lora_targets=("Wqkv",),  # the fused query/key/value projection, as GPT-2's c_attn
        fan_in_fan_out=False,
        blocks="layers",
        # its dropouts are Identity when the rate is 0: the projections that feed the residual adds
        attention_site="attn.Wo",
        ffn_site="mlp.Wo",
        attention_add=ResidualAdd("attn_norm", 0),  # layer 0's is an Identity, which reads it all the same
        ffn_add=ResidualAdd("mlp_norm", 0),
        fsdp_units=("transformers.models.modernbert.modeling_modernbert.ModernBertEmbeddings",
                    "transformers.models.modernbert.modeling_modernbert.ModernBertEncoderLayer"),
        block_mask=False,
        prefix=False,  # ModernBertAttention takes no key/value cache
    ),
}
# Qwen2 and Qwen2.5 are Llama-style decoders (their q/k/v projections have biases, which nothing
# here depends on): the llama entry with Qwen's names
FAMILIES["qwen2"] = replace(
    FAMILIES["llama"],
    name="qwen2",
    model_type="qwen2",
    # Qwen2.5's byte-level BPE: <|endoftext|> ends a text (and pads); there is no bos token
    special_tokens={"eos_token": "<|endoftext|>", "pad_token": "<|pad|>", "unk_token": "<|unk|>"},
    fsdp_units=("transformers.models.qwen2.modeling_qwen2.Qwen2DecoderLayer",),
    ia3_targets=("q_proj", "v_proj", "down_proj"),  # peft's choice for qwen2: q, not k as for llama
)
# every family's own heads; with the task kinds' heads: tokentune.task.registry.HEAD_NAMES
FAMILY_HEADS = frozenset(name for f in FAMILIES.values() for name in (f.cls_head, f.lm_head, *f.head_extras) if name)


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ConfigError("model.family", f"'{name}' is not one of {tuple(FAMILIES)} "
                          "(the entries of tokentune/model/families.py)")
    return FAMILIES[name]
