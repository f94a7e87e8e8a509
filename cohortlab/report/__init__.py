"""Reports: the figures (metrics), the written findings, the notebook helpers and the papermill
runner that turns the notebooks into HTML pages with an index."""
