"""`python -m tokentune.cli_predict ckpt_path=...` (the `tokentune-predict` command)."""
from tokentune.cli import predict

if __name__ == "__main__":
    predict()
