"""How good the labels are: ground truth, localization metrics, threshold calibration."""
