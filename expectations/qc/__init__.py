"""QARTOD-style quality control: flags, tests, the plan of a run and its application per chunk."""
