"""Hyperparameter sweeps over AMP trainings with Ray Tune (the only package that imports Ray).

    python -m sweeps default              # cfg/sweep/default.yaml; `make sweep`
    python -m sweeps default --resume     # `make sweep RESUME=1`

space.py: sweep files and the check of every combination; trial.py: one trial (Trainer + MLflow child
run + Tune reports with checkpoints); runner.py: the Tuner, the parent run and the final table;
ray_session.py: starting or joining Ray, quietly; errors.py: the one-line errors; console.py: the
line per trial report and end (Ray's own output off unless verbose); analysis.py: what each
dimension did. Above tracking: promote.py (the best configuration's checkpoint into the model
registry, `make promote`) and sim2sim.py (sim2sim of a registered model version).
"""
