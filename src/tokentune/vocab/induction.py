"""Token embeddings for a new vocabulary, induced from the backbone's old ones.

A vocabulary made only of old tokens (trim mode) takes every row from the old token of the same
text, whatever the method. Otherwise each new row gets, in this order:
- kept: ids below the first difference between the vocabularies hold the same token (all old
  ids in extend mode), so the old row stays, whatever the method;
- special: the old row of the same role ([CLS] → [CLS]; a pad with no old pad → old eos, ...),
  else of the same text; a special token with neither is drawn at random;
- copy: the token's text is in the old vocabulary at the same position in a word (see
  `vocab.surface`: markers are undone first) → that row, exactly;
- fvt (method fvt only): the old tokenizer splits the text into known pieces → their exact mean
  (Fast Vocabulary Transfer, Gee et al. 2022);
- random: nothing usable, or method random → a draw from a normal with the old rows' mean and
  full covariance (the spread of real rows, not transformers' 1e-9-scaled "mean resizing").
method copy = kept/special/copy, then random. Means are taken in float64 and cast once. An output
layer's bias (BERT's LM head) follows its rows wherever a row is taken from an old one.
"""
from __future__ import annotations

import logging

import torch

from tokentune.errors import ConfigError, UserError
from tokentune.vocab.spec import INDUCTIONS
from tokentune.vocab.surface import OldVocab, Scheme, piece

log = logging.getLogger(__name__)

ROLES = ("cls_token", "sep_token", "bos_token", "eos_token", "pad_token", "unk_token", "mask_token")
# where a role's row comes from when the old tokenizer lacks that role, best first
FALLBACK = {"pad_token": ("eos_token", "sep_token"), "bos_token": ("cls_token", "eos_token"),
            "eos_token": ("sep_token", "bos_token"), "cls_token": ("bos_token", "eos_token"),
            "sep_token": ("eos_token", "bos_token"), "unk_token": (), "mask_token": ()}


def induce_embeddings(model, old_tokenizer, new_tokenizer, method: str = "fvt", seed: int = 0) -> dict:
    """Resize `model`'s token embeddings to `new_tokenizer` and initialise every row; returns counts."""
    if method not in INDUCTIONS:
        raise ConfigError("tokenizer.induction", f"'{method}' is not one of {INDUCTIONS}")
    emb = model.get_input_embeddings()
    # on the CPU, whatever the model's device or a default-device context (Lightning's
    # configure_model may run inside one): the generator and index tensors live there
    old_w = emb.weight.detach().to("cpu")
    n_old = len(old_tokenizer)
    if n_old > old_w.shape[0]:
        raise UserError(f"model.tokenizer: the backbone tokenizer has {n_old:,} tokens but the "
                        f"model only {old_w.shape[0]:,} embedding rows; they do not belong together")
    plan = _plan(old_tokenizer, new_tokenizer, method)
    n_new = len(plan)
    gen = torch.Generator().manual_seed(seed)
    new_w = _rows(old_w[:n_old], plan, gen)
    out = model.get_output_embeddings()
    untied_out = out is not None and out.weight is not emb.weight and out.weight.shape[0] == old_w.shape[0]
    new_out = _rows(out.weight.detach().to("cpu")[:n_old], plan, gen) if untied_out else None
    bias = getattr(out, "bias", None)
    old_bias = bias.detach().to("cpu").clone() if bias is not None and bias.shape[0] == old_w.shape[0] else None

    model.resize_token_embeddings(n_new, mean_resizing=False)  # also re-ties GPT-2's head
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(new_w)
        if new_out is not None:
            model.get_output_embeddings().weight.copy_(new_out)
        if old_bias is not None:  # resizing keeps bias[:n], which only fits rows that did not move
            new_bias = model.get_output_embeddings().bias
            dst = [i for i, p in enumerate(plan) if p[0] in ("kept", "special", "copied")]
            src = torch.tensor([plan[i][1] for i in dst], dtype=torch.long)
            new_bias[torch.tensor(dst, dtype=torch.long, device=new_bias.device)] = \
                old_bias[src].to(new_bias.device)
    _update_special_ids(model, new_tokenizer)

    stats: dict = {"method": method, "old_size": n_old, "new_size": n_new}
    for how in ("kept", "special", "copied", "fvt", "random"):
        stats[how] = sum(1 for p in plan if p[0] == how)
    log.info("embedding induction (%s): %s", method, stats)
    return stats


def set_embeddings_trainable(model, flag: bool = True) -> int:
    """Let the token embedding rows (and an untied output head) train, whatever PEFT froze.

    Call it after wrapping with PEFT and before building the optimizer; works on a PeftModel too
    (it forwards get_input_embeddings). Returns the number of parameters switched.
    """
    params = {id(p): p for p in (model.get_input_embeddings().weight,
                                 getattr(model.get_output_embeddings(), "weight", None))
              if p is not None}
    for p in params.values():
        p.requires_grad_(flag)
    return sum(p.numel() for p in params.values())


def _plan(old_tok, new_tok, method: str) -> list[tuple]:
    """One (how, source) per new id: ("kept"|"special"|"copied", old_id), ("fvt", [old ids]), ("random",)."""
    new_vocab = new_tok.get_vocab()
    n_new = max(new_vocab.values()) + 1
    tokens: list[str | None] = [None] * n_new
    for token, i in new_vocab.items():
        tokens[i] = token
    old_vocab = old_tok.get_vocab()
    if all(t is not None and t in old_vocab for t in tokens):
        return [("kept", i) if old_vocab[t] == i else ("copied", old_vocab[t]) for i, t in enumerate(tokens)]
    old_tokens = old_tok.convert_ids_to_tokens(list(range(len(old_tok))))
    kept = 0
    while kept < min(len(old_tokens), n_new) and tokens[kept] == old_tokens[kept]:
        kept += 1
    specials = _special_sources(old_tok, new_tok)
    unmatched = {new_tok.convert_tokens_to_ids(t) for t in new_tok.all_special_tokens} - set(specials)
    old = OldVocab(old_tok)
    scheme = Scheme.of(new_tok.backend_tokenizer)
    plan: list[tuple] = []
    for i, token in enumerate(tokens):
        if i < kept:
            plan.append(("kept", i))
        elif i in specials:
            plan.append(("special", specials[i]))
        elif token is None or method == "random" or i in unmatched:  # "[MASK]" spelled out means nothing
            plan.append(("random",))
        else:
            p = piece(token, scheme)
            j = old.find(p)
            pieces = old.split(p) if j is None and method == "fvt" else []
            plan.append(("copied", j) if j is not None else ("fvt", pieces) if pieces else ("random",))
    return plan


def _special_sources(old_tok, new_tok) -> dict[int, int]:
    """new id → old id for each new special token: same role, else a fallback role, else same text."""
    out: dict[int, int] = {}
    for role in ROLES:
        token = getattr(new_tok, role, None)
        if token is None or new_tok.convert_tokens_to_ids(str(token)) in out:
            continue
        new_id = new_tok.convert_tokens_to_ids(str(token))
        for source in (role, *FALLBACK[role]):
            old_token = getattr(old_tok, source, None)
            if old_token is not None:
                out[new_id] = old_tok.convert_tokens_to_ids(str(old_token))
                break
    old_vocab = old_tok.get_vocab()
    for token in new_tok.all_special_tokens:
        new_id = new_tok.convert_tokens_to_ids(token)
        if new_id not in out and token in old_vocab:
            out[new_id] = old_vocab[token]
    return out


def _rows(old: torch.Tensor, plan: list[tuple], gen: torch.Generator) -> torch.Tensor:
    """The new weight matrix for `plan`, in `old`'s dtype."""
    cpu = dict(device="cpu")
    new = torch.empty(len(plan), old.shape[1], dtype=old.dtype, **cpu)

    def index(ids: list[int]) -> torch.Tensor:
        return torch.tensor(ids, dtype=torch.long, **cpu)

    copy_dst = [i for i, p in enumerate(plan) if p[0] in ("kept", "special", "copied")]
    if copy_dst:
        new[index(copy_dst)] = old[index([plan[i][1] for i in copy_dst])]
    mean_dst = [i for i, p in enumerate(plan) if p[0] == "fvt"]
    if mean_dst:
        flat = index([j for i in mean_dst for j in plan[i][1]])
        owner = torch.repeat_interleave(torch.arange(len(mean_dst), **cpu),
                                        index([len(plan[i][1]) for i in mean_dst]))
        sums = torch.zeros(len(mean_dst), old.shape[1], dtype=torch.float64, **cpu)
        sums.index_add_(0, owner, old[flat].double())
        counts = torch.bincount(owner, minlength=len(mean_dst)).double().unsqueeze(1)
        new[index(mean_dst)] = (sums / counts).to(old.dtype)
    random_dst = [i for i, p in enumerate(plan) if p[0] == "random"]
    if random_dst:
        new[index(random_dst)] = _draw(old, len(random_dst), gen).to(old.dtype)
    return new


def _draw(old: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """n rows ~ N(mean, covariance) of `old`; per-dimension spread when the covariance is singular."""
    x = old.double()
    mean = x.mean(0)
    centered = x - mean
    cov = centered.T @ centered / max(x.shape[0] - 1, 1)
    chol, info = torch.linalg.cholesky_ex(cov)
    if info.item() != 0:  # fewer rows than dimensions, or duplicate rows
        chol = torch.diag(cov.diagonal().clamp_min(0).sqrt())
    z = torch.randn(n, x.shape[1], generator=gen, dtype=torch.float64, device="cpu")
    return mean + z @ chol.T


def _update_special_ids(model, tok) -> None:
    """Point the config (and the padding row) at the new vocabulary's special ids."""
    for attr in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
        new_id = getattr(tok, attr, None)
        for config in (model.config, getattr(model, "generation_config", None)):
            if config is not None and new_id is not None and hasattr(config, attr):
                setattr(config, attr, new_id)
    emb = model.get_input_embeddings()
    if getattr(emb, "padding_idx", None) is not None and tok.pad_token_id is not None:
        emb.padding_idx = tok.pad_token_id
