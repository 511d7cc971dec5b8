"""Create S3 buckets (idempotently) with nothing but the standard library: SigV4-signed PUT Bucket.

The offline cluster has no S3 client image and the host may have no boto3 yet, so cluster-up.sh uses
this to create Argo's artifact bucket and MLflow's bucket on the in-cluster versitygw.
Usage: python3 s3-mkbucket.py ENDPOINT_URL BUCKET... (credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)
"""

import datetime
import hashlib
import hmac
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

REGION = os.environ.get("AWS_REGION", "us-east-1")


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def put_bucket(endpoint: str, bucket: str, access_key: str, secret_key: str) -> int:
    """PUT /bucket signed with SigV4; returns the HTTP status (200 created, 409 already exists)."""
    url = urllib.parse.urlsplit(endpoint)
    if url.scheme not in {"http", "https"}:
        raise SystemExit(f"endpoint {endpoint!r} must be an http(s) URL")
    now = datetime.datetime.now(datetime.UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(b"").hexdigest()
    headers = {"host": url.netloc, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        ["PUT", f"/{bucket}", "", *(f"{k}:{headers[k]}" for k in sorted(headers)), "", signed, payload_hash]
    )
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _sign(_sign(_sign(_sign(f"AWS4{secret_key}".encode(), day), REGION), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    )
    req = urllib.request.Request(  # noqa: S310  # scheme checked above
        f"{endpoint.rstrip('/')}/{bucket}", method="PUT", headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310  # scheme checked above
            return resp.status
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        if e.code == 409 and ("BucketAlreadyOwnedByYou" in body or "BucketAlreadyExists" in body):
            return 409
        raise SystemExit(f"creating bucket {bucket!r} at {endpoint}: HTTP {e.code}: {body}") from e


def main() -> int:
    """Create each bucket named on the command line; an existing one is fine."""
    endpoint, buckets = sys.argv[1], sys.argv[2:]
    access, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    for b in buckets:
        status = put_bucket_when_up(endpoint, b, access, secret)
        print(f"bucket {b}: {'created' if status == 200 else 'exists'}")
    return 0


def put_bucket_when_up(endpoint: str, bucket: str, access: str, secret: str, patience_s: float = 180) -> int:
    """put_bucket, retried while the server is unreachable.

    A NodePort accepts connections (docker-proxy) before the pod behind it answers, e.g. right after the
    S3 pod or its node restarted.
    """
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return put_bucket(endpoint, bucket, access, secret)
        except (urllib.error.URLError, OSError) as e:  # HTTP errors are SystemExit, never retried
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"creating bucket {bucket!r}: {endpoint} unreachable for {patience_s:.0f}s: {e}"
                ) from e
            time.sleep(3)


if __name__ == "__main__":
    sys.exit(main())
