#!/usr/bin/env python3
"""Uploads FILE to s3://BUCKET/KEY with boto3's upload_file (default
TransferConfig: 8 MiB parts, 10 threads) and prints the seconds upload_file
took. Endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION. Creates the bucket first.

Usage: storage_boto3_upload.py FILE BUCKET KEY"""
import os
import sys
import time

import boto3


def main():
    path, bucket, key = sys.argv[1:4]
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )
    s3.create_bucket(Bucket=bucket)
    start = time.monotonic()
    s3.upload_file(path, bucket, key)
    elapsed = time.monotonic() - start
    head = s3.head_object(Bucket=bucket, Key=key)
    if head["ContentLength"] != os.path.getsize(path):
        sys.exit("uploaded size differs")
    print(f"{elapsed:.3f}")


if __name__ == "__main__":
    main()
