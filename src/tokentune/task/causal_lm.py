"""Causal language modelling: one text file as consecutive blocks of task.block_size tokens, its
tail the validation split; the head is *ForCausalLM (its output layer tied to the input
embeddings), scored by perplexity; raw-text predict continues a prompt greedily."""
from __future__ import annotations

from tokentune.errors import UserError, check
from tokentune.task.kind import TaskKind


class CausalLM(TaskKind):
    name = "causal_lm"
    auto_class = "AutoModelForCausalLM"
    peft_task_type = "CAUSAL_LM"
    pipeline_task = "text-generation"
    configures_labels = False  # the head is the vocabulary
    packing_refused = "causal-LM blocks are all task.block_size tokens long: there is no padding to pack away"

    def num_labels(self, task) -> int:
        return 1

    def check_task(self, task) -> None:
        for m in task.metrics:
            check(m == "perplexity", "task.metrics", f"'{m}' is not a causal-LM metric ('perplexity')")

    def length_limit(self, cfg) -> tuple[str, int]:
        return "task.block_size", cfg.task.block_size

    def supported_by(self, family) -> bool:
        return family.lm_head is not None

    def available_splits(self, task) -> set[str]:
        return set(task.splits) | {"validation"}  # the training file's tail

    # -- data -------------------------------------------------------------------------------
    def read_splits(self, task):
        from tokentune.data.readers import hub_split, read_text, split_path

        path = split_path(task, "train")
        if path.is_file():
            return {"train": read_text(path)}
        if not task.hub_dataset:
            raise UserError(f"{path}: file not found; put the corpus there, or set task.data_dir "
                            "(or TOKENTUNE_DATA, the folder above it) to where it is")
        # the hub's copy, its splits joined in order (splits.train.hub_split) as the one local file
        ds, _ = hub_split(task, "train", path)
        return {"train": "".join(str(row[task.text_columns[0]]) for row in ds)}

    def texts(self, raw):
        return {"train": raw["train"].splitlines()}

    def example_texts(self, raw):
        # the blocks are cut from the whole file, its blank lines included: it is one example
        return {"train": [raw["train"]]}

    def encode_splits(self, raw, tokenizer, cfg, key, cache):
        from tokentune.data.encode import encode_lm_text, fingerprint

        return cache.get(f"lm-{fingerprint(key, raw['train'])}.pt", lambda: encode_lm_text(
            tokenizer, raw["train"], cfg.task.block_size, cfg.task.validation_fraction))

    def has_labels(self, tensors) -> bool:
        return True  # the text is its own target

    def fixed_widths(self, cfg):
        return [cfg.task.block_size]  # every block is this long

    # -- model ------------------------------------------------------------------------------
    def head(self, family, model) -> str:
        return family.lm_head

    def model_inputs(self, batch):
        return {**batch, "labels": _targets(batch)}

    def build_metrics(self, task):
        from tokentune.model.metrics import build_metrics

        return build_metrics(task.metrics, 1)

    def update_metrics(self, metrics, out, batch) -> None:
        metrics.update(out.logits[:, :-1].float(), _targets(batch)[:, 1:])

    # -- outputs ----------------------------------------------------------------------------
    def check_prediction_file(self, task) -> None:
        raise UserError("tokentune-predict writes classification/regression predictions; "
                        "a causal-LM task has none (use tokentune-evaluate for perplexity)")

    def input_keys(self, task) -> list[str]:
        return ["text"]

    def split_line(self, line: str) -> list[str]:
        return [line]  # a prompt may hold tabs

    def predict_text(self, cfg, train_cfg, dm, model, trainer, examples) -> list[dict]:
        """Greedy continuations; each step runs the module on the last block_size tokens (the
        context length it trained on) of every unfinished prompt, and a row stops at end-of-text."""
        import torch

        from tokentune.data.batching import collate

        tok, window = dm.tokenizer, train_cfg.task.block_size
        prompts = [t[0] for t in examples]
        # as encode_lm_text tokenizes the training text: no special tokens around it
        ids = tok(prompts, add_special_tokens=False)["input_ids"]
        for n, seq in enumerate(ids):
            if not seq:
                raise UserError(f"text {n + 1}: the prompt {prompts[n]!r} encodes to no tokens")
        device, eos = trainer.strategy.root_device, tok.eos_token_id
        new: list[list[int]] = [[] for _ in prompts]
        with torch.no_grad():
            for start in range(0, len(prompts), cfg.batch_size):
                active = list(range(start, min(start + cfg.batch_size, len(prompts))))
                for _ in range(cfg.max_new_tokens):
                    contexts = [(list(ids[i]) + new[i])[-window:] for i in active]
                    batch = collate([{"input_ids": torch.tensor(c)} for c in contexts], pad_id=tok.pad_token_id)
                    with trainer.precision_plugin.predict_step_context():
                        logits = model({k: v.to(device) for k, v in batch.items()}).logits
                    last = torch.tensor([len(c) - 1 for c in contexts], device=logits.device)
                    picked = logits[torch.arange(len(contexts), device=logits.device), last].argmax(-1).tolist()
                    for i, token in zip(active, picked):
                        new[i].append(token)
                    active = [i for i in active if new[i][-1] != eos]
                    if not active:
                        break
        return [{"text": p, "continuation": tok.decode(n, skip_special_tokens=True)}
                for p, n in zip(prompts, new)]


def _targets(batch):
    """Next-token targets are the inputs themselves (the model shifts them); padding is ignored."""
    return batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
