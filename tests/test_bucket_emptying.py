"""Emptying a bucket before its destroy, against a moto server: every object
version and delete marker goes, past the 1,000 keys one DeleteObjects takes."""

from __future__ import annotations

import boto3
import pytest

from levels_tf.aws import Aws

pytestmark = pytest.mark.slow  # a thousand and one PUTs

BUCKET = "fold-live-logs"


def test_every_version_and_delete_marker_goes_in_batches(aws_env):
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=aws_env)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for number in range(1001):
        s3.put_object(Bucket=BUCKET, Key=f"access/{number:05d}", Body=b"log")
    s3.put_object(Bucket=BUCKET, Key="access/00000", Body=b"a second version")
    s3.delete_object(Bucket=BUCKET, Key="access/00001")  # a delete marker

    aws = Aws("eu-west-1", aws_env)
    assert not aws.is_empty(BUCKET)
    assert aws.empty_bucket(BUCKET) == 1001 + 1 + 1
    assert aws.is_empty(BUCKET)
    page = s3.list_object_versions(Bucket=BUCKET)
    assert not page.get("Versions") and not page.get("DeleteMarkers")
    s3.delete_bucket(Bucket=BUCKET)  # what BucketNotEmpty stopped


def test_a_bucket_already_gone_is_empty(aws_env):
    aws = Aws("eu-west-1", aws_env)
    assert aws.is_empty("fold-never-made") and aws.empty_bucket("fold-never-made") == 0
