"""Methods as code: a user's DataPerf appraiser or selection class, run for every task, repeat and setting.

`runner` runs a method file in a child process (`child`) with its own
environment (`environments`) and limits; the tracks turn its answer into an
order or a training set and score it as any built-in strategy.
"""
