"""Training a head on the job's own weak labels (no ground truth): the backbone's
features, the pseudo-masked targets of each image's synsets, and the fit."""
