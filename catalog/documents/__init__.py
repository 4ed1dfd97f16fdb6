"""Documents of a version: the dataset card, its Croissant JSON-LD, the validation report.

- ``card/`` writes ``CARD.md`` and ``card.html``: ``stats`` (one bounded scan of the data
  files), ``text`` (the rows both renderings say), ``markdown``, ``html``
- ``croissant`` builds and writes ``croissant.json``
- ``report`` writes ``validation.json`` and ``validation.html``, with ``report_plots``
- shared: ``manifest_view`` (what every document reads from a manifest), ``svg`` (the one SVG
  kit), ``style`` (the one palette and stylesheet), ``output`` (writing a file whole),
  ``exceptions``
"""
