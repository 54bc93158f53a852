"""mlops: doit tasks for ML pipelines, wired from one layered Hydra configuration."""
