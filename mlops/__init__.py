"""The model's batch jobs: the retraining pipeline and the drift report. They sit on the model
side (graph_model, etl snapshots, the store), never beside the online services."""
