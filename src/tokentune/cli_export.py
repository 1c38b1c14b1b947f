"""`python -m tokentune.cli_export ckpt_path=... out=...` (the `tokentune-export` command)."""
from tokentune.cli import export

if __name__ == "__main__":
    export()
