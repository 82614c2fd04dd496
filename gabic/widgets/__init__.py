"""ipywidgets apps used by the notebooks (ipywidgets is imported only by these modules)."""
