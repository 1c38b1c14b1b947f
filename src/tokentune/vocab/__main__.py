"""`python -m tokentune.vocab tokenizer=bpe32k task=sst2`: build (or load) a vocabulary and print
its report, without training. Takes the same overrides as train.py."""
from tokentune.cli import vocab

if __name__ == "__main__":
    vocab()
