"""Make resources/sample-model/ reproducibly: a digits classifier, its entry script and a request.

The digits dataset ships inside scikit-learn, so nothing is downloaded. A fixed
random_state makes the trained forest the same on every run with the same
scikit-learn version; requirements.txt pins the version that trained it,
because a pickled estimator is only guaranteed to load in that version.

Usage: python scripts/make_sample_model.py [--out resources/sample-model]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "resources" / "sample-model"
MODEL_FILE = "model.joblib"

ENTRY_SCRIPT = '''\
"""Entry script for the digits classifier, in the AzureML style: init() once, run() per request.

run() receives the raw JSON text of the request body, as AzureML entry scripts
did, and returns something JSON serializable. Caching is done by the function
app around run(); this script only scores.
"""

import json
import os

import joblib
import numpy as np

model = None


def init():
    global model
    model_dir = os.getenv("AZUREML_MODEL_DIR", os.path.dirname(os.path.abspath(__file__)))
    model = joblib.load(os.path.join(model_dir, "{model_file}"))


def run(raw_data):
    data = json.loads(raw_data)["data"]
    rows = np.asarray(data, dtype=float)
    if rows.ndim != 2 or rows.shape[1] != 64:
        raise ValueError("'data' must be a list of rows of 64 pixel values (8x8 digits, 0-16)")
    predictions = model.predict(rows)
    return {{"predictions": predictions.tolist()}}
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    # A forest costs a few milliseconds per prediction: a fair stand-in for a
    # model whose answers are worth caching, while the file stays small.
    model = RandomForestClassifier(n_estimators=60, max_depth=10, random_state=0, n_jobs=1)
    model.fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))

    joblib.dump(model, out / MODEL_FILE, compress=3)
    (out / "score.py").write_text(ENTRY_SCRIPT.format(model_file=MODEL_FILE), encoding="utf-8")
    (out / "requirements.txt").write_text(
        f"scikit-learn=={sklearn.__version__}\njoblib\nnumpy\n", encoding="utf-8"
    )
    sample = {"data": [np.asarray(x_test[0], dtype=float).astype(int).tolist()]}
    (out / "sample-request.json").write_text(json.dumps(sample) + "\n", encoding="utf-8")
    print(f"wrote {out} (test accuracy {accuracy:.3f}, label of the sample {int(y_test[0])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
