"""The Events page: every tenant event live, filterable, exportable, with a detail pane.

``records`` (one event as stored), ``model`` (every loaded event), ``filter`` (what the view
shows), ``layout`` and ``page`` (the widget), ``detail`` (the selected event and what to do
about a failure), ``export`` (CSV/JSON).
"""
