"""A registered policy as an MLflow pyfunc model: raw observations in, actions (the policy mean) out.

This file is the model's code ("models from code"): ``tracking.registry`` copies it into every
model version it registers, next to the export folder (``artifacts/policy/``: policy.onnx,
policy.json, obs_norm.npz, policy.pt), and ``mlflow.pyfunc.load_model`` runs it. It needs numpy,
onnxruntime and mlflow only, not this project::

    model = mlflow.pyfunc.load_model("models:/HumanoidAMP-policy@champion")
    actions = model.predict(obs)        # obs: float32 array (batch, 105) -> (batch, 28)

An LSTM policy (policy.json ``policy.kind`` "lstm") takes and returns its state, one step per call
(zeros at an episode's start, then each step's h1, c1 as the next step's h0, c0)::

    out = model.predict({"obs": obs, "h0": h, "c0": c})   # h, c: (layers, batch, units)
    actions, h, c = out["actions"], out["h1"], out["c1"]
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
        self.inputs = [i.name for i in self.session.get_inputs()]  # ["obs"], an LSTM's ["obs", "h0", "c0"]
        self.outputs = [o.name for o in self.session.get_outputs()]

    # np.ndarray: a hint MLflow neither validates nor converts by (others warn when the model is
    # logged); an LSTM's input and output are dicts of arrays, checked against the signature
    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        if self.inputs == ["obs"]:
            return self.session.run(["actions"], {"obs": np.asarray(model_input, dtype=np.float32)})[0]
        if not isinstance(model_input, dict) or set(model_input) != set(self.inputs):
            raise ValueError(
                f"this policy is recurrent: predict({{{', '.join(repr(k) for k in self.inputs)}}}) with the "
                "state zeros at an episode's start; it returns {" + ", ".join(repr(k) for k in self.outputs) + "}"
            )
        feed = {k: np.asarray(model_input[k], dtype=np.float32) for k in self.inputs}
        return dict(zip(self.outputs, self.session.run(self.outputs, feed)))


mlflow.models.set_model(OnnxPolicy())
