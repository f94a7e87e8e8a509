"""Reports: what the notebooks fetch from a Lab (insights), the figures computed once (metrics,
written to metrics.json), the findings in words (summaries), the notebook helpers (notebook),
the papermill runner (runner) and the HTML around the pages (pages)."""

# before the failing line a notebook's failure text quotes (runner._describe_failure); the CLI
# prints it on a line of its own
QUOTED_LINE = "\n    > "
