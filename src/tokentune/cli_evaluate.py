"""`python -m tokentune.cli_evaluate ckpt_path=...` (the `tokentune-evaluate` command)."""
from tokentune.cli import evaluate

if __name__ == "__main__":
    evaluate()
