"""The backbone's own tokenizer (`tokenizer=pretrained`), ready for batching: padding on the right.

A tokenizer without a pad token (GPT-2's) pads with the token of its family's `pad_with` role
(GPT-2: <|endoftext|>); the classification head then pools the last non-padding token
(transformers finds it from pad_token_id).
"""
from __future__ import annotations

from tokentune.config import ModelConfig
from tokentune.errors import UserError
from tokentune.model.families import get_family
from tokentune.model.hub import from_hub

EOT = "<|endoftext|>"


def byte_level_tokenizer():
    """GPT-2's byte-level alphabet (256 symbols, no merges) plus <|endoftext|>, built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {symbol: i for i, symbol in enumerate(sorted(alphabet))}
    vocab[EOT] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOT, bos_token=EOT, unk_token=EOT)


def family_byte_level_tokenizer(family: str):
    """GPT-2's byte-level alphabet (no merges) behind the family's special tokens, in the family's
    id order, with its template ([CLS]-style roles around the text where it has one): a small
    offline stand-in for a family's byte-level tokenizer (RoBERTa: <s>=0, <pad>=1, </s>=2 ...)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    fam = get_family(family)
    specials = list(dict.fromkeys(fam.special_tokens.values()))
    vocab = {t: i for i, t in enumerate(specials)}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trim = processors.ByteLevel(trim_offsets=True)
    if fam.post_processor == "bert":
        cls, sep = fam.special_tokens["cls_token"], fam.special_tokens["sep_token"]
        tok.post_processor = processors.Sequence([trim, processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])])])
    else:
        tok.post_processor = trim
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_input_names=list(fam.input_names),
                                   **fam.special_tokens)


def load_base_tokenizer(model: ModelConfig):
    from transformers import AutoTokenizer

    source = model.tokenizer or model.pretrained
    if source == "bytes":
        tok = byte_level_tokenizer()
    elif source == "family_bytes":
        tok = family_byte_level_tokenizer(model.family)
    else:
        tok = from_hub(AutoTokenizer.from_pretrained, source, "model.tokenizer",
                       trust_remote_code=model.trust_remote_code)
    if tok.pad_token is None:
        pad_with = get_family(model.family).pad_with
        if pad_with is None or getattr(tok, pad_with) is None:
            instead = f" nor the {pad_with} that {model.family} models pad with" if pad_with else ""
            raise UserError(f"model.tokenizer: {source} has no pad token{instead}; "
                            "use a tokenizer whose special tokens include one")
        tok.pad_token = getattr(tok, pad_with)
    tok.padding_side = "right"
    return tok
