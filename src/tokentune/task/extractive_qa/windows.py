"""Question + context pairs as windows of at most max_length tokens, the context cut into
overlapping pieces (doc_stride tokens shared by neighbours, as transformers' `stride` and HF
run_qa count them) and the question whole in each; every context token keeps its character span
in the context, read from the fast tokenizer's offsets, so any tokenizer tokentune makes or loads
(pretrained, built, extended, trimmed) maps an answer to tokens and back.

A window is labelled with the first reference answer's first and last token, or with the null
position (0, the first token: a special token or the question's, never the context's) when the
question is unanswerable or the answer is not inside that window.
"""
from __future__ import annotations

import torch

from tokentune.errors import UserError

CHUNK = 1000  # questions per tokenizer call
NULL = 0  # the position an unanswerable window points at


def check_room(tokenizer, examples, *, max_length: int, doc_stride: int) -> None:
    """Each question leaves more than doc_stride tokens of a window to its context (else the
    context could not advance from one window to the next)."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    lengths = [len(ids) for ids in tokenizer([e.question for e in examples], add_special_tokens=False)["input_ids"]]
    for e, n in zip(examples, lengths):
        if n == 0:
            raise UserError(f"{e.where}: question id {e.id}: the question {e.question!r} encodes to no tokens")
        room = max_length - n - specials
        if doc_stride >= room:
            raise UserError(f"{e.where}: question id {e.id}: task.doc_stride={doc_stride} is not below "
                            f"data.max_length={max_length} minus the question's {n} tokens and {specials} "
                            f"special tokens ({room} tokens of context per window); lower task.doc_stride "
                            "or raise data.max_length")


def encode_windows(tokenizer, examples, *, max_length: int, doc_stride: int) -> dict[str, torch.Tensor]:
    """A split as flat tensors: per token the ids (and token types), whether it is context and its
    character span there (-1 outside the context); per window its question (an index into
    `examples`), its row number, and with answers its start and end token; the count of
    answers that no window holds whole (too long for the context's share of a window)."""
    from tokentune.data.encode import flatten

    check_room(tokenizer, examples, max_length=max_length, doc_stride=doc_stride)
    labelled = all(e.answers is not None for e in examples)
    ids, types, context, starts, ends, owner, first, last = [], [], [], [], [], [], [], []
    lost = 0
    for chunk_start in range(0, len(examples), CHUNK):
        chunk = examples[chunk_start:chunk_start + CHUNK]
        enc = tokenizer([e.question for e in chunk], [e.context for e in chunk], truncation="only_second",
                        max_length=max_length, stride=doc_stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True)
        held = [False] * len(chunk)
        for w, local in enumerate(enc["overflow_to_sample_mapping"]):
            e = chunk[local]
            seq = enc.sequence_ids(w)
            spans = enc["offset_mapping"][w]
            in_context = [s == 1 for s in seq]
            ids.append(enc["input_ids"][w])
            if "token_type_ids" in enc:
                types.append(enc["token_type_ids"][w])
            context.append([int(c) for c in in_context])
            starts.append([a if c else -1 for (a, _), c in zip(spans, in_context)])
            ends.append([b if c else -1 for (_, b), c in zip(spans, in_context)])
            owner.append(chunk_start + local)
            if labelled:
                span = answer_tokens(e, spans, in_context)
                held[local] |= span is not None
                s, t = span or (NULL, NULL)
                first.append(s)
                last.append(t)
        lost += sum(1 for e, h in zip(chunk, held) if labelled and e.answerable and not h)
    flat, offsets = flatten(ids, torch.int32)
    out = {"input_ids": flat, "offsets": offsets,
           "context_mask": flatten(context, torch.int8)[0],
           "char_starts": flatten(starts, torch.int32)[0], "char_ends": flatten(ends, torch.int32)[0],
           "window_example": torch.tensor(owner, dtype=torch.long),
           "row": torch.arange(len(ids), dtype=torch.long),
           "lost_answers": torch.tensor(lost)}
    if types:
        out["token_type_ids"] = flatten(types, torch.int8)[0]
    if labelled:
        out["start_positions"] = torch.tensor(first, dtype=torch.long)
        out["end_positions"] = torch.tensor(last, dtype=torch.long)
    return out


def answer_tokens(example, spans, in_context) -> tuple[int, int] | None:
    """The first and last token of the example's first answer in this window, or None (no answer,
    or not wholly inside the window's context)."""
    if not example.answers:
        return None
    text, start = example.answers[0]
    end = start + len(text)
    tokens = [i for i, c in enumerate(in_context) if c and spans[i][1] > spans[i][0]]
    if not tokens or spans[tokens[0]][0] > start or spans[tokens[-1]][1] < end:
        return None
    # the last token starting at or before the answer (a byte-level token's span may begin at the
    # space before the word), and the first one reaching its end
    first = max(i for i in tokens if spans[i][0] <= start)
    last = min(i for i in tokens if spans[i][1] >= end)
    return first, last
