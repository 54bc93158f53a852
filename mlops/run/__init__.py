"""Run one step anywhere: staged outputs, read-tracked params, output stamps, and the up-to-date rule.

No doit here: the doit adapter calls in through an `Executor` and keeps what `made_record` returns.
"""
