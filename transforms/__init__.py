"""The work of the weak-labelling pipeline, as plain Python/TensorFlow (no Beam here).

Modules, one idea each:
  backbones          registry of ImageNet classifiers and their weights
  efficientnet_lite  EfficientNet-Lite0 in Keras and its torch-weights conversion
  legacy_torch       restricted reader of legacy PyTorch weight files
  fcn                classifier → fully convolutional response maps (ResponseMapper)
  synsets            WordNet synsets over the ImageNet-1k classes
  scales             input scales (fixed H×W or shorter side)
  heatmaps           map grids, bilinear resampling, fusion across scales
  multiscale         one image's synset heatmaps at several scales, fused
  boxes              boxes from a heatmap

Submodules are imported explicitly (``from transforms.fcn import ResponseMapper``) so that
code needing only synsets or boxes does not pay for importing TensorFlow.
"""
