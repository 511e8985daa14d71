"""The classifier and its fully convolutional form: backbones, the EfficientNet-Lite models and their weight files, fcn, and grid: where a map's cells sit."""
