"""A registered policy as an MLflow pyfunc model: raw observations in, actions (the policy mean) out.

This file is the model's code ("models from code"): ``tracking.registry`` copies it into every
model version it registers, next to the export folder (``artifacts/policy/``: policy.onnx,
policy.json, obs_norm.npz, policy.pt), and ``mlflow.pyfunc.load_model`` runs it. It needs numpy,
onnxruntime and mlflow only, not this project::

    model = mlflow.pyfunc.load_model("models:/HumanoidAMP-policy@champion")
    actions = model.predict(obs)        # obs: float32 array (batch, 105) -> (batch, 28)
"""

import os

import mlflow
import numpy as np


class OnnxPolicy(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        import onnxruntime as ort

        self.session = ort.InferenceSession(
            os.path.join(context.artifacts["policy"], "policy.onnx"), providers=["CPUExecutionProvider"]
        )

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        obs = np.asarray(model_input, dtype=np.float32)
        return self.session.run(["actions"], {"obs": obs})[0]


mlflow.models.set_model(OnnxPolicy())
