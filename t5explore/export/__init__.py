"""Models out of the harness: `t5explore export RUN_DIR --to=hf OUT_DIR` writes a Hugging Face `transformers`
T5 checkpoint and tokenizer (run_dir.py, hf_tokenizer.py; the weight layout is model/hf_t5.py's, which
`Pretrain.init_from_hf` reads back through model/hf_import.py)."""
