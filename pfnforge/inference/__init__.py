"""Using trained PFNs: portable model directories and checkpoints (``artifact``), preprocessing
(``preprocess``), scikit-learn estimators (``estimators``), the MLflow registry and pyfunc flavour
(``mlflow_models``, ``pyfunc``), and the bundled default models (``default_models/``)."""
