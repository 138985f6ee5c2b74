"""Re-scoring: metrics and comparisons from predictions produced elsewhere (the study's raw outputs,
another harness), without running a model. Each task registers a reader for its prediction files."""
