"""How good the labels are: ground truth, localization and detection metrics, threshold
calibration, fitting the boxes' confidence."""
