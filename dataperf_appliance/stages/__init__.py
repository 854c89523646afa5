"""The stages of a run: the cells of a sweep (`sweeps`), the stages keyed by run id (`pipeline`) and the CLI's run of them all in one process (`local_run`)."""
