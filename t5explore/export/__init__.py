"""Models out of (and into) the harness: `t5explore export RUN_DIR --to=hf OUT_DIR` writes a Hugging Face
`transformers` T5 checkpoint and tokenizer (hf.py, hf_tokenizer.py, run_dir.py); `Pretrain.init_from_hf`
starts training from one (hf_import.py)."""
