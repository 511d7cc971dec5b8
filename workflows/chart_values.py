"""The chart's values as one typed model; charts/fleet-eval/values.schema.json is generated from it.

values.yaml holds every default and this model every type, so each key is required here: Helm validates
the values merged over values.yaml, which always carry it. ``extra="forbid"`` wherever a typo'd key would
otherwise be ignored silently; Kubernetes objects passed through verbatim (peers, security contexts) stay
open. Rules between keys live in ``ChartValues``: its validator for Python, its ``allOf`` for Helm, and
tests/chart checks both reject the same bad values.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic.alias_generators import to_camel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from eval_runner.contracts import N_SHARDS
from eval_runner.fleet.models import Mode


def _distinct(items: list[str]) -> list[str]:
    if len(set(items)) != len(items):
        raise ValueError(f"items must be distinct, got {items}")
    return items


def _shard_count(urls: list[str]) -> list[str]:
    # shard_of() routes a device to crc32 % len(urls): any other count than the sources' sends requests astray.
    if urls and len(urls) != N_SHARDS:
        raise ValueError(f"list none or all {N_SHARDS} shard URLs, got {len(urls)}")
    return urls


Port = Annotated[int, Field(ge=1, le=65535)]
Quantity = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")]
Month = Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
HttpUrlOrEmpty = Annotated[str, Field(pattern=r"^(https?://.+)?$")]
Bucket = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
RepositoryName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Password = Annotated[str, Field(min_length=8)]
Labels = dict[str, str]
# pydantic has no uniqueItems for lists; sets would lose the order values.yaml gives.
Distinct = Field(json_schema_extra={"uniqueItems": True})
# A Kubernetes object passed through as is (NetworkPolicyPeer, ...): the API server validates it.
KubeObject = dict[str, Any]
ShardUrls = Annotated[
    list[Annotated[str, Field(pattern=r"^https?://")]],
    AfterValidator(_shard_count),
    Field(json_schema_extra={"anyOf": [{"maxItems": 0}, {"minItems": N_SHARDS, "maxItems": N_SHARDS}]}),
]
Version = Annotated[
    str,
    Field(
        pattern=r"^(v?[0-9]+(\.[0-9]+)*([abc]|rc|\.post|\.dev)?[0-9]*(\+[A-Za-z0-9.]+)?"
        r"|latest|git:[A-Za-z0-9][A-Za-z0-9._/-]*)$"
    ),
]


class _Values(BaseModel):
    """A mapping of the values: keys in camelCase as in values.yaml, no others, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, alias_generator=to_camel, frozen=True)


class _Open(_Values):
    """A Kubernetes object of which the chart pins a few fields; the rest passes through."""

    model_config = ConfigDict(extra="allow")


class Image(_Values):
    """A container image: its tag, and the digest of the content to run ("": whatever the tag holds)."""

    repository: Annotated[str, Field(min_length=1)]
    tag: str | float  # YAML reads an unquoted 15 or 3.1 as a number; the chart prints it with toString
    digest: Annotated[str, Field(pattern=r"^(sha256:[0-9a-f]{64})?$")]


class Persistence(_Values):
    """A PersistentVolumeClaim, or an emptyDir when disabled."""

    enabled: bool
    size: Quantity
    storage_class: str


class Resources(_Values):
    """Kubernetes ResourceRequirements."""

    requests: dict[str, str | int | float]
    limits: dict[str, str | int | float]


class ServiceAccount(_Values):
    """`workflows.serviceAccount`: the workflow pods' ServiceAccount."""

    create: bool
    annotations: Labels


class Workflows(_Values):
    """`workflows`: the WorkflowTemplates and the monthly CronWorkflow."""

    enabled: bool
    cron: bool
    service_account: ServiceAccount


class S3NetworkPolicy(_Values):
    """`s3.networkPolicy`: the NetworkPolicy in the S3 server's namespace."""

    enabled: bool
    namespace: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    pod_selector: Annotated[Labels, Field(min_length=1)]
    port: Port
    extra_peers: list[KubeObject]


class S3(_Values):
    """`s3`: the object store every step reads and writes."""

    endpoint: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$", description="host:port without a scheme")]
    bucket: Bucket
    artifact_bucket: Bucket
    region: Annotated[str, Field(min_length=1)]
    secure: bool
    network_policy: S3NetworkPolicy


class ArtifactRepository(_Values):
    """`artifactRepository`: Argo's artifact repository ConfigMap."""

    create: bool
    archive_logs: bool


class S3Keys(_Values):
    """`secrets.s3`: the S3 keys."""

    access_key: str
    secret_key: str


class PostgresSecret(_Values):
    """`secrets.postgres`: the analytics database."""

    dsn: str


class ShardsSecret(_Values):
    """`secrets.shards`: the API shards' bearer token."""

    token: str


class Secrets(_Values):
    """`secrets`: Secrets the chart creates (development and demos only)."""

    create: bool
    s3: S3Keys
    postgres: PostgresSecret
    shards: ShardsSecret


class Sources(_Values):
    """`sources`: the real field sources."""

    shard_urls: ShardUrls
    library_git_url: str


class PullSecret(_Values):
    """An image pull Secret reference."""

    name: str


class Images(_Values):
    """`images`: the chart's own images."""

    core: Image
    pull_policy: Literal["Always", "IfNotPresent", "Never"]
    pull_secrets: list[PullSecret]


class Mlflow(_Values):
    """`mlflow`: the MLflow tracking server."""

    enabled: bool
    external_uri: HttpUrlOrEmpty
    image: Image
    port: Port
    artifact_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")]
    allowed_hosts: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9*.:\[\]-]+$")]]
    persistence: Persistence
    resources: Resources


class Review(_Values):
    """`review`: the review UI."""

    enabled: bool
    port: Port
    resources: Resources


class PackageIndex(_Values):
    """`packageIndex`: the private package index."""

    enabled: bool
    external_url: HttpUrlOrEmpty
    image: Image
    port: Port
    upload_secret: Annotated[str, Field(pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$")]
    extra_directories: list[Annotated[str, Field(pattern=r"^/")]]
    persistence: Persistence
    resources: Resources


class DemoPostgres(_Values):
    """`demo.postgres`: the simulator's database."""

    image: Image
    password: Password


class GitServer(_Values):
    """`demo.gitServer`: the demo Git server."""

    enabled: bool
    image: Image
    repositories: Annotated[list[RepositoryName], AfterValidator(_distinct), Distinct]
    push_user: Annotated[str, Field(min_length=1, pattern=r"^[^:\s]+$")]
    push_password: Password
    node_port: Literal[""] | Annotated[int, Field(ge=30000, le=32767)]  # "" = a ClusterIP Service
    persistence: Persistence
    resources: Resources


class Demo(_Values):
    """`demo`: the field simulator as the sources."""

    enabled: bool
    image: Image
    seed: Annotated[int, Field(ge=0)]
    devices: Annotated[int, Field(ge=1, le=1_000_000)]
    start: Month
    months: Annotated[int, Field(ge=1, le=36)]
    postgres: DemoPostgres
    # The demo serves N_SHARDS shards on portBase..portBase+N_SHARDS-1, all of which must be valid ports.
    port_base: Annotated[int, Field(ge=1024, le=65535 - N_SHARDS + 1)]
    git_server: GitServer


class NetworkPolicies(_Values):
    """`networkPolicies`: ingress restrictions."""

    enabled: bool
    ui_peers: list[KubeObject]
    buildkit_peers: list[KubeObject]


class Release(_Values):
    """One GitOps release entry; what it leaves out, the release template defaults."""

    library: RepositoryName | None = None
    version: Version
    rollout: bool | None = None
    mode: Mode | None = None
    months: Annotated[list[Month], AfterValidator(_distinct), Distinct] | None = None
    latest_months: Annotated[int, Field(ge=1, le=24)] | None = None
    policy: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")] | None = None
    shards: Annotated[int, Field(ge=1, le=256)] | None = None
    run: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")] | None = None


class PodSecurityContext(_Open):
    """`podSecurityContext`: a PodSecurityContext that must run as non-root."""

    run_as_non_root: Literal[True]


class ContainerSecurityContext(_Open):
    """`containerSecurityContext`: a SecurityContext that must forbid privilege escalation."""

    allow_privilege_escalation: Literal[False]


# Rules between keys: (when this key has this value, that key must be) for Helm, as JSON Schema.
_RULES: list[JsonValue] = [
    {
        "if": {"properties": {"mlflow": {"properties": {"enabled": {"const": False}}}}},
        "then": {"properties": {"mlflow": {"properties": {"externalUri": {"minLength": 1}}}}},
    },
    {
        "if": {"properties": {"packageIndex": {"properties": {"enabled": {"const": False}}}}},
        "then": {"properties": {"packageIndex": {"properties": {"externalUrl": {"minLength": 1}}}}},
    },
    {
        "if": {"properties": {"demo": {"properties": {"enabled": {"const": True}}}}},
        "then": {"properties": {"secrets": {"properties": {"create": {"const": True}}}}},
    },
]


class ChartValues(_Values):
    """Everything values.yaml sets, with the types and bounds values.schema.json enforces."""

    model_config = ConfigDict(title="fleet-eval chart values", json_schema_extra={"allOf": _RULES})

    name_override: str
    fullname_override: str
    common_labels: Labels
    workflows: Workflows
    s3: S3
    artifact_repository: ArtifactRepository
    secrets: Secrets
    sources: Sources
    images: Images
    mlflow: Mlflow
    review: Review
    package_index: PackageIndex
    demo: Demo
    network_policies: NetworkPolicies
    releases: list[Release]
    release_retention_seconds: Annotated[int, Field(ge=86400, le=2**31 - 1)]  # Argo's TTL field is an int32
    pod_security_context: PodSecurityContext
    container_security_context: ContainerSecurityContext

    @model_validator(mode="after")
    def _rules(self) -> ChartValues:
        # The same rules as _RULES, for Python; tests/chart feeds both the same bad values.
        if not self.mlflow.enabled and not self.mlflow.external_uri:
            raise ValueError("mlflow.externalUri is required when mlflow.enabled is false")
        if not self.package_index.enabled and not self.package_index.external_url:
            raise ValueError("packageIndex.externalUrl is required when packageIndex.enabled is false")
        if self.demo.enabled and not self.secrets.create:
            raise ValueError("demo.enabled needs secrets.create: true (the demo's Secrets come from the chart)")
        return self


class _ValuesSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema without what would only repeat values.yaml or mislead a reader of it."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # titles would only repeat the key

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        # An optional release field is left out, never null, and its default lives in the template.
        return self.generate_inner(schema["schema"])

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """``node`` with every ``$ref`` replaced by its definition, so the schema nests as values.yaml does."""
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        definition = dict(definitions[node["$ref"].removeprefix("#/$defs/")])
        definition.pop("title", None)  # the class name: a Python detail
        return _inline({**definition, **{k: v for k, v in node.items() if k != "$ref"}}, definitions)
    return {key: _inline(value, definitions) for key, value in node.items()}


def values_schema() -> dict[str, Any]:
    """The JSON Schema Helm checks the merged values against (values.schema.json)."""
    schema = ChartValues.model_json_schema(by_alias=True, schema_generator=_ValuesSchema)
    definitions = schema.pop("$defs", {})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **_inline(schema, definitions)}
