"""The debugging track: find the mislabeled training rows.

`strategies` turns a task's data into an inspection order (most suspicious row
first), `submissions` reads and writes those orders as DataPerf submission
files, and `evaluation` scores them with the fixing curve.
"""
