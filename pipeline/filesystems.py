"""Object stores for every command: Beam's own filesystem options (``--s3_endpoint_url``,
``--s3_access_key_id``, ``--project`` …) read from the command line, given to Beam's
``FileSystems`` before the first match, read or write, and the buckets a command will
touch checked before any work.

Beam's S3 filesystem cannot list a bucket before it has its options (endpoint, keys):
a Beam pipeline hands them over when it is constructed (and SDK workers when they
start), after the job has matched its inputs. It also retries an unreachable endpoint
for minutes, and a missing bucket only shows when the job writes its first table. So
each command checks its buckets first, with the same options and short timeouts, and a
wrong endpoint, a missing bucket or refused credentials is one line naming the URI
(``StoreError``).
"""
from __future__ import annotations

import argparse
from typing import Iterable, Sequence

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, S3Options

from pipeline.options import stray_arguments, suggest, unknown_flags

EXTRAS = {"s3": "aws", "gs": "gcp"}
# The bucket checks give up after this long without an answer (Beam's own calls retry).
CONNECT_TIMEOUT_S = 10
FILESYSTEM_EPILOG = ("Files may be on any Beam filesystem: local, gs:// (the gcp extra) or "
                     "s3:// (the aws extra). Beam's own options for them are passed through: "
                     "--s3_endpoint_url, --s3_access_key_id, --s3_secret_access_key, "
                     "--s3_region_name, --s3_verify; --project. See docs/object-stores.md.")


class StoreError(ValueError):
    """An object store that cannot be used as given, with what to do."""


def parse_with_filesystems(parser: argparse.ArgumentParser,
                           argv: Sequence[str] | None) -> tuple[argparse.Namespace, PipelineOptions]:
    """A command's own arguments, and Beam's options among the rest (given to
    ``FileSystems``); a flag neither knows is a usage error."""
    args, rest = parser.parse_known_args(argv)
    options = PipelineOptions(rest)
    unknown = unknown_flags(options)
    if unknown:
        parser.error(f"unrecognized argument --{unknown[0]}"
                     f"{suggest(unknown[0], options.get_all_options())}")
    if stray := stray_arguments(options, rest):
        parser.error(f"unexpected argument {stray[0]!r}: each option takes one value (quote "
                     "a value with spaces)")
    FileSystems.set_options(options)
    return args, options


def scheme(uri: str) -> str | None:
    """``s3``, ``gs``, … for a URI; None for a local path."""
    found = FileSystems.get_scheme(uri)
    return None if found in (None, "file") else found


def bucket(uri: str) -> str:
    return uri.split("://", 1)[1].split("/", 1)[0]


def check_stores(uris: Iterable[str | None], options: PipelineOptions) -> None:
    """Each bucket of ``uris`` (local paths and None skipped) exists and answers with
    ``options``; else StoreError."""
    seen = set()
    for uri in uris:
        if not uri or scheme(uri) not in EXTRAS or (scheme(uri), bucket(uri)) in seen:
            continue
        seen.add((scheme(uri), bucket(uri)))
        {"s3": _check_s3, "gs": _check_gcs}[scheme(uri)](uri, options)


def _missing_extra(uri: str) -> StoreError:
    extra = EXTRAS[scheme(uri)]
    return StoreError(f"{uri}: {scheme(uri)}:// needs the {extra} extra: pip install "
                      f"'fcn-weak-labels[{extra}]' (apache-beam[{extra}])")


def _check_s3(uri: str, options: PipelineOptions) -> None:
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    except ImportError:
        raise _missing_extra(uri) from None
    s3 = options.view_as(S3Options)
    endpoint = s3.s3_endpoint_url or "AWS's endpoint for the region"
    # The client Beam's S3 filesystem makes from the same options, answering faster.
    client = boto3.client(
        "s3", region_name=s3.s3_region_name, endpoint_url=s3.s3_endpoint_url,
        aws_access_key_id=s3.s3_access_key_id, aws_secret_access_key=s3.s3_secret_access_key,
        aws_session_token=s3.s3_session_token, use_ssl=not s3.s3_disable_ssl, verify=s3.s3_verify,
        config=Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=CONNECT_TIMEOUT_S,
                      retries={"max_attempts": 2}))
    name = bucket(uri)
    try:
        client.head_bucket(Bucket=name)
    except NoCredentialsError:
        raise StoreError(f"{uri}: no S3 credentials: give --s3_access_key_id and "
                         "--s3_secret_access_key, or set the AWS credentials of the "
                         "environment") from None
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code"))
        if code in ("404", "NoSuchBucket"):
            raise StoreError(f"{uri}: bucket {name!r} does not exist at {endpoint}") from None
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise StoreError(f"{uri}: access to bucket {name!r} refused ({code}): check "
                             "--s3_access_key_id and --s3_secret_access_key") from None
        raise StoreError(f"{uri}: bucket {name!r}: {e}") from None
    except BotoCoreError as e:
        raise StoreError(f"{uri}: cannot reach S3 at {endpoint} ({type(e).__name__}): check "
                         "--s3_endpoint_url and the network") from None


def _check_gcs(uri: str, options: PipelineOptions) -> None:
    try:
        from apache_beam.io.gcp.gcsio import create_storage_client
        from google.api_core import exceptions
    except ImportError:
        raise _missing_extra(uri) from None
    name = bucket(uri)
    try:
        found = create_storage_client(options).lookup_bucket(name, timeout=CONNECT_TIMEOUT_S,
                                                             retry=None)
    except (exceptions.Forbidden, exceptions.Unauthorized):
        raise StoreError(f"{uri}: access to bucket {name!r} refused: check the credentials "
                         "(gcloud auth application-default login, or a service account)") from None
    except Exception as e:  # transport errors come from several libraries
        raise StoreError(f"{uri}: cannot reach Cloud Storage ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if found is None:
        raise StoreError(f"{uri}: bucket {name!r} does not exist")
