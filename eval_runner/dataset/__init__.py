"""Monthly evaluation datasets: shaping from field sources (pure), manifest with lineage, build and read."""
