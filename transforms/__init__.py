"""The work of the weak-labelling pipeline, grouped by role along the data flow.

  io/       decode: bytes → upright RGB pixels (Pillow); records: the Parquet output
            contract (schemas, rows)
  model/    backbones: registry of ImageNet classifiers and their weights;
            efficientnet_lite, legacy_torch: the Lite models and their weight files;
            fcn: classifier → fully convolutional class logit maps (ResponseMapper);
            grid: where a map's cells sit in the image (MapGrid);
            onnx_engine: ONNX Runtime as the CPU engine; head: the trainable synset head
  vocab/    synsets: WordNet synsets over the ImageNet-1k classes; vocabularies: named
            synsets (voc), top-k vocabularies (concepts); data/: their generated files
  maps/     scales, heatmaps (synset heat, grids, resampling, fusion), multiscale (one
            image's fused synset maps), boxes (maps → scored components), refine
            (GrabCut), hypotheses (boxes at several thresholds, the ones kept),
            confidence (P(box is right), its calibration file; data/: the shipped one),
            pseudo_masks (a labels row's heat → training targets)
  quality/  ground_truth, localization (CorLoc, MaxBoxAccV2), detection (VOC07 AP,
            precision, recall), calibration (thresholds), confidence_fit (fitting the
            box confidence)
  train/    examples (features, targets), fit: the head trained on the job's labels
  viz/      overlay: pictures and the contact sheet
  export/   labelled (a run's boxes, categories), coco, yolo, pascal_voc, label_studio
  beam/     read, inference, write, progress: the thin Beam wrappers around the above
  config    LabelConfig, what a run computes

Each room imports only the rooms above it in this list (config and beam come last);
only ``beam/`` knows Beam. Submodules are imported explicitly
(``from transforms.model.fcn import ResponseMapper``) so that code needing only synsets
or boxes does not pay for importing TensorFlow.
"""
