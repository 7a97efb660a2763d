"""The file MLflow runs to load a registered pfnforge model (MLflow's "models from code"): no pickled
objects in the registry, only this entry point and the model directory artifact."""

import mlflow.models

from pfnforge.inference.pyfunc import PFNPyfuncModel

mlflow.models.set_model(PFNPyfuncModel())
