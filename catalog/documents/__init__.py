"""Documents of a version: dataset card, Croissant JSON-LD, the validation report."""
