"""Where a run's work units are computed: in this process (model_units.py), in one worker process per
group of GPUs on this machine (gpu_groups.py, `--gpus-per-model K`), or as Ray tasks on a cluster
(ray_tasks.py, `--engine ray`). Every way hands back the same UnitResults (store/unit_store.py)."""
