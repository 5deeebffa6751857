import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def encoder_dir() -> Path:
    """The encoder the README's commands build (idempotent: a no-op when up to date)."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_encoder.py")], check=True)
    out = ROOT / "layers" / "encoder"
    assert json.loads((out / "manifest.json").read_text())["dim"] == 384
    return out


@pytest.fixture(scope="session")
def encoder(encoder_dir):
    from labelloop.encoder import Encoder

    return Encoder(encoder_dir)


@pytest.fixture(scope="session")
def reference():
    z = np.load(FIXTURES / "reference_embeddings.npz")
    return [str(t) for t in z["texts"]], z["embeddings"]
