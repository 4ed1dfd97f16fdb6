"""The dataset card of a version: the scan of its data, the rows both renderings print, Markdown, HTML, and the writer."""
