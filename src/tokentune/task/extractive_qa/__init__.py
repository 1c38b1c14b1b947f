"""kind: extractive_qa (SQuAD v1.1 and v2.0); the kind itself is tokentune.task.extractive_qa.kind."""
