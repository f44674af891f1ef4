"""What several test modules share: the tiny training (``training``), a real MLflow server
(``mlflow_server``), sweeps (``sweeping``), sim2sim in a subprocess (``deployment``) and
synthetic stress clips with known answers (``stress_clips``). Test modules import from here, never from each other."""
