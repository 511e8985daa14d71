"""From class logits to labels: scales, synset heatmaps, multi-scale fusion, boxes and
their confidence."""
