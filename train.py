"""`python train.py [overrides]`: the same as the `tokentune-train` command."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))  # works before `pip install -e .`

from tokentune.cli import train  # noqa: E402

if __name__ == "__main__":
    train()
