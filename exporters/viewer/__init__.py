"""A view of an export for people: one small graph model (:mod:`.model`) rendered both to
Graphviz DOT and to self-contained interactive HTML (:mod:`.html`).

The same model serves the ``--format html`` files and the ``/prov/`` pages, so a run looks the
same in a file opened from disk and on the server.
"""
