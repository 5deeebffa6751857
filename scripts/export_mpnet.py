"""Export an upstream sentence-transformers MPNet folder to ONNX (fp32, last_hidden_state).

Runs inside the build-only torch environment that `build_encoder.py --encoder accurate` makes
(.cache/torch-venv: torch, transformers, onnx); nothing else imports torch.

    .cache/torch-venv/bin/python scripts/export_mpnet.py <model dir> <out.onnx>
    .cache/torch-venv/bin/python scripts/export_mpnet.py --reference <model dir> \
        <tokenizer.json> <texts.txt> <out.npy>

--reference writes the fp32 reference embeddings of the test fixture: transformers' own MPNet
in float64, one text at a time (no padding), mean-pooled and normalised as
sentence-transformers does. It is independent of our ONNX graph and its int8 weights.
"""

import sys
from pathlib import Path

import torch
from transformers import AutoModel


class _Hidden(torch.nn.Module):
    """Keyword inputs, one output: the graph takes input_ids and attention_mask only (MPNet
    has no token types), and the caller pools."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def main(model_dir: str, out: str) -> None:
    model = AutoModel.from_pretrained(model_dir).eval()
    # Two rows of different lengths, so the exporter sees padding; shapes stay dynamic.
    ids = torch.tensor([[0, 2000, 2001, 2002, 2], [0, 2003, 2, 1, 1]])
    mask = (ids != 1).long()
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(
            _Hidden(model), (ids, mask), out, input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=17, dynamo=False)


def reference(model_dir: str, tokenizer: str, texts: str, out: str) -> None:
    import numpy as np
    from tokenizers import Tokenizer

    model = AutoModel.from_pretrained(model_dir).eval().double()
    tok = Tokenizer.from_file(tokenizer)
    rows = []
    with torch.no_grad():
        for text in filter(str.strip, Path(texts).read_text().splitlines()):
            ids = torch.tensor([tok.encode(text).ids])
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            pooled = hidden[0].mean(0)
            rows.append((pooled / pooled.norm()).numpy())
    np.save(out, np.stack(rows).astype(np.float32))


if __name__ == "__main__":
    if sys.argv[1] == "--reference":
        reference(*sys.argv[2:6])
    else:
        main(*sys.argv[1:3])
