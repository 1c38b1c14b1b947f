"""Task data: readers, tokenization cache, batching, and the LightningDataModule."""
