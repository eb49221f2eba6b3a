"""Fine-tuning a pretrained backbone for action recognition: ``python -m jobs.finetune``."""
