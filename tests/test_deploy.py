"""What can be checked of the Dataflow and Flink deployment without a cloud or a cluster:
the pipeline translates to the portable Runner API, Dataflow options parse, the GPU image
pins what setup.py allows, the Flex Template's parameters are real options, and the Flink
submit script runs the job (against an embedded job server and local workers)."""
import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import (DebugOptions, GoogleCloudOptions,
                                                  PipelineOptions, WorkerOptions)
from packaging.requirements import Requirement

from pipeline.options import LabelOptions, label_config, unknown_flags
from pipeline.run import build
from transforms.io.records import LABELS_SCHEMA
from transforms.maps.scales import DEFAULT_SCALES

from conftest import DATA, by_uri, table

ROOT = Path(__file__).parent.parent
GPU = "worker_accelerator=type:nvidia-tesla-t4;count:1;install-nvidia-driver"
DATAFLOW_FLAGS = [
    "--runner", "DataflowRunner", "--project", "my-project", "--region", "europe-west4",
    "--temp_location", "gs://my-bucket/tmp", "--staging_location", "gs://my-bucket/staging",
    "--sdk_container_image", "europe-west4-docker.pkg.dev/my-project/images/fcn-weak-labels-gpu:0.1.0",
    f"--dataflow_service_options={GPU}", "--experiments=use_runner_v2",
    "--machine_type", "n1-standard-8", "--max_num_workers", "20",
]


def _options(*extra):
    return PipelineOptions(["--input", str(DATA / "*.jpg"), "--output", "gs://my-bucket/labels",
                            "--synsets", "dog", *extra])


def test_dataflow_options_parse_and_reach_our_options(weights_cache):
    options = _options(*DATAFLOW_FLAGS, "--large-model")
    assert unknown_flags(options) == []
    cloud = options.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region, cloud.temp_location) == (
        "my-project", "europe-west4", "gs://my-bucket/tmp")
    assert cloud.dataflow_service_options == [GPU]
    assert options.view_as(WorkerOptions).sdk_container_image.endswith("fcn-weak-labels-gpu:0.1.0")
    assert options.view_as(WorkerOptions).machine_type == "n1-standard-8"
    assert options.view_as(LabelOptions).large_model
    config, _ = label_config(options)
    assert config.synsets[0].wnid == "n02084071"


def test_dataflow_cpu_worker_flags_parse(weights_cache):
    options = _options("--runner", "DataflowRunner", "--project", "my-project",
                       "--machine_type", "n2-standard-8",
                       "--experiments=no_use_multiple_sdk_containers",
                       "--number_of_worker_harness_threads=8", "--threads", "1")
    assert unknown_flags(options) == []
    assert options.view_as(DebugOptions).number_of_worker_harness_threads == 8
    assert "no_use_multiple_sdk_containers" in options.view_as(DebugOptions).experiments
    assert label_config(options)[0].intra_op_threads == 1


def test_the_pipeline_translates_to_the_portable_runner_api(weights_cache, tmp_path):
    options = _options(*DATAFLOW_FLAGS)
    config, _ = label_config(options)
    # (gs:// paths need the gcp extra even to build the transforms: local paths here.)
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    pq.write_table(LABELS_SCHEMA.empty_table(), earlier / "labels-00000-of-00001.parquet")
    p = beam.Pipeline(options=PipelineOptions(["--runner", "FnApiRunner"]))
    build(p, options.view_as(LabelOptions), config, str(tmp_path / "labels"),
          skip_existing=str(earlier / "labels-*.parquet"))
    proto = p.to_runner_api()
    names = {t.unique_name for t in proto.components.transforms.values()}
    for step in ("ReadImageUris", "Stat", "SkipUnchanged", "Decode", "ResponseMaps", "LabelRows",
                 "WriteLabels", "WriteErrors", "WriteSkipped"):
        assert step in names, step
    # And back: what a portable job server does with it.
    assert beam.Pipeline.from_runner_api(proto, p.runner, options) is not None


def _pins(dockerfile: str) -> dict[str, str]:
    pins = re.findall(r'"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([0-9][^"]*)"', dockerfile)
    return {name.lower(): version for name, version in pins}


def _install_requires() -> list[Requirement]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "setup")
    requires = next(k.value for k in call.keywords if k.arg == "install_requires")
    return [Requirement(ast.literal_eval(e)) for e in requires.elts]


def test_gpu_image_pins_satisfy_setup_py():
    pins = _pins((ROOT / "deploy" / "gpu-worker.Dockerfile").read_text())
    for requirement in _install_requires():
        # The image swaps tensorflow-cpu for the CUDA build of the same version range.
        name = "tensorflow" if requirement.name == "tensorflow-cpu" else requirement.name.lower()
        assert name in pins, f"{name} is not pinned in the GPU image"
        assert requirement.specifier.contains(pins[name]), (name, pins[name], str(requirement))
    assert "FROM apache/beam_python3.11_sdk:2.77.0" in (ROOT / "deploy" / "gpu-worker.Dockerfile").read_text()
    assert pins["apache-beam"] == "2.77.0"


def test_flex_template_parameters_are_options_of_the_job():
    metadata = json.loads((ROOT / "deploy" / "dataflow" / "metadata.json").read_text())
    names = [p["name"] for p in metadata["parameters"]]
    parser_dests = set(_options().get_all_options())
    for name in names:
        assert name in parser_dests, f"{name} is not an option of the job"
    assert "output" in names and not next(p for p in metadata["parameters"] if p["name"] == "output")["isOptional"]
    for parameter in metadata["parameters"]:
        for regex in parameter.get("regexes", []):
            re.compile(regex)
    # Each default the template states is the job's.
    defaults = _options().get_all_options()
    for parameter in metadata["parameters"]:
        stated = re.search(r"\(default:? ([^;:)\s]+)[;)]", parameter["helpText"])
        if stated and parameter["name"] != "synsets":
            assert stated.group(1) == str(defaults[parameter["name"]]), parameter["name"]
    (scales,) = next(p for p in metadata["parameters"] if p["name"] == "scales")["regexes"]
    assert re.fullmatch(scales, ",".join(map(str, DEFAULT_SCALES)))
    assert re.fullmatch(scales, "224,400x640+flip") and not re.fullmatch(scales, "288+")
    # Flex Templates pass parameters as --name=value: each parses to the same option.
    options = PipelineOptions(["--output=gs://b/x", "--top_k=3", "--batch_size=4", "--scales=288,576"])
    assert unknown_flags(options) == [] and options.view_as(LabelOptions).top_k == 3


def test_flink_submit_script_runs_the_job(photos, tmp_path, worker_pool):
    output = tmp_path / "out"
    env = dict(os.environ, JOB_ENDPOINT="embed", WORKER_POOL=worker_pool, PYTHON=sys.executable)
    result = subprocess.run(["bash", str(ROOT / "deploy" / "flink" / "submit.sh"),
                             "--input", str(photos / "*.jpg"), "--output", str(output),
                             "--synsets", "dog"], env=env, capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(by_uri(table(output, "labels"))) == ["dog.jpg", "eagle.jpg"]
    assert (output / "_SUCCESS").exists()


def test_flink_submit_script_says_what_is_missing():
    env = {k: v for k, v in os.environ.items() if k not in ("JOB_ENDPOINT", "WORKER_POOL", "WORKER_IMAGE")}
    result = subprocess.run(["bash", str(ROOT / "deploy" / "flink" / "submit.sh")], env=env,
                            capture_output=True, text=True)
    assert result.returncode != 0 and "set JOB_ENDPOINT" in result.stderr
