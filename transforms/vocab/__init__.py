"""What the maps are of: WordNet synsets over the ImageNet-1k classes, vocabularies, and their data files."""
