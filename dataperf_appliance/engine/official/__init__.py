"""The two official DataPerf vision evaluators' folders: evaluate one as they would, export a run as one.

`setup` reads an official folder's task file as it is; `evaluate` writes the
official result files of a folder in either layout, `export` writes a finished
run as folders the official evaluators read unchanged. Each track names its
evaluator's task file, model and functions (`Track.official`);
`dataperf_appliance.tracks.evaluate_folder` and `export_run` pick the track
and call them, in that one direction.
docs/official-evaluators.md lists every difference from the official code.
"""
