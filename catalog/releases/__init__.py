"""Release lifecycle of versions: semvers, transitions, resolving references, diffs."""
