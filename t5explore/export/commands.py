"""`t5explore export RUN_DIR --to=hf OUT_DIR`: a run's model as a Hugging Face transformers checkpoint."""

from __future__ import annotations

import argparse
import json

TARGETS = ("hf",)


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a run's model as a Hugging Face transformers T5 checkpoint (needs t5explore[hf])",
        description="Write RUN_DIR's encoder-decoder (T5 1.0 or T5.1.1 style) from a pre-training checkpoint as "
        "config.json + model.safetensors, and its SentencePiece vocabulary as a tokenizer, so that "
        "AutoModelForSeq2SeqLM.from_pretrained(OUT_DIR) and AutoTokenizer.from_pretrained(OUT_DIR) work offline.",
    )
    p.add_argument("run_dir", help="a run directory (results/<sweep>/<run>)")
    p.add_argument("out_dir", help="the folder to write")
    p.add_argument("--to", choices=TARGETS, required=True, help="the target format: hf (Hugging Face transformers)")
    p.add_argument(
        "--checkpoint",
        default="last",
        help="'last' (default), 'best' (lowest held-out pre-training loss among the kept checkpoints) or a step",
    )
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace, gin_files, gin_bindings) -> int:
    from t5explore.export.run_dir import export_run

    try:
        import transformers  # noqa: F401  (the tokenizer conversion is transformers')
    except ImportError as e:
        from t5explore.model.hf_t5 import HfExportError

        raise HfExportError(
            f"export --to=hf needs transformers ({e}); install it with pip install 't5explore[hf]'"
        ) from e
    print(json.dumps(export_run(args.run_dir, args.out_dir, args.checkpoint), indent=2))
    return 0
