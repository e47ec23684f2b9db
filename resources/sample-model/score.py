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
    model = joblib.load(os.path.join(model_dir, "model.joblib"))


def run(raw_data):
    data = json.loads(raw_data)["data"]
    rows = np.asarray(data, dtype=float)
    if rows.ndim != 2 or rows.shape[1] != 64:
        raise ValueError("'data' must be a list of rows of 64 pixel values (8x8 digits, 0-16)")
    predictions = model.predict(rows)
    return {"predictions": predictions.tolist()}
